"""Where each problem of a draft goes on the admin form: Problem.step/field -> row and field.

The validator names a step by its id (or "#3" when it has none) and a field by its path in the
document ("timeout", "next[1].goto", "on.rejected"); the form has one row per step and fields
named after DraftStep's columns.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..definitions import Problem


@dataclass(frozen=True, slots=True)
class Placed:
    """A problem placed on the draft form: `row` is a step's index (None: the draft itself)."""

    row: int | None
    field: str | None  # a DraftStep or WorkflowDraft field name; None: the form as a whole
    message: str


_STEP_FIELD = {
    "id": "step_id",
    "service": "service",
    "title": "title",
    "description": "description",
    "timeout": "timeout",
    "onTimeout": "on_timeout",
    "escalateTo": "escalate_to",
    "assignee": "assignee",
    "retry": "retry_max",
    "retry.max": "retry_max",
    "retry.backoff": "retry_backoff",
    "next": "next",
    "on": "on",
}
_DRAFT_FIELD = {
    "id": "key",
    "name": "name",
    "description": "description",
    "public": "public",
    "input": "input_schema",
}
_PATH = re.compile(
    r"(?P<head>[A-Za-z]+(?:\.(?:max|backoff))?)(?:\[(?P<index>\d+)\])?(?:\.(?P<key>.+))?"
)


def place(problems: Sequence[Problem], step_ids: Sequence[str]) -> list[Placed]:
    """Put each problem on the row and field it concerns (Problem.step/field -> form field)."""
    placed, duplicates = [], {}
    for problem in problems:
        row = _row_of(problem, step_ids, duplicates)
        found = _PATH.fullmatch(problem.field or "")
        head = found["head"] if found else None
        message = problem.message
        if found and found["index"] is not None:
            message = f"line {int(found['index']) + 1}: {message}"
        elif found and found["key"] and head == "on":
            message = f"{found['key']}: {message}"
        if row is None:
            field = _DRAFT_FIELD.get(head or "") if problem.step is None else None
        else:
            field = _STEP_FIELD.get(head or "")
        placed.append(Placed(row, field, message))
    return placed


def _row_of(problem: Problem, step_ids: Sequence[str], duplicates: dict[str, int]) -> int | None:
    """The index of the row a problem's step label names ('approve' or '#3')."""
    label = problem.step
    if label is None:
        return None
    if label.startswith("#") and label[1:].isdigit():
        return int(label[1:]) - 1
    rows = [i for i, step_id in enumerate(step_ids) if step_id == label]
    if not rows:
        return None
    if problem.message.startswith("duplicate step id") and len(rows) > 1:
        duplicates[label] = duplicates.get(label, 0) + 1
        return rows[min(duplicates[label], len(rows) - 1)]
    return rows[0]
