"""Step runs: open one, claim it, record a dispatch outcome, route onwards."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .. import engine
from ..engine import TransitionNotAllowed, earliest
from ..models import Event, RunState, ServiceKind, Status, StepRun, WorkflowInstance
from ..queries import catalog, outcomes
from . import asking, notifications, queue
from .assignment import assign, next_task_wake
from .dispatch import Outcome
from .guards import (
    Claimed,
    add_event,
    due_time,
    fail_step,
    guarded,
    jitter,
    lease,
    move_instance,
    redelivery,
)


def open_run(
    instance: WorkflowInstance, step_id: str, *, now: datetime, inline: bool = False
) -> StepRun:
    """Create the run of `step_id`: a task for a person, or a dispatch (now, or inline)."""
    step = catalog.spec_of(instance).step(step_id)
    service = catalog.get_service(step.service)
    due = due_time(step.timeout, now)
    run = StepRun(instance=instance, step_id=step_id, due_at=due, created_at=now)
    delegated = None
    if service.kind == ServiceKind.HUMAN:
        run.state, run.started_at = RunState.WAITING, now
        delegated = assign(run, step.assignee or f"group:{service.group}", now=now)
        run.wake_at = next_task_wake(run, window_start=now)
    elif service.kind == ServiceKind.APPLICANT:
        run.state, run.started_at, run.wake_at = RunState.WAITING, now, due
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
    if service.kind == ServiceKind.APPLICANT:
        asking.ask_applicant(instance, run, now=now)
    elif run.state == RunState.WAITING:
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


def defer_run(claimed: Claimed) -> None:
    """Give a claimed run back unrun (its service is at its concurrency limit): queued again,
    this attempt not counted; the timers dispatch it after HMS_SLOT_WAIT_SECONDS."""
    run = claimed.run
    until = timezone.now() + timedelta(seconds=settings.HMS_SLOT_WAIT_SECONDS * (1 + jitter()))
    guarded(
        run,
        RunState.RUNNING,
        state=RunState.QUEUED,
        attempts=run.attempts - 1,
        wake_at=earliest(until, run.due_at),
    )


def record_outcome(*, claimed: Claimed, outcome: Outcome, inline: bool = True) -> Claimed | None:
    """Apply one dispatch's outcome; return the next run when it should run inline here."""
    run, instance = claimed.run, claimed.instance
    now = timezone.now()
    # Routing (its CEL conditions) is worked out before the transaction takes any lock.
    planned = None
    if outcome.kind == "done":
        planned = plan_move(instance, run.step_id, outcome.result, outcome.data)
    with transaction.atomic():
        match outcome.kind:
            case "done":
                return finish_run(
                    run,
                    instance,
                    outcome.result,
                    outcome.data,
                    now=now,
                    inline=inline,
                    planned=planned,
                )
            case "accepted":
                _await_callback(run)
            case "retry":
                _schedule_retry(run, instance, outcome, now=now)
            case _:
                fail_step(run, instance, outcome.error, now=now, expect=RunState.RUNNING)
    return None


def _schedule_retry(run: StepRun, instance: WorkflowInstance, outcome: Outcome, *, now) -> None:
    step = catalog.spec_of(instance).step(run.step_id)
    delay = engine.retry_delay(
        step.retry, run.attempts, retry_after=outcome.retry_after, jitter=jitter
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


@dataclass(frozen=True, slots=True)
class Planned:
    """Where a finished step leads, worked out before the write that applies it."""

    context: dict
    move: engine.Move


def plan_move(instance, step_id: str, result: str, data) -> Planned:
    """The context and the move after `step_id` finishes with `result` (CEL conditions run
    here). Computed outside the transaction: the writes that apply it are guarded by the
    instance still being at `step_id` with this run open, and while it is, its context
    cannot change, so the plan still holds when it is applied."""
    context = {**instance.context, step_id: data or {}}
    move = engine.advance(
        catalog.spec_of(instance), step_id, result, payload=instance.payload, context=context
    )
    return Planned(context, move)


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
    reason: str = "",
    note: str = "",
    planned: Planned | None = None,
) -> Claimed | None:
    """Close `run` with `result`, route the instance, and open the next step's run."""
    planned = planned or plan_move(instance, run.step_id, result, data)
    context, move = planned.context, planned.move
    spec = catalog.spec_of(instance)
    answer = outcomes.answer_document(run.step_id, result, data, reason=reason, at=now)
    decides = run.is_for_a_person or result == engine.REFUSAL
    outcome = None
    if move.status in (Status.COMPLETED, Status.REJECTED):
        # The answer that chose the end; after a step that merely came last (notify), the
        # latest decision before it.
        chosen = decides or engine.chosen_by_result(spec, run.step_id, result)
        outcome = answer if chosen else (instance.decision or answer)
    move_instance(
        instance,
        run.step_id,
        move,
        context=context,
        decision=answer if decides else None,
        outcome=outcome,
        now=now,
    )
    guarded(
        run,
        run.state,
        state=state,
        result=result,
        output=data or {},
        ended_at=now,
        wake_at=None,
        completed_by=actor,
        reason=reason,
        note=note,
    )
    if move.status != Status.RUNNING:
        return None
    return open_next(instance, move.step, now=now, inline=inline)


def lapse(run: StepRun, instance: WorkflowInstance, step, *, now) -> None:
    """The step's time ran out with `onTimeout: reject`: the application ends `rejected`."""
    reason = f"We did not receive an answer to “{step.display_title}” in time."
    output = {"reasons": [reason]}
    outcome = outcomes.answer_document(run.step_id, "timeout", output, at=now)
    move_instance(instance, run.step_id, engine.Move(Status.REJECTED), outcome=outcome, now=now)
    guarded(
        run,
        run.state,
        state=RunState.SKIPPED,
        result="timeout",
        output=output,
        ended_at=now,
        wake_at=None,
    )


def open_next(instance, step_id: str, *, now, inline: bool) -> Claimed | None:
    """Open the run of `step_id`; a python step comes back claimed when `inline` is asked."""
    here = inline and _is_python(instance, step_id)
    run = open_run(instance, step_id, now=now, inline=here)
    return Claimed(run=run, instance=instance) if here else None


def _is_python(instance: WorkflowInstance, step_id: str) -> bool:
    return catalog.service_of_step(catalog.spec_of(instance), step_id).kind == ServiceKind.PYTHON


def _await_callback(run: StepRun) -> None:
    """The service answered 202: wait for its callback (unless the callback already came)."""
    try:
        guarded(run, RunState.RUNNING, state=RunState.WAITING, wake_at=run.due_at)
    except TransitionNotAllowed:
        if StepRun.objects.filter(pk=run.pk, state=RunState.RUNNING).exists():
            raise


def record_late_answer(*, run: StepRun, result: str, actor: str, reason: str) -> None:
    """Write down, in its own transaction, an answer that came too late or twice."""
    with transaction.atomic():
        add_event(
            run.instance, run, Event.Type.LATE_CALLBACK, actor=actor, result=result, reason=reason
        )
