"""What a passed time-out does, when an automated step is tried again, when a step falls due."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..definitions import Duration, RetryPolicy, StepSpec
from ..models.choices import ServiceKind
from . import working_time

DEFAULT_RETRY = RetryPolicy()
MAX_BACKOFF_SECONDS = 3600
# Without `onTimeout`: a person's task is escalated, an unanswered request to the applicant
# lapses (the application ends rejected), an automated step fails.
_DEFAULT_ACTION = {ServiceKind.HUMAN: "escalate", ServiceKind.APPLICANT: "reject"}


@dataclass(frozen=True, slots=True)
class TimeoutAction:
    """What a step's time-out does: escalate (to `assignee`), fail, skip, retry or reject."""

    kind: str
    assignee: str | None = None
    level: int = 0
    exhausted: bool = False  # the ladder ran out: the task goes to the supervisors


def on_timeout(
    step: StepSpec, *, service_kind: str, backup_group: str = "", level: int = 0
) -> TimeoutAction:
    """What happens when `step`'s time-out passes; `level` is the escalation level reached."""
    kind = step.on_timeout or _DEFAULT_ACTION.get(service_kind, "fail")
    if service_kind == ServiceKind.APPLICANT and kind == "escalate":
        # Nobody is above the applicant (publishing refuses it): remind them instead.
        kind = "retry"
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


def due_time(
    timeout: Duration | None, now: datetime, calendar: working_time.Calendar | None = None
) -> datetime | None:
    """When a step with this time-out falls due; working time counts on `calendar`."""
    if timeout is None:
        return None
    if timeout.working:
        if calendar is None:
            raise ValueError(f"'{timeout.text}' is working time: a calendar is needed")
        return working_time.add_working_seconds(now, timeout.seconds, calendar)
    return now + timedelta(seconds=timeout.seconds)


def earliest(moment: datetime, due: datetime | None) -> datetime:
    """The earlier of a moment and an optional deadline."""
    return min(moment, due) if due else moment
