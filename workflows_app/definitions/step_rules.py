"""Rules for one step: id, service, timeout and onTimeout, assignee, escalation, retry."""

import re
from collections.abc import Mapping
from typing import Any

from .checks import (
    SERVICE_NAME,
    check_choice,
    check_duration,
    check_keys,
    describe,
)
from .durations import Duration
from .languages import check_text_map
from .problems import Report, field_name
from .route_rules import check_next, check_on
from .specs import TERMINALS, RetryPolicy, StepSpec

STEP_FIELDS = (
    *("id", "service", "title", "description", "timeout", "onTimeout"),
    *("escalateTo", "assignee", "retry", "next", "on"),
)
ON_TIMEOUT_ACTIONS = ("escalate", "fail", "skip", "retry", "reject")
MAX_RETRIES = 100

_STEP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_USERNAME = re.compile(r"[\w.@+-]{1,150}")
_DEFAULT_RETRY = RetryPolicy()


def check_step(raw: Any, path: tuple, report: Report) -> StepSpec | None:
    """One step; None when it cannot be built (problems are in `report`)."""
    if not isinstance(raw, Mapping):
        report.add(
            path, f"each step must be a mapping with 'id' and 'service', not {describe(raw)}"
        )
        return None
    check_keys(raw, STEP_FIELDS, path, report)
    step_id = check_step_id(raw, path, report)
    service = _check_service_ref(raw, path, report)
    timeout, on_timeout = _check_timeout(raw, path, report)
    assignee = None
    if raw.get("assignee") is not None:
        assignee = _check_principal(raw["assignee"], (*path, "assignee"), report)
    nxt, conditions = check_next(raw, path, report)
    spec = StepSpec(
        step_id or "",
        service or "",
        title=check_text_map(raw.get("title"), (*path, "title"), report),
        description=check_text_map(raw.get("description"), (*path, "description"), report),
        timeout=timeout,
        on_timeout=on_timeout,
        assignee=assignee,
        escalate_to=_check_escalate_to(raw, path, report),
        retry=_check_retry(raw, path, report),
        next=nxt,
        conditions=conditions,
        on=check_on(raw, path, report),
    )
    return spec if step_id and service else None


def check_step_id(raw: Mapping, path: tuple, report: Report, *, what: str = "step") -> str | None:
    """A step's (or a branch's) id: letters, digits, '-' and '_', and not a terminal word."""
    value = raw.get("id")
    if value is None:
        example = "approve" if what == "step" else "fire-safety"
        report.add(
            (*path, "id"), f"missing required field 'id' (a name for the {what}, e.g. {example})"
        )
    elif not isinstance(value, str):
        report.add((*path, "id"), f"{what} id must be text, not {describe(value)}")
    elif value.lower() in TERMINALS:
        report.add(
            (*path, "id"),
            f"'{value}' is a terminal target (end, reject, fail) and cannot be a {what} id; "
            f"rename the {what}",
        )
    elif not _STEP_ID.fullmatch(value):
        report.add(
            (*path, "id"),
            f"{what} id '{value}' may use only letters, digits, '-' and '_' "
            "(1-64 characters, starting with a letter or digit)",
        )
    else:
        return value
    return None


def _check_service_ref(raw: Mapping, path: tuple, report: Report) -> str | None:
    """The service name (whether it is registered is checked against the database)."""
    value = raw.get("service")
    if value is None:
        report.add(
            (*path, "service"),
            "missing required field 'service' (the registered service that runs this step; "
            "or 'parallel' for branches, 'workflow' for a sub-workflow)",
        )
    elif not isinstance(value, str) or not value.strip():
        report.add((*path, "service"), f"service must be a service name, not {describe(value)}")
    elif not SERVICE_NAME.fullmatch(value):
        report.add(
            (*path, "service"),
            f"service '{value}' is not a valid service name; use letters, digits, '.', '-' and "
            "'_' (1-100 characters)",
        )
    else:
        report.refer("service", value, (*path, "service"))
        return value
    return None


