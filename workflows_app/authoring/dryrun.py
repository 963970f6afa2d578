"""Dry run: the path a workflow would take for a sample payload and given results. Pure.

Nothing is saved and no service is called: each visit of a step takes the next result given
for that step, and the engine (the same routing and lanes the instances use, CEL included)
says where it goes. Parallel branches take turns, one visit each, in definition order; a
workflow step takes the child's result (ok or rejected) like any other. The walk is bounded,
so a loop ends with a clear message.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

from .. import engine
from ..definitions import WorkflowSpec
from ..models import Status

MAX_MOVES = 100
_TERMINAL = {Status.COMPLETED: "end", Status.REJECTED: "reject", Status.FAILED: "fail"}


class BadAnswers(ValueError):
    """The results text cannot be read; the message names the line."""


@dataclass(frozen=True, slots=True)
class Answer:
    """One result given for one visit of a step, with the data the step would output."""

    result: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Visit:
    """One step of the path: the result it had and where that led."""

    step: str
    title: str
    result: str
    goes_to: str  # a step id, or end / reject / fail (end: of its branch, inside one)
    note: str = ""
    branch: str = ""  # the branch the step belongs to, if any


@dataclass(frozen=True, slots=True)
class DryRun:
    """The path, how it ended (a status, or running when it stopped) and why it stopped."""

    visits: tuple[Visit, ...]
    status: str
    stopped_at: str | None
    message: str
    payload_problems: tuple[str, ...] = ()


def parse_answers(text: str) -> dict[str, list[Answer]]:
    """Lines 'step: result' or 'step: result {"json": "data"}', in the order they happen."""
    answers: dict[str, list[Answer]] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        step, colon, rest = line.partition(":")
        result, _, data_text = rest.strip().partition(" ")
        if not colon or not step.strip() or not result:
            raise BadAnswers(f"line {number}: write 'step: result', e.g. approve: approved")
        answers.setdefault(step.strip(), []).append(Answer(result, _data(data_text, number)))
    return answers


def _data(text: str, number: int) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BadAnswers(f"line {number}: the data after the result is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BadAnswers(f"line {number}: the data after the result must be a JSON object")
    return data


def dry_run(
    spec: WorkflowSpec,
    payload: Mapping[str, Any],
    answers: Mapping[str, list[Answer]],
    *,
    limit: int = MAX_MOVES,
) -> DryRun:
    """Walk `spec` from its first step, taking each step's next answer, for at most `limit` moves."""
    queues = {step: list(given) for step, given in answers.items()}
    visits: list[Visit] = []
    context: dict[str, Any] = {}
    lanes = {p.lane: p.step for p in engine.begin(spec).opens}
    served: dict[str, int] = {}
    checks = _payload_problems(spec, payload)
    for _ in range(limit):
        step_id = _next_step(spec, lanes, queues, served)
        if step_id is None:
            return _waiting(spec, visits, lanes, checks)
        answer = queues[step_id].pop(0)
        context = {**context, step_id: dict(answer.data)}
        plan = engine.after_result(
            spec, lanes, step_id, answer.result, payload=payload, context=context
        )
        visits.extend(_visits(spec, step_id, answer.result, plan))
        lanes = engine.lanes_after(spec, lanes, step_id, plan)
        if plan.status != Status.RUNNING:
            return DryRun(tuple(visits), plan.status, None, f"ends {plan.status}", checks)
    waiting = ", ".join(f"'{step}'" for step in _workers(spec, lanes))
    message = f"stopped after {limit} moves at {waiting}: the path loops"
    return DryRun(tuple(visits), Status.RUNNING, _first(spec, lanes), message, checks)


def _workers(spec: WorkflowSpec, lanes: Mapping[str, str]) -> list[str]:
    """The open steps that take results (not the parallel steps waiting for branches)."""
    open_steps = [step for step in lanes.values() if spec.step(step).kind != "parallel"]
    return engine.in_definition_order(spec, open_steps)


def _first(spec: WorkflowSpec, lanes: Mapping[str, str]) -> str | None:
    return next(iter(_workers(spec, lanes)), None)


def _next_step(spec, lanes, queues, served: dict[str, int]) -> str | None:
    """The open step that goes next: branches take turns (the least served lane first)."""
    ready = [step for step in _workers(spec, lanes) if queues.get(step)]
    if not ready:
        return None
    chosen = min(ready, key=lambda step: served.get(spec.lane_of(step), 0))
    served[spec.lane_of(chosen)] = served.get(spec.lane_of(chosen), 0) + 1
    return chosen


def _waiting(spec, visits, lanes, checks) -> DryRun:
    waiting = _workers(spec, lanes)
    names = ", ".join(f"'{step}'" for step in waiting)
    these = "this step" if len(waiting) == 1 else "these steps"
    message = f"waits at {names}: no (more) results given for {these}"
    return DryRun(tuple(visits), Status.RUNNING, _first(spec, lanes), message, checks)


def _visits(spec: WorkflowSpec, step_id: str, result: str, plan: engine.Plan) -> list[Visit]:
    """The visit of `step_id`, then one per parallel step whose join fired (innermost first);
    the note says which branches ended and which open steps were cancelled."""
    notes = [f"branch '{branch}' ends" for branch in plan.ended[:1]]
    if plan.cancels:
        notes.append("cancels " + ", ".join(c.step for c in plan.cancels))
    if plan.error:
        notes.append(plan.error)
    visits = [_visit(spec, step_id, result, plan, "; ".join(notes))]
    for joined in plan.joins:
        fork = spec.step(joined.step)
        why = "the first branch ended" if fork.join == "any" else "every branch has ended"
        ends = [f"branch '{joined.lane}' ends"] if joined.lane in plan.ended else []
        note = "; ".join([f"join {fork.join}: {why}", *ends])
        visits.append(_visit(spec, joined.step, engine.JOIN_RESULT, plan, note))
    return visits


def _visit(spec: WorkflowSpec, step_id: str, result: str, plan: engine.Plan, note: str) -> Visit:
    lane = spec.lane_of(step_id)
    opened = [p.step for p in plan.opens if p.lane == lane]
    if lane in plan.ended:
        goes_to = "end"  # of its branch
    elif opened:
        goes_to = opened[0]
    else:
        goes_to = _TERMINAL[plan.status]
    title = spec.step(step_id).display_title
    return Visit(step_id, title, result, goes_to, note, lane)


def _payload_problems(spec: WorkflowSpec, payload: Mapping[str, Any]) -> tuple[str, ...]:
    """What the workflow's `input` schema says of the payload (a start would refuse it)."""
    if not spec.input_schema:
        return ()
    errors = Draft202012Validator(spec.input_schema).iter_errors(payload)
    return tuple(
        sorted(f"{'/'.join(map(str, e.absolute_path)) or 'payload'}: {e.message}" for e in errors)
    )
