"""Rules for a `services:` document: each service's kind and the fields that kind takes."""

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from .checks import (
    SERVICE_NAME,
    check_choice,
    check_duration,
    check_keys,
    describe,
    plain_copy,
    suggest,
)
from .form_rules import check_form
from .problems import InvalidDefinition, Report
from .specs import ServiceSpec

SERVICE_KINDS = ("http", "human", "python", "applicant")
SERVICE_FIELDS = {
    "http": ("kind", "url", "timeout", "secret", "secretEnv", "concurrency"),
    "human": ("kind", "group", "backupGroup"),
    "python": ("kind", "callable"),
    "applicant": ("kind", "form"),
}
DEFAULT_PYTHON_PREFIXES = ("workflows_app.builtin",)
MAX_CONCURRENCY = 1000

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")


def parse_services(
    data: Mapping[str, Any],
    *,
    source: str = "<services>",
    lines: Mapping[tuple, int] | None = None,
    python_prefixes: Sequence[str] = DEFAULT_PYTHON_PREFIXES,
) -> tuple[ServiceSpec, ...]:
    """Validate a `services:` document; raise InvalidDefinition listing every problem."""
    report = Report(source, lines)
    services = check_services(data, report, python_prefixes)
    if report.found:
        raise InvalidDefinition(report.problems())
    return services


def check_services(data: Any, report: Report, prefixes: Sequence[str]) -> tuple[ServiceSpec, ...]:
    """Every service of a `{services: {NAME: {...}}}` document."""
    if not isinstance(data, Mapping):
        report.add(
            (),
            "a services document must be a mapping {services: {NAME: {...}}}, "
            f"not {describe(data)}",
        )
        return ()
    plain_copy(data, (), report)
    check_keys(data, ("services", "subscriptions"), (), report)
    entries = data.get("services")
    if entries is None and "subscriptions" in data:
        return ()  # a file of subscriptions only
    if not isinstance(entries, Mapping) or not entries:
        shown = "empty" if isinstance(entries, Mapping) else describe(entries)
        report.add(
            ("services",),
            f"services must be a non-empty mapping NAME: {{kind: ...}}; it is {shown}",
        )
        return ()
    report.services_named.extend(name for name in entries if isinstance(name, str))
    found = [_check_service(name, raw, report, prefixes) for name, raw in entries.items()]
    return tuple(s for s in found if s)


def _check_service(
    name: Any, raw: Any, report: Report, prefixes: Sequence[str]
) -> ServiceSpec | None:
    """One service entry; its kind decides which fields it takes."""
    path = ("services", name)
    if not isinstance(name, str) or not SERVICE_NAME.fullmatch(name):
        message = f"'{name}' is not a valid service name; use letters, digits, '.', '-' and '_'"
        report.add(path, message)
    if not isinstance(raw, Mapping):
        report.add(
            path,
            f"a service must be a mapping with 'kind' (http, human, python or applicant), "
            f"not {describe(raw)}",
        )
        return None
    kind = raw.get("kind")
    if kind is None:
        report.add(
            (*path, "kind"), "missing required field 'kind'; use http, human, python or applicant"
        )
        return None
    if not check_choice(kind, SERVICE_KINDS, (*path, "kind"), report):
        return None
    _check_service_keys(raw, kind, path, report)
    check = {
        "http": _check_http,
        "human": _check_human,
        "python": _check_python,
        "applicant": _check_applicant,
    }[kind]
    values = check(raw, path, report, prefixes)
    if not report.is_clean(path):
        return None
    source = plain_copy(raw, path, Report("", None))
    return ServiceSpec(
        name, kind, **values, source=source, origin=report.source, lines=report.lines
    )


def _check_service_keys(raw: Mapping, kind: str, path: tuple, report: Report) -> None:
    """Unknown fields for this kind; a field of another kind says which kind takes it."""
    allowed = SERVICE_FIELDS[kind]
    for key in raw:
        if not isinstance(key, str) or key in allowed:
            continue
        owner = next((k for k, keys in SERVICE_FIELDS.items() if key in keys), None)
        if owner:
            takes = ", ".join(allowed[1:])
            hint = f"; it belongs to {owner} services ({_an(kind)} service takes {takes})"
        else:
            hint = suggest(key, allowed) or f"; {_an(kind)} service takes {', '.join(allowed)}"
        report.add((*path, key), f"unknown field '{key}' for {_an(kind)} service{hint}")


