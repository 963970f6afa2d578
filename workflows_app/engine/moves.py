"""Where an instance goes next: the first move, and the move after a step's result (pure)."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..definitions import StepSpec, WorkflowSpec
from ..definitions.cel_cost import MAX_COST, largest_collection
from ..models.choices import Status

TERMINAL_STATUS = {"end": Status.COMPLETED, "reject": Status.REJECTED, "fail": Status.FAILED}
REFUSAL = "rejected"  # the result that ends an instance `rejected` when `on` does not route it


class TransitionNotAllowed(Exception):
    """The instance or task is not in a state where this action is possible (API: 409)."""


@dataclass(frozen=True, slots=True)
class Move:
    """Where an instance goes: a status, and the step to run when it keeps running."""

    status: str
    step: str | None = None
    error: str | None = None


def start(spec: WorkflowSpec) -> Move:
    """The first move of a new instance."""
    return Move(Status.RUNNING, step=spec.first_step)


def move_to(target: str) -> Move:
    """The move for a step id or a terminal target (end, reject, fail)."""
    if target in TERMINAL_STATUS:
        return Move(TERMINAL_STATUS[target])
    return Move(Status.RUNNING, step=target)


def advance(
    spec: WorkflowSpec,
    step_id: str,
    result: str,
    *,
    payload: Mapping[str, Any],
    context: Mapping[str, Any],
) -> Move:
    """Where an instance goes after `step_id` finishes with `result` (docs/definitions.md, routing)."""
    step = spec.step(step_id)
    if result in step.on:
        return move_to(step.on[result])
    if result == REFUSAL:
        return move_to("reject")  # R2: a refusal ends the instance unless `on` routes it
    if step.conditions:
        variables = {"payload": dict(payload), "context": dict(context), "result": result}
        largest = None
        for entry in step.conditions:
            if entry.cost.nesting:  # a comprehension: estimate its cost against this data
                largest = largest_collection(payload, context) if largest is None else largest
                if (cost := entry.cost.estimate(largest)) > MAX_COST:
                    return _condition_failed(
                        step, entry.condition, _too_costly(entry, cost, largest)
                    )
            try:
                holds = entry.program.execute(variables)
            except Exception as exc:  # noqa: BLE001 - CEL raises several types for bad data
                return _condition_failed(step, entry.condition, f"cannot be evaluated ({exc})")
            if not isinstance(holds, bool):
                return _condition_failed(step, entry.condition, f"gave {holds!r}, not true/false")
            if holds:
                return move_to(entry.goto)
    elif step.next:
        return move_to(step.next)
    return move_to(spec.following(step_id))


def chosen_by_result(spec: WorkflowSpec, step_id: str, result: str) -> bool:
    """Whether `result` itself chose where the instance goes after `step_id` (an `on` entry
    or a refusal), rather than the step's place in the list or its plain `next`."""
    return result in spec.step(step_id).on or result == REFUSAL


def _too_costly(entry, cost: int, largest: int) -> str:
    return (
        f"is too costly for this application's data and was not evaluated: it nests "
        f"{entry.cost.nesting} comprehensions over lists or maps of up to {largest} items "
        f"(about {cost:,} steps; at most {MAX_COST:,} are allowed)"
    )


def _condition_failed(step: StepSpec, condition: str, why: str) -> Move:
    return Move(Status.FAILED, error=f"step '{step.id}': condition `{condition}` {why}")
