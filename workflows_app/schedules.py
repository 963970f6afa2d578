"""The django-q2 schedules we rely on, created idempotently after every migrate."""

from django.db import transaction

SWEEP = "hms-sweep"
PRUNE = "hms-prune-failures"

SCHEDULES = {
    # The backstop of the timer threads: deadlines, retries and lost workers, every minute.
    SWEEP: {"func": "workflows_app.tasks.sweep", "schedule_type": "I", "minutes": 1},
    PRUNE: {"func": "workflows_app.tasks.prune_failures", "schedule_type": "D", "minutes": None},
}


def ensure_schedules(**_signal_kwargs) -> None:
    """Exactly one row per schedule, however often migrate or restarts run.

    django-q2 does not make schedule names unique (its #102), so extras are deleted.
    """
    from django_q.models import Schedule

    with transaction.atomic():
        for name, fields in SCHEDULES.items():
            rows = list(Schedule.objects.filter(name=name).order_by("pk"))
            for extra in rows[1:]:
                extra.delete()
            fields = {**fields, "repeats": -1}
            if rows:
                Schedule.objects.filter(pk=rows[0].pk).update(**fields)
            else:
                Schedule.objects.create(name=name, **fields)
