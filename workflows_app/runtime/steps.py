"""Step runs: open one, claim it, record a dispatch outcome, route onwards."""

from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import engine
from ..definitions import MAIN_LANE
from ..engine import TransitionNotAllowed, earliest
from ..models import Event, RunState, Status, StepRun, WorkflowInstance
from ..queries import catalog, outcomes, progress
from . import branches, notifications, statements
from .dispatch import Outcome
from .guards import Claimed, add_event, guarded, jitter, lease, move_instance, touch
from .opening import open_next, open_positions, open_run

__all__ = ["claim_run", "fail_step", "finish_run", "open_next", "open_run", "record_outcome"]


def claim_run(*, run_id: UUID, attempts: int) -> Claimed | None:
    """Take a queued run for this worker; None when another worker has it or it moved on."""
    now = timezone.now()
    run = progress.run_with_instance(run_id)
    if run is None:
        return None
    taken = statements.update(
        StepRun,
        {"pk": run_id, "state": RunState.QUEUED, "attempts": attempts},
        {
            "state": RunState.RUNNING,
            "attempts": statements.Add(1),
            "started_at": run.started_at or now,
            "wake_at": earliest(now + lease(), run.due_at),
        },
    )
    if not taken:
        return None
    touch(run.instance_id)  # its own statement, after the claim (guards.touch says why)
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


def record_outcome(*, claimed: Claimed, outcome: Outcome, inline: bool = True) -> list[Claimed]:
    """Apply one dispatch's outcome; return the next runs that should run inline here."""
    run, instance = claimed.run, claimed.instance
    now = timezone.now()
    # Routing (its CEL conditions) is worked out before the transaction takes any lock.
    planned = None
    if outcome.kind == "done" and not branches.in_lane(instance, run):
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
    return []


def _schedule_retry(run: StepRun, instance: WorkflowInstance, outcome: Outcome, *, now) -> None:
    """Another attempt after a backoff, while the failed attempts stay within retry.max.

    An attempt lost with its worker (redelivered) is not a failed one: its call may have
    had its answer, lost before the commit, so it does not count here (docs/queue.md).
    """
    step = catalog.spec_of(instance).step(run.step_id)
    lost = lost_attempts(run)
    failed = run.attempts - lost
    delay = engine.retry_delay(step.retry, failed, retry_after=outcome.retry_after, jitter=jitter)
    if delay is None:
        also = f", and {lost} lost with a stopped worker" if lost else ""
        error = f"{outcome.error} (gave up after {failed} attempts{also})"
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


def lost_attempts(run: StepRun) -> int:
    """How many attempts of `run` were lost with their worker (each one redelivered)."""
    return Event.objects.filter(run=run, type=Event.Type.REDELIVERED).count()


@dataclass(frozen=True, slots=True)
class Planned:
    """Where a finished step leads, worked out before the write that applies it."""

    context: dict
    move: engine.Move


def plan_move(instance, step_id: str, result: str, data) -> Planned:
    """The context and the move after `step_id` finishes with `result` (CEL conditions run
    here). Computed outside the transaction: the writes that apply it are guarded by the
    instance still being at `step_id` with this run open, and while it is, its context
    cannot change, so the plan still holds when it is applied. Not for a run in a parallel
    branch (the other branches change the context): that is routed under the tree's lock
    (branches.py), within the same cost limit."""
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
) -> list[Claimed]:
    """Close `run` with `result`, route the instance, and open the next steps' runs."""
    closing = {"result": result, "output": data or {}, "completed_by": actor}
    closing |= {"reason": reason, "note": note}
    answer = outcomes.answer_document(run.step_id, result, data, reason=reason, at=now)
    if branches.in_lane(instance, run):
        return _finish_in_lane(
            run, instance, result, data, closing, answer, state=state, now=now, inline=inline
        )
    # The main lane at a step other than a parallel one: no branch is open, so the guarded
    # update of the instance (by its current step) is the lock, as for a seed-shaped workflow,
    # and the move planned before the transaction (its conditions) still holds.
    planned = planned or plan_move(instance, run.step_id, result, data)
    spec = catalog.spec_of(instance)
    plan = engine.after_result(
        spec,
        {MAIN_LANE: run.step_id},
        run.step_id,
        result,
        payload=instance.payload,
        context=planned.context,
        move=planned.move,
    )
    decision, outcome = branches.decided(spec, instance, run, result, answer, plan.status)
    move = main_move(plan)
    move_instance(
        instance,
        run.step_id,
        move,
        context=planned.context,
        decision=decision,
        outcome=outcome,
        now=now,
    )
    guarded(run, run.state, touched=True, state=state, ended_at=now, wake_at=None, **closing)
    return open_positions(instance, plan.opens, now=now, inline=inline)


