"""An applicant's answer checked against the form they were asked (pure).

The same rules hold whether the answer comes from the tracker's form or from a portal through
the API: each field's value of the right kind, required ones present, files as ids of
documents of the same application whose type and size the field allows.
"""

import datetime
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..definitions import FormField, format_size

TEXT_MAX = 1000
TEXTAREA_MAX = 10_000


class InvalidAnswer(Exception):
    """The answer breaks the form; `problems` maps a field name ("" for the whole) to why."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__("; ".join(f"{k}: {v}" if k else v for k, v in self.problems.items()))


@dataclass(frozen=True, slots=True)
class DocumentFacts:
    """What the rules need to know of an uploaded document."""

    type: str  # the document type told by its content: pdf, png, jpg, ...
    size: int


def check_answer(
    form: tuple[FormField, ...],
    data: Mapping[str, Any],
    documents: Mapping[str, DocumentFacts],
    *,
    max_upload: int,
) -> dict[str, Any]:
    """The answer as kept in `context[step]`: each given field's value, files as document ids."""
    names = [field.name for field in form]
    problems = {
        key: f"this request does not ask for '{key}'; it asks for {', '.join(names)}"
        for key in data
        if key not in names
    }
    answer: dict[str, Any] = {}
    for field in form:
        value = data.get(field.name)
        if value is None or value == "":
            if field.required:
                problems[field.name] = "this is required"
            continue
        try:
            answer[field.name] = _value(field, value, documents, max_upload)
        except ValueError as why:
            problems[field.name] = str(why)
    if problems:
        raise InvalidAnswer(problems)
    return answer


def _value(field: FormField, value: Any, documents: Mapping[str, DocumentFacts], limit: int):
    match field.type:
        case "text" | "textarea":
            return _text(value, TEXT_MAX if field.type == "text" else TEXTAREA_MAX)
        case "number":
            return _number(value)
        case "date":
            return _date(value)
        case "choice":
            values = [choice for choice, _ in field.choices]
            if value not in values:
                raise ValueError(f"choose one of {', '.join(values)}")
            return value
    return _document(field, value, documents, limit)


def _text(value: Any, longest: int) -> str:
    if not isinstance(value, str):
        raise ValueError("must be text")
    text = value.strip()
    if len(text) > longest:
        raise ValueError(f"is {len(text)} characters long; at most {longest} are allowed")
    return text


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("must be a number, such as 12 or 3.5")
    return value


def _date(value: Any) -> str:
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise ValueError("must be a date written YYYY-MM-DD, such as 2026-03-31")


def _document(field: FormField, value: Any, documents: Mapping[str, DocumentFacts], limit: int):
    facts = documents.get(value) if isinstance(value, str) else None
    if facts is None:
        raise ValueError("must be the documentId of a document uploaded for this application")
    if facts.type not in field.accept:
        kinds = field.accept
        either = " or ".join([", ".join(kinds[:-1]), kinds[-1]]) if len(kinds) > 1 else kinds[0]
        raise ValueError(f"is of type {facts.type}; send {either}")
    largest = min(field.max_size or limit, limit)
    if facts.size > largest:
        raise ValueError(f"is {format_size(facts.size)}; at most {format_size(largest)} is allowed")
    return value
