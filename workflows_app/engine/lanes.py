"""Lanes: where an instance is while parallel branches run, and how it moves on (pure).

An instance is in one lane or more at once: the main lane (the workflow's own list of steps)
and one lane per branch of each open parallel step, nested. Each open lane is at one step: a
lane at a parallel step waits for its branches, a lane at a workflow step for its child
instance. `Lanes` maps every open lane to its step (docs/parallel.md).

After a step's result in its lane, `after_result` returns a Plan: the runs to open, the
parallel steps whose join fired, the branches that ended, the open runs to cancel and the
instance's status. A branch that reaches `end` ends; `join: all` fires when the last branch
of a parallel step has ended, `join: any` on the first (cancelling the others); `reject` or
`fail` anywhere ends the instance and cancels every other lane.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..definitions import MAIN_LANE, WorkflowSpec
from ..models.choices import Status
from .moves import Move, TransitionNotAllowed, advance

Lanes = Mapping[str, str]  # open lane -> the step it is at
JOIN_RESULT = "ok"  # the result of a parallel step whose join fired
CHILD_RESULTS = {Status.COMPLETED: "ok", Status.REJECTED: "rejected"}


@dataclass(frozen=True, slots=True)
class Position:
    """A lane and the step it is at."""

    lane: str
    step: str


@dataclass(frozen=True, slots=True)
class Cancel:
    """An open run to cancel, and why: `cause` is "join" (branch `by` ended first under
    `join: any`) or the status that ended the instance ("rejected", "failed") at step `by`."""

    lane: str
    step: str
    cause: str
    by: str


@dataclass(frozen=True, slots=True)
class Plan:
    """What follows one event in one lane, for the runtime to write in one transaction."""

    status: str  # the instance's status afterwards
    opens: tuple[Position, ...] = ()  # runs to open, in definition order
    joins: tuple[Position, ...] = ()  # parallel steps finished with `ok`, innermost first
    ended: tuple[str, ...] = ()  # branches that reached `end`
    cancels: tuple[Cancel, ...] = ()
    error: str | None = None


def begin(spec: WorkflowSpec) -> Plan:
    """The first plan of a new instance: its first step (and, if parallel, its branches)."""
    return Plan(Status.RUNNING, opens=enter(spec, MAIN_LANE, spec.first_step))


def enter(spec: WorkflowSpec, lane: str, step_id: str) -> tuple[Position, ...]:
    """The runs that open when `lane` moves to `step_id`: a parallel step opens its own run
    (the one its join finishes) and the first step of each branch, nested ones too."""
    found = [Position(lane, step_id)]
    for branch in spec.step(step_id).parallel:
        found.extend(enter(spec, branch.id, branch.steps[0].id))
    return tuple(found)


def after_result(
    spec: WorkflowSpec,
    lanes: Lanes,
    step_id: str,
    result: str,
    *,
    payload: Mapping[str, Any],
    context: Mapping[str, Any],
    move: Move | None = None,
) -> Plan:
    """What follows when `step_id`, open in its lane, finishes with `result`; `move`: its
    routing when worked out already (runtime/steps.py plans it before taking a lock)."""
    lane = _lane_at(spec, lanes, step_id)
    move = move or advance(spec, step_id, result, payload=payload, context=context)
    rest = {key: at for key, at in lanes.items() if key != lane}
    return _follow(spec, rest, lane, move, step_id, payload, context)


def after_failure(spec: WorkflowSpec, lanes: Lanes, step_id: str, error: str) -> Plan:
    """`step_id` failed for good (retries spent, time-out `fail`): the instance fails."""
    return after_end(spec, lanes, step_id, Status.FAILED, error=error)


def after_end(
    spec: WorkflowSpec, lanes: Lanes, step_id: str, status: str, *, error: str | None = None
) -> Plan:
    """`step_id` ends the instance with `status` whatever its routes say (a failure, a
    request to the applicant that lapsed): every other open lane is cancelled."""
    lane = _lane_at(spec, lanes, step_id)
    rest = {key: at for key, at in lanes.items() if key != lane}
    return _end_instance(spec, rest, Move(status, error=error), step_id)


def after_child(
    spec: WorkflowSpec,
    lanes: Lanes,
    step_id: str,
    child_status: str,
    *,
    payload: Mapping[str, Any],
    context: Mapping[str, Any],
    child: str = "",
) -> Plan:
    """The child instance of workflow step `step_id` ended with `child_status`: completed
    is result `ok`, rejected is `rejected`; failed or cancelled fails the step."""
    if child_status == Status.RUNNING:
        raise ValueError("the child instance has not ended")
    if child_status in CHILD_RESULTS:
        result = CHILD_RESULTS[child_status]
        return after_result(spec, lanes, step_id, result, payload=payload, context=context)
    name = f" {child}" if child else ""
    return after_failure(spec, lanes, step_id, f"the sub-workflow{name} ended {child_status}")


def lanes_after(spec: WorkflowSpec, lanes: Lanes, step_id: str, plan: Plan) -> dict[str, str]:
    """The open lanes once `plan` (which followed `step_id`) is applied; {} once ended."""
    if plan.status != Status.RUNNING:
        return {}
    closed = {spec.lane_of(step_id), *plan.ended}
    closed |= {p.lane for p in plan.joins} | {c.lane for c in plan.cancels}
    left = {lane: at for lane, at in lanes.items() if lane not in closed}
    left.update({p.lane: p.step for p in plan.opens})
    return left


def in_definition_order(spec: WorkflowSpec, step_ids: Iterable[str]) -> list[str]:
    """Step ids sorted as the definition writes them (depth first)."""
    return sorted(step_ids, key=spec.order_of)


def _lane_at(spec: WorkflowSpec, lanes: Lanes, step_id: str) -> str:
    lane = spec.lane_of(step_id)
    if lanes.get(lane) != step_id:
        where = f"at '{lanes[lane]}'" if lane in lanes else "not open"
        raise TransitionNotAllowed(f"step '{step_id}' is not open (its lane is {where})")
    return lane


def _follow(
    spec: WorkflowSpec,
    rest: dict[str, str],
    lane: str,
    move: Move,
    step_id: str,
    payload: Mapping[str, Any],
    context: Mapping[str, Any],
) -> Plan:
    """Apply `move` to `lane` (whose step `step_id` just finished); `rest`: the other lanes."""
    if move.status == Status.RUNNING:
        return Plan(Status.RUNNING, opens=enter(spec, lane, move.step))
    if move.status != Status.COMPLETED or lane == MAIN_LANE:
        return _end_instance(spec, rest, move, step_id)
    return _end_branch(spec, rest, lane, payload, context)


def _end_instance(spec: WorkflowSpec, rest: Lanes, move: Move, step_id: str) -> Plan:
    """The instance ends as `move` says; every other open lane is cancelled."""
    cancels = tuple(
        Cancel(lane, at, move.status, step_id)
        for lane, at in sorted(rest.items(), key=lambda item: spec.order_of(item[1]))
    )
    return Plan(move.status, cancels=cancels, error=move.error)


def _end_branch(
    spec: WorkflowSpec,
    rest: dict[str, str],
    lane: str,
    payload: Mapping[str, Any],
    context: Mapping[str, Any],
) -> Plan:
    """Branch `lane` reached `end`: the join fires when it should, and its lane moves on."""
    fork = spec.step(spec.fork_of(lane))
    open_siblings = {branch.id for branch in fork.parallel if branch.id in rest}
    if open_siblings and fork.join == "all":
        return Plan(Status.RUNNING, ended=(lane,))
    cancels = tuple(
        Cancel(other, at, "join", lane)
        for other, at in sorted(rest.items(), key=lambda item: spec.order_of(item[1]))
        if _is_within(spec, other, open_siblings)
    )
    fork_lane = spec.lane_of(fork.id)
    left = {key: at for key, at in rest.items() if key != fork_lane}
    left = {key: at for key, at in left.items() if not _is_within(spec, key, open_siblings)}
    move = advance(spec, fork.id, JOIN_RESULT, payload=payload, context=context)
    after = _follow(spec, left, fork_lane, move, fork.id, payload, context)
    return Plan(
        after.status,
        opens=after.opens,
        joins=(Position(fork_lane, fork.id), *after.joins),
        ended=(lane, *after.ended),
        cancels=(*cancels, *after.cancels),
        error=after.error,
    )


def _is_within(spec: WorkflowSpec, lane: str, branches: set[str]) -> bool:
    """Whether `lane` is one of `branches` or runs inside one of them (nested)."""
    while lane != MAIN_LANE:
        if lane in branches:
            return True
        lane = spec.lane_of(spec.fork_of(lane))
    return False
