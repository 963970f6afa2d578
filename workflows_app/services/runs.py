"""Step runs: open one, claim it, record a dispatch outcome or an answer, route onwards."""

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .. import engine, notifications, queue, specs
from ..dispatch import Outcome
from ..engine import TransitionNotAllowed
from ..models import (
    Event,
    RunState,
    ServiceKind,
    Status,
    StepRun,
    WorkflowInstance,
)
from .guards import (
    Claimed,
    add_event,
    due_time,
    earliest,
    fail_step,
    guarded,
    lease,
    move_instance,
    redelivery,
)
from .human import assign, next_task_wake


def open_run(
    instance: WorkflowInstance, step_id: str, *, now: datetime, inline: bool = False
) -> StepRun:
    """Create the run of `step_id`: a task for a person, or a dispatch (now, or inline)."""
    step = instance.spec.step(step_id)
    service = specs.get_service(step.service)
    due = due_time(step.timeout, now)
    run = StepRun(instance=instance, step_id=step_id, due_at=due, created_at=now)
    delegated = None
    if service.kind == ServiceKind.HUMAN:
        run.state, run.started_at = RunState.WAITING, now
        delegated = assign(run, step.assignee or f"group:{service.group}", now=now)
        run.wake_at = next_task_wake(run, window_start=now)
    elif inline:
        run.state, run.attempts, run.started_at = RunState.RUNNING, 1, now
        run.wake_at = earliest(now + lease(), due)
    else:
        run.state, run.wake_at = RunState.QUEUED, earliest(now + redelivery(), due)
        queue.enqueue_run(run.id, 0)
    run.save(force_insert=True)
    if delegated:
        add_event(
            instance,
            run,
            Event.Type.REASSIGNED,
            to=delegated[1],
            reason="out of office",
            **{"from": delegated[0]},
        )
    if run.state == RunState.WAITING:
        notifications.task_assigned(run, kind="assigned")
    return run


def claim_run(*, run_id: UUID, attempts: int) -> Claimed | None:
    """Take a queued run for this worker; None when another worker has it or it moved on."""
    now = timezone.now()
    run = StepRun.objects.select_related("instance").filter(pk=run_id).first()
    if run is None:
        return None
    taken = StepRun.objects.filter(pk=run_id, state=RunState.QUEUED, attempts=attempts).update(
        state=RunState.RUNNING,
        attempts=F("attempts") + 1,
        started_at=run.started_at or now,
        wake_at=earliest(now + lease(), run.due_at),
    )
    if not taken:
        return None
    run.state, run.attempts = RunState.RUNNING, attempts + 1
    return Claimed(run=run, instance=run.instance)


def record_outcome(*, claimed: Claimed, outcome: Outcome, inline: bool = True) -> Claimed | None:
    """Apply one dispatch's outcome; return the next run when it should run inline here."""
    run, instance = claimed.run, claimed.instance
    now = timezone.now()
    with transaction.atomic():
        match outcome.kind:
            case "done":
                return finish_run(
                    run, instance, outcome.result, outcome.data, now=now, inline=inline
                )
            case "accepted":
                _await_callback(run)
            case "retry":
                _schedule_retry(run, instance, outcome, now=now)
            case _:
                fail_step(run, instance, outcome.error, now=now, expect=RunState.RUNNING)
    return None


def _schedule_retry(run: StepRun, instance: WorkflowInstance, outcome: Outcome, *, now) -> None:
    step = instance.spec.step(run.step_id)
    delay = engine.retry_delay(
        step.retry, run.attempts, retry_after=outcome.retry_after, jitter=specs.jitter
    )
    if delay is None:
        error = f"{outcome.error} (gave up after {run.attempts} attempts)"
        fail_step(run, instance, error, now=now, expect=RunState.RUNNING)
        return
    wake = earliest(now + timedelta(seconds=delay), run.due_at)
    guarded(run, RunState.RUNNING, state=RunState.QUEUED, wake_at=wake, error=outcome.error)
    add_event(
        instance,
        run,
        Event.Type.RETRY_SCHEDULED,
        attempt=run.attempts,
        error=outcome.error,
        retry_at=wake.isoformat(),
        delay_seconds=round(delay, 3),
    )


