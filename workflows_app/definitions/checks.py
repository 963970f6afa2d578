"""Checks and message helpers that workflow, step and service rules share."""

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .durations import Duration, parse_duration
from .problems import Report

SERVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
WORKFLOW_KEY = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
MAX_DEPTH = 64

_ALIASES = {
    "then": "goto",
    "to": "goto",
    "when": "if",
    "condition": "if",
    "maxAttempts": "max",
    "retries": "max",
    "delay": "backoff",
    "interval": "backoff",
}


def describe(value: object) -> str:
    """How a value reads in a message: "a list", "a number", "text 'abc'"."""
    match value:
        case None:
            return "null"
        case bool():
            return f"{str(value).lower()} (true/false)"
        case int() | float():
            return f"the number {value}"
        case str():
            return f"text '{value}'"
        case Mapping():
            return "a mapping"
        case list() | tuple():
            return "a list"
        case bytes():
            return "binary data"
    return f"a {type(value).__name__}"


def suggest(word: str, choices: Sequence[str]) -> str:
    """ "; did you mean 'steps'?" for the closest choice, or "" when nothing is close."""
    squash = {c.lower().replace("_", "").replace("-", ""): c for c in choices}
    exact = squash.get(word.lower().replace("_", "").replace("-", ""))
    alias = _ALIASES.get(word) if _ALIASES.get(word) in choices else None
    close = difflib.get_close_matches(word.lower(), list(squash), n=1, cutoff=0.6)
    best = exact or alias or (squash[close[0]] if close else None)
    return f"; did you mean '{best}'?" if best else ""


def check_keys(data: Mapping, allowed: Sequence[str], path: tuple, report: Report) -> None:
    """Report each unknown key with the closest allowed one, or the list of allowed keys."""
    for key in data:
        if not isinstance(key, str) or key in allowed or (not path and key.startswith("x-")):
            continue
        hint = suggest(key, allowed) or f"; allowed fields: {', '.join(allowed)}"
        report.add((*path, key), f"unknown field '{key}'{hint}")


def check_choice(value: Any, choices: Sequence[str], path: tuple, report: Report) -> bool:
    """Whether `value` is one of `choices`; if not, report it with the closest choice."""
    if value in choices:
        return True
    hint = suggest(value, choices) if isinstance(value, str) else ""
    shown = f"'{value}'" if isinstance(value, str) else describe(value)
    report.add(path, f"{path[-1]} {shown} is not one of {', '.join(choices)}{hint}")
    return False


def check_duration(
    value: Any, path: tuple, report: Report, *, wall_clock: bool = False
) -> Duration | None:
    """A duration; with `wall_clock`, working time is refused."""
    try:
        duration = parse_duration(value)
    except ValueError as error:
        report.add(path, str(error))
        return None
    if wall_clock and duration.working:
        report.add(
            path,
            f"'{duration.text}' is working time; {path[-1]} must be wall-clock time such as 10s",
        )
        return None
    return duration


def plain_copy(value: Any, path: tuple, report: Report, parents: frozenset = frozenset()) -> Any:
    """A JSON-able copy of `value`; reports non-text keys and values JSON cannot hold."""
    if isinstance(value, Mapping | list | tuple) and (
        id(value) in parents or len(path) > MAX_DEPTH
    ):
        report.add(
            path,
            "this value contains itself (a YAML alias inside its own anchor) or nests too deeply",
        )
        return None
    inner = parents | {id(value)}
    if isinstance(value, Mapping):
        copy = {}
        for key, item in value.items():
            if not isinstance(key, str):
                report.add((*path, key), f"key {key!r} must be text; put it in quotes: '{key}'")
            copy[str(key)] = plain_copy(item, (*path, key), report, inner)
        return copy
    if isinstance(value, list | tuple):
        return [plain_copy(item, (*path, i), report, inner) for i, item in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        report.add(path, f"the number {value} is too large or not a number; JSON cannot hold it")
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    report.add(
        path, f"{describe(value)} is not allowed; use text, numbers, true/false, lists, maps"
    )
    return None
