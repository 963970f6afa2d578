"""The django-q2 schedules we rely on, created idempotently after every migrate."""

from django.db import transaction

SWEEP = "hms-sweep"


def ensure_schedules(**_signal_kwargs) -> None:
    """Exactly one sweep schedule, every minute, however often migrate or restarts run.

    django-q2 does not make schedule names unique (its #102), so extras are deleted.
    """
    from django_q.models import Schedule

    with transaction.atomic():
        rows = list(Schedule.objects.filter(name=SWEEP).order_by("pk"))
        for extra in rows[1:]:
            extra.delete()
        fields = {
            "func": "workflows_app.tasks.sweep",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        }
        if rows:
            Schedule.objects.filter(pk=rows[0].pk).update(**fields)
        else:
            Schedule.objects.create(name=SWEEP, **fields)
