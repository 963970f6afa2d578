"""The statutory deadline's clock on the instance row: started, paused, resumed.

Each function returns the instance fields to write, so the caller writes them in the same
guarded update and transaction as the step that starts, pauses or resumes the clock.
"""

from datetime import datetime
from typing import Any

from .. import engine
from ..definitions import WorkflowSpec
from ..models import WorkflowInstance
from ..queries import catalog


def started(spec: WorkflowSpec, now: datetime) -> datetime | None:
    """When the decision on a new instance is due (None: the workflow has no deadline)."""
    deadline = spec.deadline
    calendar = catalog.get_calendar() if deadline and deadline.working else None
    return engine.due_time(deadline, now, calendar)


def resumed_fields(instance: WorkflowInstance, now: datetime) -> dict[str, Any]:
    """The fields that end a wait for the applicant: the deadline moves by the time waited."""
    since = instance.awaiting_applicant_since
    if since is None:
        return {}
    changes: dict[str, Any] = {"awaiting_applicant_since": None}
    if instance.deadline_at is not None:
        deadline = catalog.spec_of(instance).deadline
        working = bool(deadline and deadline.working)
        calendar = catalog.get_calendar() if working else None
        changes["deadline_at"] = engine.resumed(
            instance.deadline_at, since, now, working=working, calendar=calendar
        )
    return changes
