"""Several open runs per instance: the engine's lanes plans, applied in one transaction.

Every change goes the same way (docs/parallel.md): lock the root of the instance's tree, read
the instance and its open runs afresh, ask the engine for the plan, then write the instance,
the run that finished, the joins, the cancellations and the new runs, with their events. A
second transaction of the same tree waits on the root's row lock and then sees the first's
commit, so a join fires exactly once. A child instance's end finishes its parent's workflow
step in the same transaction.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .. import engine
from ..definitions import MAIN_LANE
from ..engine import TransitionNotAllowed
from ..models import OPEN_RUN_STATES, RunState, ServiceKind, Status, StepRun, WorkflowInstance
from ..queries import catalog, outcomes
from .cancellation import cancel_run
from .guards import Claimed, guarded, move_instance
from .opening import open_positions


@dataclass(slots=True)
class Locked:
    """An instance read under its tree's lock, with its open runs by lane."""

    instance: WorkflowInstance
    runs: dict[str, StepRun]

    @property
    def lanes(self) -> dict[str, str]:
        return {lane: run.step_id for lane, run in self.runs.items()}


@dataclass(slots=True)
class Closing:
    """How the run that caused a plan closes: its state and the fields written with it, and
    what it decided for the instance (steps.decided)."""

    run: StepRun
    state: str
    fields: dict[str, Any] = field(default_factory=dict)
    decision: dict | None = None
    outcome: dict | None = None


def in_lane(instance: WorkflowInstance, run: StepRun) -> bool:
    """Whether finishing `run` goes through the lanes: a branch's run, or any run of a child
    (whose tree is locked at its root). A main-lane run of an instance nobody started keeps
    the one guarded update of guards.py: while the main lane is at a step that is not
    parallel, no branch is open."""
    return instance.root_id is not None or run.lane != MAIN_LANE


def lock(instance: WorkflowInstance, run: StepRun | None = None) -> Locked:
    """Lock the root of the instance's tree (then the instance), and read its open runs;
    with `run`, refuse (saying why) unless it is still the open run of its lane."""
    if instance.root_id:
        WorkflowInstance.objects.select_for_update().filter(pk=instance.root_id).exists()
    fresh = WorkflowInstance.objects.select_for_update().get(pk=instance.pk)
    if fresh.status != Status.RUNNING:
        ended = f"{fresh.case_number} has already ended ({fresh.status})"
        raise TransitionNotAllowed(_moved_on(run, ended) if run else ended)
    runs = StepRun.objects.filter(instance_id=instance.pk, state__in=OPEN_RUN_STATES)
    for each in runs:
        each.instance = fresh
    locked = Locked(fresh, {each.lane: each for each in runs})
    if run is not None:
        check_open(locked, run)
    return locked


def check_open(locked: Locked, run: StepRun) -> None:
    """Refuse, saying why, a run that is no longer the open run of its lane."""
    current = locked.runs.get(run.lane)
    if current is None or current.pk != run.pk:
        raise TransitionNotAllowed(_moved_on(run))


def finish(
    locked: Locked, closing: Closing, plan: engine.Plan, *, context, now: datetime, inline: bool
) -> list[Claimed]:
    """Write `plan`, caused by `closing`: one transaction, every change guarded."""
    instance, spec = locked.instance, catalog.spec_of(locked.instance)
    check_open(locked, closing.run)
    run = locked.runs[closing.run.lane]
    after = engine.lanes_after(spec, locked.lanes, run.step_id, plan)
    move = engine.Move(plan.status, step=after.get(MAIN_LANE), error=plan.error)
    move_instance(
        instance,
        run.step_id,
        move,
        context=context,
        decision=closing.decision,
        outcome=closing.outcome,
        now=now,
        locked=True,
        still_asking=_asks_applicant(spec, after.values()),
        current_steps=[step for step in after.values() if step],
    )
    finished = closing.run
    guarded(
        finished,
        finished.state,
        touched=True,
        state=closing.state,
        ended_at=now,
        wake_at=None,
        **closing.fields,
    )
    for joined in plan.joins:
        guarded(
            locked.runs[joined.lane],
            RunState.WAITING,
            touched=True,
            state=RunState.SUCCEEDED,
            result=engine.JOIN_RESULT,
            output={},
            ended_at=now,
        )
    for cancel in plan.cancels:
        cancel_run(
            locked.runs[cancel.lane],
            reason=_why(spec, cancel),
            now=now,
            cause=cancel.cause,
            by=cancel.by,
        )
    claimed = open_positions(instance, plan.opens, now=now, inline=inline)
    if plan.status != Status.RUNNING and instance.parent_run_id:
        claimed += finish_parent_step(instance, now=now, inline=inline)
    return claimed


