"""What a task shows: its row in the inbox and header on its page, the application as
labelled fields, its history as readable events, and the labels of its outcomes."""

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.urls import reverse
from django.utils.timesince import timesince

from ..definitions import humanize
from ..models import Event, StepRun
from ..queries import catalog, outcomes

OUTCOME_LABELS = {"approved": "Approve", "rejected": "Reject"}
PAYLOAD_DEPTH = 8


@dataclass(frozen=True, slots=True)
class TaskRow:
    """One task as the inbox and the task page's header show it."""

    run: StepRun
    case_number: str
    title: str
    branch: str  # "Fire safety (Specialist reviews)" for a step inside a branch, else ""
    workflow: str
    waited: str
    time_left: str
    overdue: bool
    url: str


@dataclass(frozen=True, slots=True)
class Field:
    """One value of the application; `children` for a nested object or list."""

    label: str
    text: str = ""
    children: tuple["Field", ...] = ()


@dataclass(frozen=True, slots=True)
class Detail:
    """One detail of an event: its label, and its text or the moment it names."""

    label: str
    text: str
    moment: datetime | None = None


@dataclass(frozen=True, slots=True)
class EventRow:
    """One event of the history, with its details as readable pairs."""

    event: Event
    step: str
    actor: str
    details: tuple[Detail, ...]


@dataclass(frozen=True, slots=True)
class Finding:
    """What an earlier step found: its title, its result and its plain-language reasons."""

    title: str
    result: str
    reasons: tuple[str, ...]


def findings(runs: list[StepRun], titles: dict[str, str]) -> list[Finding]:
    """The reasons earlier steps gave (a validation's `rejected` with data.reasons), oldest first."""
    found = []
    for run in runs:
        if reasons := outcomes.reasons_of(run.output):
            found.append(Finding(titles.get(run.step_id, run.step_id), run.result, tuple(reasons)))
    return found


@dataclass(frozen=True, slots=True)
class PassedOnRow:
    """A task escalated or reassigned away from the reader: where it went, how it stands."""

    event: Event
    case_number: str
    title: str
    how: str
    now_with: str
    standing: str
    url: str


def passed_on_row(event: Event) -> PassedOnRow:
    """The trace of one task passed on from the reader (no query: its run is joined)."""
    run = event.run
    spec = catalog.spec_of(run.instance)
    if run.is_open:
        standing = "open"
    else:
        standing = f"{run.get_state_display().lower()}" + (f": {run.result}" if run.result else "")
    with_ = run.assignee_user.get_username() if run.assignee_user else None
    return PassedOnRow(
        event=event,
        case_number=run.instance.case_number,
        title=spec.step(run.step_id).display_title,
        how="Escalated" if event.type == Event.Type.ESCALATED else "Reassigned",
        now_with=with_ or (run.assignee_group.name if run.assignee_group else "—"),
        standing=standing,
        url=reverse("workflows:task", args=[run.pk]),
    )


def task_row(run: StepRun, now: datetime) -> TaskRow:
    """The display values of one task (no query: the definition and spec are cached)."""
    spec = catalog.spec_of(run.instance)
    started = run.started_at or run.created_at
    time_left, overdue = _time_left(run.due_at, now)
    return TaskRow(
        run=run,
        case_number=run.instance.case_number,
        title=spec.step(run.step_id).display_title,
        branch=branch_label(spec, run.lane),
        workflow=spec.display_name,
        waited=timesince(started, now, depth=2),
        time_left=time_left,
        overdue=overdue,
        url=reverse("workflows:task", args=[run.pk]),
    )


def branch_label(spec, lane: str) -> str:
    """Which branch a step belongs to, in words: "Fire safety (Specialist reviews)"; ""."""
    if not lane:
        return ""
    fork = spec.step(spec.fork_of(lane)).display_title
    return f"{spec.branch(lane).display_title} ({fork})"


def _time_left(due: datetime | None, now: datetime) -> tuple[str, bool]:
    if due is None:
        return "no deadline", False
    if due <= now:
        return f"overdue by {timesince(due, now, depth=2)}", True
    return f"{timesince(now, due, depth=2)} left", False


def payload_fields(value: Any, depth: int = 0) -> tuple[Field, ...]:
    """The application as labelled fields, nested objects and lists as children."""
    if isinstance(value, dict):
        items = [(humanize(str(key)) or str(key), item) for key, item in value.items()]
    elif isinstance(value, list):
        items = [(f"#{number}", item) for number, item in enumerate(value, 1)]
    else:
        return (Field("Value", _scalar(value)),)
    return tuple(_field(label, item, depth) for label, item in items)


def _field(label: str, value: Any, depth: int) -> Field:
    if isinstance(value, dict | list) and value and depth < PAYLOAD_DEPTH:
        return Field(label, children=payload_fields(value, depth + 1))
    return Field(label, _scalar(value))


def _scalar(value: Any) -> str:
    match value:
        case None | "" | [] | {}:
            return "—"
        case bool():
            return "Yes" if value else "No"
        case dict() | list():  # nested deeper than PAYLOAD_DEPTH
            return json.dumps(value, ensure_ascii=False)
    return str(value)


def event_row(event: Event, titles: dict[str, str]) -> EventRow:
    details = tuple(
        _detail(humanize(str(key)), value)
        for key, value in event.detail.items()
        if value not in (None, "", [], {})
    )
    actor = event.actor.removeprefix("user:")
    return EventRow(event, titles.get(event.step, event.step), actor, details)


def _detail(label: str, value: Any) -> Detail:
    """A detail; a moment written as ISO 8601 (retry_at, due_at) becomes a moment for people."""
    if isinstance(value, str) and _ISO_MOMENT.match(value):
        try:
            return Detail(label, value, datetime.fromisoformat(value))
        except ValueError:
            pass
    return Detail(label, value if isinstance(value, str) else _scalar(value))


_ISO_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def outcome_label(result: str) -> str:
    """The button text of an outcome: "Approve", "Reject", "Needs info"."""
    return OUTCOME_LABELS.get(result) or humanize(result)