def main_move(plan: engine.Plan) -> engine.Move:
    """The instance's move in a plan: its status, and the step its main lane opens."""
    step = next((p.step for p in plan.opens if p.lane == MAIN_LANE), None)
    return engine.Move(plan.status, step=step, error=plan.error)


def lapse(run: StepRun, instance: WorkflowInstance, step, *, now) -> None:
    """The step's time ran out with `onTimeout: reject`: the application ends `rejected`."""
    with notifications.applicant_language(instance):  # the applicant reads it, in theirs
        reason = _("We did not receive an answer to “%(title)s” in time.") % {
            "title": step.display_title
        }
    output = {"reasons": [reason]}
    outcome = outcomes.answer_document(run.step_id, "timeout", output, at=now)
    closing = {"result": "timeout", "output": output}
    if branches.in_lane(instance, run):
        locked = branches.lock(instance, run)
        spec = catalog.spec_of(instance)
        plan = engine.after_end(spec, locked.lanes, run.step_id, Status.REJECTED)
        done = branches.Closing(run, RunState.SKIPPED, closing, outcome=outcome)
        branches.finish(locked, done, plan, context=locked.instance.context, now=now, inline=False)
        copy_state(locked.instance, instance)
        return
    move_instance(instance, run.step_id, engine.Move(Status.REJECTED), outcome=outcome, now=now)
    guarded(
        run, run.state, touched=True, state=RunState.SKIPPED, ended_at=now, wake_at=None, **closing
    )


def _finish_in_lane(
    run, instance, result, data, closing, answer, *, state, now, inline
) -> list[Claimed]:
    """finish_run for a branch's run, or any run of a child instance: under the tree's lock."""
    locked = branches.lock(instance, run)
    fresh, spec = locked.instance, catalog.spec_of(instance)
    context = {**fresh.context, run.step_id: data or {}}
    plan = engine.after_result(
        spec, locked.lanes, run.step_id, result, payload=fresh.payload, context=context
    )
    decision, outcome = branches.decided(spec, fresh, run, result, answer, plan.status)
    done = branches.Closing(run, state, closing, decision=decision, outcome=outcome)
    claimed = branches.finish(locked, done, plan, context=context, now=now, inline=inline)
    copy_state(fresh, instance)
    return claimed


def fail_step(run, instance, error: str, *, now, expect: str) -> None:
    """The step failed for good: the run and the instance become `failed`, with the error;
    the other branches' open runs are cancelled."""
    if branches.in_lane(instance, run):
        locked = branches.lock(instance, run)
        spec = catalog.spec_of(instance)
        plan = engine.after_failure(spec, locked.lanes, run.step_id, error)
        done = branches.Closing(run, RunState.FAILED, {"error": error})
        branches.finish(locked, done, plan, context=locked.instance.context, now=now, inline=False)
        copy_state(locked.instance, instance)
        return
    move_instance(instance, run.step_id, engine.Move(Status.FAILED, error=error), now=now)
    guarded(
        run, expect, touched=True, state=RunState.FAILED, error=error, ended_at=now, wake_at=None
    )


def copy_state(fresh: WorkflowInstance, caller: WorkflowInstance) -> None:
    """Show the caller's object where the instance now stands."""
    fields = ("status", "current_step", "context", "ended_at", "error", "updated_at")
    for name in (*fields, "decision", "outcome"):
        setattr(caller, name, getattr(fresh, name))


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
        touch(run.instance_id)
        add_event(
            run.instance, run, Event.Type.LATE_CALLBACK, actor=actor, result=result, reason=reason
        )