def finish_parent_step(child: WorkflowInstance, *, now: datetime, inline: bool) -> list[Claimed]:
    """The child ended: finish its parent's workflow step (unless the parent moved on)."""
    run = StepRun.objects.filter(pk=child.parent_run_id, state=RunState.WAITING).first()
    if run is None:
        return []  # the parent was cancelled, failed or moved on meanwhile
    locked = lock(run.instance)
    parent, spec = locked.instance, catalog.spec_of(locked.instance)
    data = {"instanceId": str(child.uuid), "caseNumber": child.case_number, "status": child.status}
    if reasons := (child.outcome or {}).get("reasons"):
        data["reasons"] = reasons  # a refused child's reasons are the parent's too
    context = {**parent.context, run.step_id: data}
    plan = engine.after_child(
        spec,
        locked.lanes,
        run.step_id,
        child.status,
        payload=parent.payload,
        context=context,
        child=child.case_number,
    )
    result = engine.CHILD_RESULTS.get(child.status)
    if result is None:  # the child failed or was cancelled: the step failed
        done = Closing(run, RunState.FAILED, {"output": data, "error": plan.error})
    else:
        answer = outcomes.answer_document(run.step_id, result, data, at=now)
        decision, outcome = decided(spec, parent, run, result, answer, plan.status)
        fields = {"result": result, "output": data}
        done = Closing(run, RunState.SUCCEEDED, fields, decision=decision, outcome=outcome)
    return finish(locked, done, plan, context=context, now=now, inline=inline)


def decided(spec, instance, run, result: str, answer: dict, status: str):
    """The instance's new `decision` (None when the answer decides nothing) and, when the
    instance ends completed or rejected, its `outcome` (queries/outcomes.py)."""
    decides = run.is_for_a_person or result == engine.REFUSAL
    outcome = None
    if status in (Status.COMPLETED, Status.REJECTED):
        # The answer that chose the end; after a step that merely came last (notify), the
        # latest decision before it.
        chosen = decides or engine.chosen_by_result(spec, run.step_id, result)
        outcome = answer if chosen else (instance.decision or answer)
    return (answer if decides else None), outcome


def _asks_applicant(spec, step_ids) -> bool:
    """Whether one of these open steps waits for the applicant (the deadline stays paused)."""
    return any(catalog.runs_service(spec, step, ServiceKind.APPLICANT) for step in step_ids)


def _moved_on(run: StepRun, otherwise: str = "") -> str:
    """Why a run found closed under the lock takes no answer (another branch cancelled it)."""
    now = StepRun.objects.filter(pk=run.pk).values_list("state", "error").first()
    if now and now[0] == RunState.CANCELLED and now[1]:
        return f"task {run.pk} was cancelled: {now[1]}"
    return otherwise or f"step '{run.step_id}' has moved on"


def _why(spec, cancel: engine.Cancel) -> str:
    """The reason a cancelled task's reviewers read."""
    if cancel.cause == "join":
        return f"branch '{spec.branch(cancel.by).display_title}' finished first"
    title = spec.step(cancel.by).display_title
    if cancel.cause == Status.REJECTED:
        return f"the application was refused at '{title}'"
    return f"'{title}' failed"
