"""The statutory deadline of an instance: from start to end, paused while the applicant is asked.

An instance keeps `deadline_at` (when the decision is due) and `awaiting_applicant_since`
(set while an applicant step waits). Pausing only sets the second; resuming moves the first
later by the time waited, counted as the deadline counts (wall-clock or working time).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from . import working_time


@dataclass(frozen=True, slots=True)
class DeadlineState:
    """How a deadline stands at one moment, as the status API and the tracker show it."""

    due_at: datetime  # while paused: when it would fall if the applicant answered now
    paused: bool
    remaining_seconds: int  # until due_at, from now (or from the end); negative when late


def resumed(
    deadline_at: datetime,
    paused_at: datetime,
    now: datetime,
    *,
    working: bool = False,
    calendar: working_time.Calendar | None = None,
) -> datetime:
    """The deadline after a pause from `paused_at` to `now`: as much time left as at the pause."""
    if now <= paused_at:
        return deadline_at
    if not working:
        return deadline_at + (now - paused_at)
    if calendar is None:
        raise ValueError("a working-time deadline needs a calendar")
    if deadline_at <= paused_at:  # already late when paused: just as late after
        return deadline_at + (now - paused_at)
    left = working_time.working_seconds_between(paused_at, deadline_at, calendar)
    return working_time.add_working_seconds(now, left, calendar)


def deadline_state(
    deadline_at: datetime,
    *,
    paused_at: datetime | None,
    ended_at: datetime | None,
    now: datetime,
    working: bool = False,
    calendar: working_time.Calendar | None = None,
) -> DeadlineState:
    """Where the deadline stands `now`: once ended, as it stood at the end."""
    if ended_at is not None:
        return DeadlineState(deadline_at, False, _seconds(deadline_at - ended_at))
    if paused_at is None:
        return DeadlineState(deadline_at, False, _seconds(deadline_at - now))
    due = resumed(deadline_at, paused_at, now, working=working, calendar=calendar)
    return DeadlineState(due, True, _seconds(due - now))


def _seconds(delta: timedelta) -> int:
    return int(delta.total_seconds())
