"""Pure routing rules: where an instance goes next, what a time-out does, when to retry.

No database, no HTTP, no clock: every function takes what it needs and returns a decision,
so the rules are tested exhaustively with SimpleTestCase.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .definitions import RetryPolicy, StepSpec, WorkflowSpec
from .models import ServiceKind, Status

TERMINAL_STATUS = {"end": Status.COMPLETED, "reject": Status.REJECTED, "fail": Status.FAILED}
DEFAULT_RETRY = RetryPolicy()
MAX_BACKOFF_SECONDS = 3600


class TransitionNotAllowed(Exception):
    """The instance or task is not in a state where this action is possible (API: 409)."""


@dataclass(frozen=True, slots=True)
class Move:
    """Where an instance goes: a status, and the step to run when it keeps running."""

    status: str
    step: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class TimeoutAction:
    """What a step's time-out does: escalate (to `assignee`), fail, skip or retry."""

    kind: str
    assignee: str | None = None
    level: int = 0
    exhausted: bool = False  # the ladder ran out: the task goes to the supervisors


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
    """Where an instance goes after `step_id` finishes with `result` (CONTRACT §1, routing)."""
    step = spec.step(step_id)
    if result in step.on:
        return move_to(step.on[result])
    if step.branches:
        variables = {"payload": dict(payload), "context": dict(context), "result": result}
        for branch in step.branches:
            try:
                holds = branch.program.execute(variables)
            except Exception as exc:  # noqa: BLE001 - CEL raises several types for bad data
                return _condition_failed(step, branch.condition, f"cannot be evaluated ({exc})")
            if not isinstance(holds, bool):
                return _condition_failed(step, branch.condition, f"gave {holds!r}, not true/false")
            if holds:
                return move_to(branch.goto)
    elif step.next:
        return move_to(step.next)
    return move_to(spec.following(step_id))


def _condition_failed(step: StepSpec, condition: str, why: str) -> Move:
    return Move(Status.FAILED, error=f"step '{step.id}': condition `{condition}` {why}")


def on_timeout(
    step: StepSpec, *, service_kind: str, backup_group: str = "", level: int = 0
) -> TimeoutAction:
    """What happens when `step`'s time-out passes; `level` is the escalation level reached."""
    kind = step.on_timeout or ("escalate" if service_kind == ServiceKind.HUMAN else "fail")
    if kind != "escalate":
        return TimeoutAction(kind, level=level)
    ladder = step.escalate_to or ((f"group:{backup_group}",) if backup_group else ())
    if level < len(ladder):
        return TimeoutAction("escalate", assignee=ladder[level], level=level + 1)
    return TimeoutAction("escalate", level=level + 1, exhausted=True)


def retry_delay(
    policy: RetryPolicy | None,
    attempts: int,
    *,
    retry_after: float | None = None,
    jitter: Callable[[], float] = lambda: 0.5,
) -> float | None:
    """Seconds to wait before the next attempt after `attempts` failed ones, or None when spent.

    Exponential backoff with "equal jitter" (half fixed, half random), never less than a
    server's Retry-After, capped at an hour. `jitter` returns a number in [0, 1).
    """
    policy = policy or DEFAULT_RETRY
    if attempts > policy.max:
        return None
    base = min(policy.backoff.seconds * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS)
    delay = base / 2 + base / 2 * jitter()
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_BACKOFF_SECONDS))
    return delay
