"""The only writers of instances and step runs: lock or guard, apply the engine, record, enqueue.

Every change of an instance is one transaction together with its history: the step-run row
(a finished run is the history entry of that step) or an Event row. Writes are guarded by the
state they expect (`UPDATE … WHERE state = …`), so a duplicate message, a late callback or a
racing sweep changes nothing twice. Jobs are enqueued only after commit (queue.py).

- instances: start, cancel, retry
- runs: open, claim, record an outcome or an answer, route onwards
- timers: the sweep (backoff over, lease expired, deadline passed -> onTimeout)
- human: task assignment, reminders, claims, reassignment
- guards: the guarded writes they share
"""

import time

from django.utils import timezone

from ..engine import TransitionNotAllowed
from ..models import Heartbeat
from .guards import Claimed, due_time
from .human import next_task_wake, reassign, release_claim, reschedule_task
from .instances import (
    IdempotencyConflict,
    InvalidPayload,
    cancel_instance,
    retry_instance,
    start_instance,
)
from .runs import claim_run, complete_task, record_late_answer, record_outcome
from .timers import process_due, wake_run

__all__ = [
    "Claimed",
    "IdempotencyConflict",
    "InvalidPayload",
    "TransitionNotAllowed",
    "beat",
    "cancel_instance",
    "claim_run",
    "complete_task",
    "due_time",
    "next_task_wake",
    "process_due",
    "reassign",
    "record_late_answer",
    "record_outcome",
    "release_claim",
    "reschedule_task",
    "retry_instance",
    "start_instance",
    "wake_run",
]

_last_beats: dict[str, float] = {}


def beat(name: str, *, every: float = 10.0) -> None:
    """Record that periodic job `name` is alive (at most once per `every` seconds per process)."""
    now = time.monotonic()
    if now - _last_beats.get(name, float("-inf")) < every:
        return
    _last_beats[name] = now
    Heartbeat.objects.update_or_create(name=name, defaults={"last_tick": timezone.now()})
