"""Dry run: the path a workflow would take for a sample payload and given results. Pure.

Nothing is saved and no service is called: each visit of a step takes the next result given
for that step, and engine.advance (the same routing the instances use, CEL included) says
where it goes. The walk is bounded, so a loop ends with a clear message.
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
    goes_to: str  # a step id, or end / reject / fail
    note: str = ""


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
    step_id = spec.first_step
    checks = _payload_problems(spec, payload)
    for _ in range(limit):
        if not queues.get(step_id):
            message = f"waits at '{step_id}': no (more) results given for this step"
            return DryRun(tuple(visits), Status.RUNNING, step_id, message, checks)
        answer = queues[step_id].pop(0)
        context = {**context, step_id: dict(answer.data)}
        move = engine.advance(spec, step_id, answer.result, payload=payload, context=context)
        goes_to = move.step or _TERMINAL[move.status]
        title = spec.step(step_id).display_title
        visits.append(Visit(step_id, title, answer.result, goes_to, move.error or ""))
        if move.status != Status.RUNNING:
            return DryRun(tuple(visits), move.status, None, f"ends {move.status}", checks)
        step_id = move.step
    message = f"stopped after {limit} moves at '{step_id}': the path loops"
    return DryRun(tuple(visits), Status.RUNNING, step_id, message, checks)


def _payload_problems(spec: WorkflowSpec, payload: Mapping[str, Any]) -> tuple[str, ...]:
    """What the workflow's `input` schema says of the payload (a start would refuse it)."""
    if not spec.input_schema:
        return ()
    errors = Draft202012Validator(spec.input_schema).iter_errors(payload)
    return tuple(
        sorted(f"{'/'.join(map(str, e.absolute_path)) or 'payload'}: {e.message}" for e in errors)
    )
