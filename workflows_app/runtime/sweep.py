"""The sweep: act on open runs whose `wake_at` passed (backoff over, lease expired, deadline
passed -> onTimeout, task reminders). The ticker in every worker and the schedule call it."""

import logging
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .. import engine
from ..engine import TransitionNotAllowed, earliest
from ..models import OPEN_RUN_STATES, Event, RunState, ServiceKind, StepRun, WorkflowInstance
from ..queries import catalog
from . import asking, queue
from .assignment import task_timers
from .callbacks import forget_old_webhooks
from .escalation import escalate_due, escalate_task
from .guards import add_event, due_time, guarded, redelivery
from .schedules import beat
from .steps import fail_step, finish_run, lapse, lost_attempts

log = logging.getLogger(__name__)
MAX_BULK_BATCHES = 50  # at most 10,000 set-wise escalations in one pass


def process_due(*, now: datetime | None = None, limit: int = 200) -> int:
    """Act on every open run whose wake_at has passed; returns how many were acted on.

    The timer thread of every qcluster worker, the scheduled sweep and `escalate_overdue`
    all call this. Each run is handled in its own transaction under the instance's row lock
    (skipped when another process holds it), and each change is guarded by the state it
    expects, so two sweeps racing each other or a completion act once.
    """
    now = now or timezone.now()
    acted = 0
    for _ in range(MAX_BULK_BATCHES):  # set-wise first; what needs a per-task check follows
        escalated = escalate_due(now=now, limit=limit)
        acted += escalated
        if not escalated:
            break
    due = StepRun.objects.filter(state__in=OPEN_RUN_STATES, wake_at__lte=now).order_by("wake_at")
    rows = due.values_list("pk", "instance_id", "instance__root_id")[:limit]
    for run_id, instance_id, root_id in rows:
        try:
            acted += wake_run(run_id=run_id, instance_id=instance_id, now=now, root_id=root_id)
        except TransitionNotAllowed:
            continue
        except Exception:  # noqa: BLE001 - one broken run must not stop the timers of all others
            log.exception("step run %s could not be handled; trying again later", run_id)
            later = now + timedelta(seconds=settings.HMS_REDELIVERY_SECONDS)
            StepRun.objects.filter(pk=run_id, wake_at__lte=now).update(wake_at=later)
    return acted


def wake_run(*, run_id: UUID, instance_id: int, now: datetime, root_id: int | None = None) -> bool:
    """Handle one due run: re-dispatch, recover a lost worker's run, or apply its time-out;
    a child instance's run (`root_id`: the top of its tree) locks that root first."""
    with transaction.atomic():
        if root_id and not _lock_root(root_id):
            return False
        locked = WorkflowInstance.objects.select_for_update(skip_locked=True).filter(pk=instance_id)
        instance = locked.first()
        run = StepRun.objects.filter(pk=run_id, state__in=OPEN_RUN_STATES).first()
        if instance is None or run is None or run.wake_at is None or run.wake_at > now:
            return False
        if run.due_at and run.due_at <= now:
            _time_out(run, instance, now=now)
        elif run.state == RunState.RUNNING:
            _redeliver(run, instance, now=now)
        elif run.state == RunState.QUEUED:
            guarded(run, RunState.QUEUED, wake_at=earliest(now + redelivery(), run.due_at))
            queue.enqueue_run(run.pk, run.attempts)
        else:
            task_timers(run, instance, now=now)
    return True


def _lock_root(root_id: int) -> bool:
    """A child's tree is locked at its root first (docs/parallel.md); False when another
    process holds it (the run is handled on a later pass)."""
    return WorkflowInstance.objects.select_for_update(skip_locked=True).filter(pk=root_id).exists()


def _redeliver(run: StepRun, instance: WorkflowInstance, *, now: datetime) -> None:
    """The worker holding `run` died (its lease ran out): run it again (the service may be
    called again: at least once, docs/queue.md). A lost attempt is not a failed one (its
    call may have been answered), but lost attempts have their own limit, retry.max: a step
    that kills its worker every time ends in a visible failure instead of looping."""
    step = catalog.spec_of(instance).step(run.step_id)
    if engine.retry_delay(step.retry, lost_attempts(run) + 1) is None:
        error = (
            f"the worker running this step stopped before it finished (killed, or over the "
            f"task time-out); gave up after {run.attempts} attempts"
        )
        fail_step(run, instance, error, now=now, expect=RunState.RUNNING)
        return
    guarded(run, RunState.RUNNING, state=RunState.QUEUED, wake_at=now + redelivery())
    add_event(instance, run, Event.Type.REDELIVERED, attempt=run.attempts)
    queue.enqueue_run(run.pk, run.attempts)


def _time_out(run: StepRun, instance: WorkflowInstance, *, now: datetime) -> None:
    """The step's time-out passed with the step still open: apply its `onTimeout`."""
    step = catalog.spec_of(instance).step(run.step_id)
    service = catalog.get_service(step.service)
    action = engine.on_timeout(
        step,
        service_kind=ServiceKind.HUMAN if run.is_task else service.kind,
        backup_group=service.backup_group,
        level=run.escalation_level,
    )
    limit = step.timeout.text if step.timeout else ""
    add_event(instance, run, Event.Type.TIMED_OUT, action=action.kind, timeout=limit)
    match action.kind:
        case "fail":
            fail_step(run, instance, f"no answer within {limit}", now=now, expect=run.state)
        case "skip":
            finish_run(run, instance, "timeout", {}, now=now, inline=False, state=RunState.SKIPPED)
        case "retry" if service.kind == ServiceKind.APPLICANT:
            asking.remind_applicant(instance, run, due_at=due_time(step.timeout, now))
        case "retry":
            _retry_after_timeout(run, instance, step, is_task=run.is_task, now=now)
        case "reject":
            lapse(run, instance, step, now=now)
        case "escalate":
            escalate_task(run, instance, step, now=now)


def _retry_after_timeout(run, instance, step, *, is_task: bool, now: datetime) -> None:
    due = due_time(step.timeout, now)
    if is_task:
        guarded(run, run.state, due_at=due, wake_at=due)
        add_event(instance, run, Event.Type.REMINDED, due_at=due.isoformat() if due else None)
        return
    if engine.retry_delay(step.retry, run.attempts) is None:
        error = f"no answer within {step.timeout.text}, {run.attempts} attempts made"
        fail_step(run, instance, error, now=now, expect=run.state)
        return
    guarded(run, run.state, state=RunState.QUEUED, due_at=due, wake_at=now + redelivery())
    queue.enqueue_run(run.pk, run.attempts)


def scheduled_sweep(*, now: datetime | None = None) -> int:
    """The scheduled backstop of the tickers (every minute; `manage.py escalate_overdue` too):
    record its heartbeat, forget webhook ids too old to replay, act on whatever is due."""
    beat("sweep")
    now = now or timezone.now()
    forget_old_webhooks(now=now)
    return process_due(now=now)