def _check_timeout(raw: Mapping, path: tuple, report: Report) -> tuple[Duration | None, str | None]:
    """`timeout` and `onTimeout`; onTimeout needs a timeout, the default is the engine's."""
    timeout = None
    if raw.get("timeout") is not None:
        timeout = check_duration(raw["timeout"], (*path, "timeout"), report)
    action = raw.get("onTimeout")
    if action is None:
        return timeout, None
    where = (*path, "onTimeout")
    if not check_choice(action, ON_TIMEOUT_ACTIONS, where, report):
        return timeout, None
    if raw.get("timeout") is None:
        report.add(
            where,
            f"onTimeout '{action}' needs a timeout; add one (e.g. timeout: 48h) "
            "or remove onTimeout",
        )
    return timeout, action


def _check_principal(value: Any, path: tuple, report: Report) -> str | None:
    """'group:NAME' or 'user:USERNAME' (whether the user exists is checked elsewhere)."""
    what = field_name(path[2:]) if path[:1] == ("steps",) else str(path[-1])
    if not isinstance(value, str):
        hint = "; in YAML put it in quotes: 'group:NAME'" if isinstance(value, Mapping) else ""
        report.add(
            path, f"{what} must be 'group:NAME' or 'user:USERNAME', not {describe(value)}{hint}"
        )
        return None
    kind, colon, name = value.partition(":")
    if not colon or kind not in ("group", "user"):
        hint = f"; did you mean 'group:{value}'?" if not colon and value.strip() else ""
        report.add(path, f"{what} '{value}' must be 'group:NAME' or 'user:USERNAME'{hint}")
    elif not name.strip():
        report.add(path, f"{what} '{value}' names no {kind}; write {kind}:NAME")
    elif name != name.strip() or len(name) > 150:
        report.add(path, f"{what} '{value}': the {kind} name has spaces around it or is too long")
    elif kind == "user" and not _USERNAME.fullmatch(name):
        report.add(
            path,
            f"{what} '{value}': '{name}' is not a username (letters, digits and @ . + - _)",
        )
    else:
        if kind == "user":
            report.refer("user", name, path)
        return value
    return None


def _check_escalate_to(raw: Mapping, path: tuple, report: Report) -> tuple[str, ...]:
    """The ordered escalation levels, each 'group:NAME' or 'user:USERNAME'."""
    value = raw.get("escalateTo")
    if value is None:
        return ()
    where = (*path, "escalateTo")
    if not isinstance(value, list):
        report.add(
            where,
            f"escalateTo must be a list such as [group:backup-reviewers], not {describe(value)}",
        )
        return ()
    found = [_check_principal(item, (*where, i), report) for i, item in enumerate(value)]
    return tuple(item for item in found if item)


def _check_retry(raw: Mapping, path: tuple, report: Report) -> RetryPolicy | None:
    """`retry: {max, backoff}` with the defaults of RetryPolicy for what is left out."""
    value = raw.get("retry")
    if value is None:
        return None
    where = (*path, "retry")
    if not isinstance(value, Mapping):
        report.add(
            where,
            f"retry must be a mapping such as {{max: 3, backoff: 10s}}, not {describe(value)}",
        )
        return None
    check_keys(value, ("max", "backoff"), where, report)
    retries = _DEFAULT_RETRY.max if value.get("max") is None else value["max"]
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES:
        report.add(
            (*where, "max"),
            f"retry.max must be a whole number from 0 to {MAX_RETRIES} (retries after the "
            f"first attempt), not {describe(retries)}",
        )
        retries = None
    backoff = _DEFAULT_RETRY.backoff
    if value.get("backoff") is not None:
        backoff = check_duration(value["backoff"], (*where, "backoff"), report, wall_clock=True)
    return RetryPolicy(retries, backoff) if retries is not None and backoff else None