def _required_text(raw: Mapping, key: str, path: tuple, report: Report, example: str) -> str | None:
    """A required non-empty text field of a service."""
    value = raw.get(key)
    if isinstance(value, str) and value.strip():
        return value
    shown = "missing" if value is None else f"{describe(value)}"
    report.add(
        (*path, key), f"{key} is {shown}; {_an(raw['kind'])} service needs it, e.g. {example}"
    )
    return None


def _optional(raw: Mapping, key: str) -> Any:
    """An optional field's value; absent and null both read as ""."""
    value = raw.get(key)
    return "" if value is None else value


def _check_http(raw: Mapping, path: tuple, report: Report, prefixes: Sequence[str]) -> dict:
    """url (http/https), optional timeout (wall-clock), secret or secretEnv."""
    url = _required_text(raw, "url", path, report, "https://example.org/validate")
    parts = urlsplit(url or "")
    if url and (parts.scheme not in ("http", "https") or not parts.hostname):
        report.add((*path, "url"), f"url '{url}' must be an http:// or https:// URL with a host")
    timeout = None
    if raw.get("timeout") is not None:
        timeout = check_duration(raw["timeout"], (*path, "timeout"), report, wall_clock=True)
    secret, secret_env = _optional(raw, "secret"), _optional(raw, "secretEnv")
    if not isinstance(secret, str):
        report.add((*path, "secret"), f"secret must be text, not {describe(secret)}")
    elif secret.startswith("whsec_") and not _is_base64(secret.removeprefix("whsec_")):
        report.add((*path, "secret"), "secret starts with 'whsec_' but the rest is not base64")
    if not isinstance(secret_env, str) or (secret_env and not _ENV_NAME.fullmatch(secret_env)):
        report.add(
            (*path, "secretEnv"),
            "secretEnv must name an environment variable (letters, digits, _), "
            f"not {describe(secret_env)}",
        )
    elif secret and secret_env:
        report.add((*path, "secretEnv"), "use secret or secretEnv, not both")
    return {
        "url": url,
        "timeout": timeout,
        "secret": secret,
        "secret_env": secret_env,
        "concurrency": _check_concurrency(raw, path, report),
    }


def _check_concurrency(raw: Mapping, path: tuple, report: Report) -> int | None:
    """`concurrency`: how many calls may be in flight at once per worker cluster, 1 to 1000."""
    value = raw.get("concurrency")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        report.add(
            (*path, "concurrency"),
            f"concurrency must be a whole number from 1 to {MAX_CONCURRENCY}, not {describe(value)}",
        )
        return None
    return value


def _is_base64(text: str) -> bool:
    """Whether `text` is non-empty, valid base64."""
    try:
        return bool(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        return False


def _check_human(raw: Mapping, path: tuple, report: Report, prefixes: Sequence[str]) -> dict:
    """group (required) and backupGroup: Django group names, without a 'group:' prefix."""
    group = _required_text(raw, "group", path, report, "plan-reviewers")
    backup = _optional(raw, "backupGroup")
    if not isinstance(backup, str):
        report.add(
            (*path, "backupGroup"), f"backupGroup must be a group name, not {describe(backup)}"
        )
    for key, value in (("group", group), ("backupGroup", backup)):
        if isinstance(value, str) and value.startswith("group:"):
            report.add((*path, key), f"write the group name without 'group:' ('{value[6:]}')")
        elif isinstance(value, str) and (value != value.strip() or len(value) > 150):
            report.add((*path, key), f"{key} '{value}' has spaces around it or is longer than 150")
    return {"group": group, "backup_group": backup}


def _check_python(raw: Mapping, path: tuple, report: Report, prefixes: Sequence[str]) -> dict:
    """callable: a dotted path under one of the allowed module prefixes (not imported here)."""
    target = _required_text(raw, "callable", path, report, "workflows_app.builtin.notify_applicant")
    if target is None:
        return {}
    if not _DOTTED.fullmatch(target):
        report.add(
            (*path, "callable"),
            f"callable '{target}' must be a dotted path module.function, "
            "e.g. workflows_app.builtin.notify_applicant",
        )
    elif not any(target.startswith(f"{prefix}.") for prefix in prefixes):
        report.add(
            (*path, "callable"),
            f"callable '{target}' is not under an allowed module ({', '.join(prefixes)}); "
            "the setting HMS_PYTHON_SERVICES lists the allowed prefixes",
        )
    return {"callable": target}


def _check_applicant(raw: Mapping, path: tuple, report: Report, prefixes: Sequence[str]) -> dict:
    """form: what the applicant is asked (definitions/form_rules.py)."""
    return {"form": check_form(raw, path, report)}


def _an(word: str) -> str:
    """ "an http", "a human", "a python"."""
    return f"an {word}" if word[:1] in "aeiouh" and word != "human" else f"a {word}"
