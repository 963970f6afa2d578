"""Periodic jobs: the django-q2 schedules we rely on (created idempotently after every
migrate), and the heartbeats that show each job is alive."""

import time
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from ..models import Heartbeat

SWEEP = "hms-sweep"
PRUNE = "hms-prune-failures"
PURGE = "hms-purge-expired"
ROLLUPS = "hms-report-rollups"
WEBHOOKS = "hms-webhooks"

SCHEDULES = {
    # The backstop of the timer threads: deadlines, retries and lost workers, every minute.
    SWEEP: {"func": "workflows_app.tasks.sweep", "schedule_type": "I", "minutes": 1},
    PRUNE: {"func": "workflows_app.tasks.prune_failures", "schedule_type": "D", "minutes": None},
    # Records and reports (docs/records.md, docs/reports.md): once a day each.
    PURGE: {"func": "workflows_app.tasks.purge_expired", "schedule_type": "D", "minutes": None},
    ROLLUPS: {
        "func": "workflows_app.tasks.fill_report_rollups",
        "schedule_type": "D",
        "minutes": None,
    },
    # Status webhooks: retries after their backoff, and queues a killed sender left.
    WEBHOOKS: {"func": "workflows_app.tasks.sweep_webhooks", "schedule_type": "I", "minutes": 1},
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


_last_beats: dict[str, float] = {}


def beat(name: str, *, every: float = 10.0) -> None:
    """Record that periodic job `name` is alive (at most once per `every` seconds per process)."""
    now = time.monotonic()
    if now - _last_beats.get(name, float("-inf")) < every:
        return
    _last_beats[name] = now
    Heartbeat.objects.update_or_create(name=name, defaults={"last_tick": timezone.now()})


KEEP_FAILURES_DAYS = 30


def prune_failures(
    *, older_than: timedelta = timedelta(days=KEEP_FAILURES_DAYS), now: datetime | None = None
) -> int:
    """Delete django-q2 failures older than a month (its save_limit prunes successes only)."""
    from django_q.models import Failure

    cutoff = (now or timezone.now()) - older_than
    deleted, _ = Failure.objects.filter(stopped__lt=cutoff).delete()
    return deleted