def finish_run(
    run,
    instance,
    result: str,
    data,
    *,
    now,
    inline: bool,
    actor: str = "",
    state: str = RunState.SUCCEEDED,
    comment: str = "",
) -> Claimed | None:
    """Close `run` with `result`, route the instance, and open the next step's run."""
    context = {**instance.context, run.step_id: data or {}}
    move = engine.advance(
        instance.spec, run.step_id, result, payload=instance.payload, context=context
    )
    move_instance(instance, run.step_id, move, context=context, now=now)
    guarded(
        run,
        run.state,
        state=state,
        result=result,
        output=data or {},
        ended_at=now,
        wake_at=None,
        completed_by=actor,
        comment=comment,
    )
    if move.status != Status.RUNNING:
        return None
    return open_next(instance, move.step, now=now, inline=inline)


def open_next(instance, step_id: str, *, now, inline: bool) -> Claimed | None:
    """Open the run of `step_id`; a python step comes back claimed when `inline` is asked."""
    here = inline and _is_python(instance, step_id)
    run = open_run(instance, step_id, now=now, inline=here)
    return Claimed(run=run, instance=instance) if here else None


def open_for_caller(instance, step_id: str, *, now) -> None:
    """Open the step a start, a decision or a callback leads to.

    With HMS_INLINE_PYTHON_STEPS (the default) a python step then runs in the caller's
    process right after its commit, with no queue hop, as a worker would run it.
    """
    claimed = open_next(instance, step_id, now=now, inline=settings.HMS_INLINE_PYTHON_STEPS)
    if claimed is not None:
        queue.run_here(claimed)


def _is_python(instance: WorkflowInstance, step_id: str) -> bool:
    return specs.get_service(instance.spec.step(step_id).service).kind == ServiceKind.PYTHON


def complete_task(
    *,
    run_id: UUID,
    result: str,
    data: Mapping[str, Any] | None = None,
    actor: str = "",
    comment: str = "",
    seen: StepRun | None = None,
) -> WorkflowInstance:
    """A person's or a service's answer to a waiting run (human task or HTTP 202 callback).

    `seen` is the run as the caller checked it (assignee, level, claimant): the answer lands
    only if the run is still so, never on a task escalated or reassigned in between.
    """
    now = timezone.now()
    run = seen or StepRun.objects.select_related("instance").get(pk=run_id)
    instance = run.instance
    try:
        with transaction.atomic():
            if not _awaits_answer(run):
                raise TransitionNotAllowed(_why_not_open(run))
            claimed = finish_run(
                run,
                instance,
                result,
                dict(data or {}),
                now=now,
                inline=settings.HMS_INLINE_PYTHON_STEPS,
                actor=actor,
                comment=comment,
            )
            if claimed is not None:
                queue.run_here(claimed)
    except TransitionNotAllowed as refused:
        record_late_answer(run=run, result=result, actor=actor, reason=str(refused))
        raise
    return instance


def _await_callback(run: StepRun) -> None:
    """The service answered 202: wait for its callback (unless the callback already came)."""
    try:
        guarded(run, RunState.RUNNING, state=RunState.WAITING, wake_at=run.due_at)
    except TransitionNotAllowed:
        if StepRun.objects.filter(pk=run.pk, state=RunState.RUNNING).exists():
            raise


def _awaits_answer(run: StepRun) -> bool:
    """A task or a 202 callback is due; an HTTP run whose 202 is not recorded yet counts too."""
    if run.state == RunState.WAITING:
        return True
    step = run.instance.spec.step(run.step_id)
    is_http = specs.get_service(step.service).kind == ServiceKind.HTTP
    return run.state == RunState.RUNNING and is_http


def _why_not_open(run: StepRun) -> str:
    if run.state == RunState.SUCCEEDED:
        return f"task {run.pk} was already completed with '{run.result}'"
    if run.is_open:
        return f"task {run.pk} is not waiting for an answer (it is {run.state})"
    return f"task {run.pk} is closed ({run.state})"


def record_late_answer(*, run: StepRun, result: str, actor: str, reason: str) -> None:
    """Write down, in its own transaction, an answer that came too late or twice."""
    with transaction.atomic():
        add_event(
            run.instance, run, Event.Type.LATE_CALLBACK, actor=actor, result=result, reason=reason
        )
