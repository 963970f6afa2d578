"""Parse and validate workflow definitions and services documents into frozen dataclasses.

Pure: no database, no network, no imports of named callables. Every problem of a document is
collected (file, workflow, step, field and line) before InvalidDefinition is raised, so an
author fixes a file in one pass. CONTRACT.md sections 1 and 2 define the format.
"""

import base64
import binascii
import difflib
import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cel
import yaml
from jsonschema import Draft202012Validator

from workflows_app.durations import Duration, parse_duration

TERMINALS = frozenset({"end", "reject", "fail"})
ON_TIMEOUT_ACTIONS = ("escalate", "fail", "skip", "retry")
SERVICE_KINDS = ("http", "human", "python")
CEL_VARIABLES = ("payload", "context", "result")
WORKFLOW_FIELDS = ("id", "name", "description", "public", "input", "steps")
STEP_FIELDS = (
    *("id", "service", "title", "description", "timeout", "onTimeout"),
    *("escalateTo", "assignee", "retry", "next", "on"),
)
SERVICE_FIELDS = {
    "http": ("kind", "url", "timeout", "secret", "secretEnv"),
    "human": ("kind", "group", "backupGroup"),
    "python": ("kind", "callable"),
}
MAX_RETRIES = 100
DEFAULT_PYTHON_PREFIXES = ("workflows_app.builtin",)

_WORKFLOW_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_STEP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_SERVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_USERNAME = re.compile(r"[\w.@+-]{1,150}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
_CEL_ERROR = re.compile(r"<input>:(\d+):(\d+): (?:Syntax error: )?([^\n]*)")
_CEL_BOUND = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
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
_MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a definition, placed as precisely as the source allows."""

    source: str
    message: str
    step: str | None = None  # step id, "#3" (third step, no usable id), or service name
    field: str | None = None  # "timeout", "next[0].if", "retry.max", "on.rejected"
    line: int | None = None
    workflow: str | None = None  # workflow id, or "#2" (second document, no usable id)
    scope: str = "step"  # what `step` names: "step" or "service"

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        parts = [_labelled("workflow", self.workflow), _labelled(self.scope, self.step)]
        parts.append(_labelled("field", self.field))
        about = ", ".join(p for p in parts if p)
        return f"{where}: {about}: {self.message}" if about else f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able form for API error bodies."""
        keys = ("source", "workflow", "step", "field", "line", "message")
        return {key: getattr(self, key) for key in keys}


class InvalidDefinition(Exception):
    """A definition or services document breaks the rules; `problems` lists every one."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(self.problems)  # args hold the problems, so the exception pickles

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often an automated step is retried, and the base delay between tries."""

    max: int = 3  # retries AFTER the first attempt (max: 2 -> at most 3 requests)
    backoff: Duration = Duration(10, text="10s")  # base delay; the dispatcher doubles it


@dataclass(frozen=True, slots=True)
class Branch:
    """One `{if, goto}` entry of a step's `next` list; the CEL program is compiled at load."""

    condition: str
    goto: str
    program: "cel.Program" = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One step of a workflow as written, validated."""

    id: str
    service: str
    title: str = ""
    description: str = ""
    timeout: Duration | None = None
    on_timeout: str | None = None  # None: the engine picks (fail, or escalate for human steps)
    escalate_to: tuple[str, ...] = ()
    assignee: str | None = None
    retry: RetryPolicy | None = None
    next: str | None = None
    branches: tuple[Branch, ...] = ()
    on: Mapping[str, str] = field(default_factory=dict)

    @property
    def display_title(self) -> str:
        """The title, or the id made readable ("checkDocs" -> "Check docs")."""
        return self.title or humanize(self.id)

    @property
    def targets(self) -> tuple[str, ...]:
        """Every step id or terminal this step may route to, in the order written."""
        found = [*self.on.values(), *(b.goto for b in self.branches)]
        return tuple(dict.fromkeys([*found, self.next] if self.next else found))


@dataclass(frozen=True, slots=True)
class WorkflowSpec:
    """A validated workflow definition; `source` is the document as loaded."""

    id: str
    steps: tuple[StepSpec, ...]
    name: str = ""
    description: str = ""
    public: bool = False
    input_schema: Mapping[str, Any] | None = None
    source: Mapping[str, Any] = field(default_factory=dict, compare=False)
    origin: str = field(default="", compare=False, repr=False)  # file name, "<admin>", ...
    lines: Mapping[tuple, int] = field(default_factory=dict, compare=False, repr=False)

    def step(self, step_id: str) -> StepSpec:
        """The step with this id; KeyError if there is none."""
        return self.steps[self._index(step_id)]

    def following(self, step_id: str) -> str:
        """The step after `step_id` in list order, or "end" after the last one."""
        index = self._index(step_id) + 1
        return self.steps[index].id if index < len(self.steps) else "end"

    @property
    def first_step(self) -> str:
        """The id of the step an instance starts with."""
        return self.steps[0].id

    @property
    def step_ids(self) -> tuple[str, ...]:
        """Step ids in list order."""
        return tuple(s.id for s in self.steps)

    @property
    def display_name(self) -> str:
        """The name, or the id made readable ("building-permit" -> "Building permit")."""
        return self.name or humanize(self.id)

    def digest(self) -> str:
        """sha256 hex of the canonical JSON of `source`: same document, same digest."""
        return digest_of(self.source)

    def problem(self, message: str, *, step: str | None = None, path: tuple = ()) -> Problem:
        """A Problem placed at `path` (inside `step` when given), for checks made elsewhere."""
        report = _Report(self.origin or "<definition>", self.lines, workflow=self.id)
        report.step_labels = dict(enumerate(self.step_ids))
        full = ("steps", self._index(step), *path) if step is not None else path
        return report.make(full, message)

    def _index(self, step_id: str) -> int:
        """The position of a step; KeyError if there is none."""
        for index, step in enumerate(self.steps):
            if step.id == step_id:
                return index
        raise KeyError(step_id)


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A validated service registration (kind http, human or python)."""

    name: str
    kind: str
    url: str = ""
    timeout: Duration | None = None
    secret: str = ""
    secret_env: str = ""
    group: str = ""
    backup_group: str = ""
    callable: str = ""
    source: Mapping[str, Any] = field(default_factory=dict, compare=False)
    origin: str = field(default="", compare=False, repr=False)
    lines: Mapping[tuple, int] = field(default_factory=dict, compare=False, repr=False)

    def problem(self, message: str, *, path: tuple = ()) -> Problem:
        """A Problem about this service (at `path` inside it), for checks made elsewhere."""
        report = _Report(self.origin or "<services>", self.lines)
        return report.make(("services", self.name, *path), message)


@dataclass(frozen=True, slots=True)
class Document:
    """Everything one file holds."""

    workflows: tuple[WorkflowSpec, ...] = ()
    services: tuple[ServiceSpec, ...] = ()


_DEFAULT_RETRY = RetryPolicy()


def humanize(name: str) -> str:
    """A readable title from an id: "check-docs", "check_docs", "checkDocs" -> "Check docs"."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("-", " ").replace("_", " ")
    parts = [w.lower() if w[:1].isupper() and w[1:].islower() else w for w in words.split()]
    text = " ".join(parts)
    return text[:1].upper() + text[1:]


def digest_of(document: Any) -> str:
    """sha256 hex of canonical JSON (sorted keys, compact separators, UTF-8)."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- Problems, placed by path ---------------------------------------------------------------


class _Report:
    """Collects (path, message) pairs for one document and turns them into Problems."""

    def __init__(
        self, source: str, lines: Mapping[tuple, int] | None, workflow: str | None = None
    ) -> None:
        self.source, self.lines, self.workflow = source, lines or {}, workflow
        self.step_labels: dict[int, str] = {}
        self.targets: list[tuple[tuple, str]] = []  # (path, target) checked once ids are known
        self.found: list[tuple[tuple, str]] = []

    def add(self, path: tuple, message: str) -> None:
        """Note a problem at `path` (a tuple of keys and indexes from the document root)."""
        self.found.append((path, message))

    def line_of(self, path: tuple) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None

    def make(self, path: tuple, message: str) -> Problem:
        """A Problem for `path`: its step (or service), field and line."""
        step, scope, rest = None, "step", path
        if len(path) >= 2 and path[0] == "steps" and isinstance(path[1], int):
            step, rest = self.step_labels.get(path[1], f"#{path[1] + 1}"), path[2:]
        elif len(path) >= 2 and path[0] == "services":
            step, scope, rest = str(path[1]), "service", path[2:]
        line = self.line_of(path)
        return Problem(self.source, message, step, _field_name(rest), line, self.workflow, scope)

    def problems(self) -> list[Problem]:
        """Every problem noted, in line order."""
        made = [self.make(path, message) for path, message in self.found]
        return sorted(made, key=lambda p: p.line or 0)


def _field_name(path: tuple) -> str | None:
    """("next", 0, "if") -> "next[0].if"; () -> None."""
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    return text.lstrip(".") or None


def _labelled(label: str, value: str | None) -> str:
    """ "step 'approve'", "step #3", or "" when there is no value."""
    if not value:
        return ""
    return f"{label} {value}" if value.startswith("#") else f"{label} '{value}'"


def _kind(value: object) -> str:
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


def _suggest(word: str, choices: Sequence[str]) -> str:
    """ "; did you mean 'steps'?" for the closest choice, or "" when nothing is close."""
    squash = {c.lower().replace("_", "").replace("-", ""): c for c in choices}
    exact = squash.get(word.lower().replace("_", "").replace("-", ""))
    alias = _ALIASES.get(word) if _ALIASES.get(word) in choices else None
    close = difflib.get_close_matches(word.lower(), list(squash), n=1, cutoff=0.6)
    best = exact or alias or (squash[close[0]] if close else None)
    return f"; did you mean '{best}'?" if best else ""


def _check_keys(data: Mapping, allowed: Sequence[str], path: tuple, report: _Report) -> None:
    """Report each unknown key with the closest allowed one, or the list of allowed keys."""
    for key in data:
        if not isinstance(key, str) or key in allowed or (not path and key.startswith("x-")):
            continue
        hint = _suggest(key, allowed) or f"; allowed fields: {', '.join(allowed)}"
        report.add((*path, key), f"unknown field '{key}'{hint}")


def _plain(value: Any, path: tuple, report: _Report, parents: frozenset = frozenset()) -> Any:
    """A JSON-able copy of `value`; reports non-text keys and values JSON cannot hold."""
    if isinstance(value, Mapping | list | tuple) and (
        id(value) in parents or len(path) > _MAX_DEPTH
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
            copy[str(key)] = _plain(item, (*path, key), report, inner)
        return copy
    if isinstance(value, list | tuple):
        return [_plain(item, (*path, i), report, inner) for i, item in enumerate(value)]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    report.add(path, f"{_kind(value)} is not allowed; use text, numbers, true/false, lists, maps")
    return None


# --- Workflow documents ---------------------------------------------------------------------


def parse_definition(
    data: Mapping[str, Any],
    *,
    source: str = "<definition>",
    lines: Mapping[tuple, int] | None = None,
) -> WorkflowSpec:
    """Validate one workflow document; raise InvalidDefinition listing every problem."""
    report = _Report(source, lines)
    spec = _check_workflow(data, report)
    if report.found or spec is None:
        raise InvalidDefinition(report.problems())
    return spec


def _check_workflow(data: Any, report: _Report) -> WorkflowSpec | None:
    """The WorkflowSpec when `data` is valid; otherwise None, with problems in `report`."""
    if not isinstance(data, Mapping):
        report.add((), f"a workflow must be a mapping with 'id' and 'steps', not {_kind(data)}")
        return None
    source = _plain(data, (), report)
    workflow_id = _check_workflow_id(data, report)
    _check_keys(data, WORKFLOW_FIELDS, (), report)
    name = _check_text(data, "name", (), report)
    description = _check_text(data, "description", (), report)
    public = False if data.get("public") is None else data["public"]
    if not isinstance(public, bool):
        hint = " (yes/no/on/off are text here)" if isinstance(public, str) else ""
        report.add(("public",), f"public must be true or false, not {_kind(public)}{hint}")
    schema = _check_input(data, report)
    steps = _check_steps(data, report)
    if report.found or workflow_id is None:
        return None
    return WorkflowSpec(
        workflow_id,
        tuple(steps),
        name,
        description,
        public,
        schema,
        source,
        report.source,
        report.lines,
    )


def _check_workflow_id(data: Mapping, report: _Report) -> str | None:
    """The workflow id when it is a slug; it also labels the workflow's problems."""
    if "id" not in data:
        report.add(("id",), "missing required field 'id' (the workflow key, e.g. building-permit)")
        return None
    value = data["id"]
    if not isinstance(value, str) or not value.strip():
        report.add(("id",), f"id must be a slug such as building-permit, not {_kind(value)}")
        return None
    report.workflow = value
    if not _WORKFLOW_ID.fullmatch(value):
        report.add(
            ("id",),
            f"id '{value}' is not a slug; use 1-64 lowercase letters, digits and hyphens, "
            "starting with a letter or digit (e.g. building-permit)",
        )
        return None
    return value


def _check_text(data: Mapping, key: str, path: tuple, report: _Report) -> str:
    """An optional text field; "" when absent or wrong (wrong is reported)."""
    value = data.get(key, "")
    if value is None or isinstance(value, str):
        return value or ""
    report.add((*path, key), f"{key} must be text, not {_kind(value)}")
    return ""


def _check_input(data: Mapping, report: _Report) -> Mapping[str, Any] | None:
    """The `input` JSON Schema (draft 2020-12), with each schema error reported."""
    schema = data.get("input")
    if schema is None:
        return None
    if not isinstance(schema, Mapping):
        report.add(("input",), f"input must be a JSON Schema object, not {_kind(schema)}")
        return None
    meta = Draft202012Validator(Draft202012Validator.META_SCHEMA)
    errors = sorted(meta.iter_errors(schema), key=lambda e: [str(p) for p in e.path])
    for error in errors:
        where = ".".join(str(p) for p in error.path)
        at = f" at {where}" if where else ""
        report.add(("input", *error.path), f"input is not a valid JSON Schema{at}: {error.message}")
    return None if errors else _plain(schema, ("input",), _Report("", None))


def _check_steps(data: Mapping, report: _Report) -> list[StepSpec]:
    """Each step, then ids (unique) and every routing target (known)."""
    raw = data.get("steps")
    if "steps" not in data:
        report.add(("steps",), "missing required field 'steps' (the ordered list of steps)")
        return []
    if not isinstance(raw, list) or not raw:
        shown = "empty" if isinstance(raw, list) else f"{_kind(raw)}, not a list"
        report.add(("steps",), f"steps must be a non-empty list of steps; it is {shown}")
        return []
    for index, step in enumerate(raw):
        if isinstance(step, Mapping) and isinstance(step.get("id"), str) and step["id"].strip():
            report.step_labels[index] = step["id"]
    specs = [_check_step(step, ("steps", index), report) for index, step in enumerate(raw)]
    ids = _check_unique_ids(report)
    _check_targets(ids, report)
    return [s for s in specs if s is not None]


def _check_unique_ids(report: _Report) -> list[str]:
    """Step ids in order; a repeated id is reported on its second use."""
    first: dict[str, int] = {}
    for index, step in report.step_labels.items():
        if step in first:
            report.add(
                ("steps", index, "id"),
                f"duplicate step id '{step}'; step #{first[step] + 1} already uses it",
            )
        first.setdefault(step, index)
    return list(first)


def _check_targets(ids: list[str], report: _Report) -> None:
    """Every `next`, `goto` and `on` target names a step of this workflow or a terminal."""
    for path, target in report.targets:
        if target in ids or target in TERMINALS:
            continue
        hint = _suggest(target, [*ids, *sorted(TERMINALS)])
        report.add(
            path,
            f"'{target}' is not a step of this workflow{hint} "
            "(use a step id, or end, reject or fail)",
        )


# --- Steps ----------------------------------------------------------------------------------


def _check_step(raw: Any, path: tuple, report: _Report) -> StepSpec | None:
    """One step; None when it cannot be built (problems are in `report`)."""
    if not isinstance(raw, Mapping):
        report.add(path, f"each step must be a mapping with 'id' and 'service', not {_kind(raw)}")
        return None
    _check_keys(raw, STEP_FIELDS, path, report)
    step_id = _check_step_id(raw, path, report)
    service = _check_service_ref(raw, path, report)
    timeout, on_timeout = _check_timeout(raw, path, report)
    assignee = None
    if raw.get("assignee") is not None:
        assignee = _check_principal(raw["assignee"], (*path, "assignee"), report)
    nxt, branches = _check_next(raw, path, report)
    spec = StepSpec(
        step_id or "",
        service or "",
        title=_check_text(raw, "title", path, report),
        description=_check_text(raw, "description", path, report),
        timeout=timeout,
        on_timeout=on_timeout,
        assignee=assignee,
        escalate_to=_check_escalate_to(raw, path, report),
        retry=_check_retry(raw, path, report),
        next=nxt,
        branches=branches,
        on=_check_on(raw, path, report),
    )
    return spec if step_id and service else None


def _check_step_id(raw: Mapping, path: tuple, report: _Report) -> str | None:
    """The step id: letters, digits, '-' and '_', and not a terminal word."""
    value = raw.get("id")
    if value is None:
        report.add((*path, "id"), "missing required field 'id' (a name for the step, e.g. approve)")
    elif not isinstance(value, str):
        report.add((*path, "id"), f"step id must be text, not {_kind(value)}")
    elif value.lower() in TERMINALS:
        report.add(
            (*path, "id"),
            f"'{value}' is a terminal target (end, reject, fail) and cannot be a step id; "
            "rename the step",
        )
    elif not _STEP_ID.fullmatch(value):
        report.add(
            (*path, "id"),
            f"step id '{value}' may use only letters, digits, '-' and '_' "
            "(1-64 characters, starting with a letter or digit)",
        )
    else:
        return value
    return None


def _check_service_ref(raw: Mapping, path: tuple, report: _Report) -> str | None:
    """The service name (whether it is registered is checked against the database)."""
    value = raw.get("service")
    if value is None:
        report.add(
            (*path, "service"),
            "missing required field 'service' (the registered service that runs this step)",
        )
    elif not isinstance(value, str) or not value.strip():
        report.add((*path, "service"), f"service must be a service name, not {_kind(value)}")
    elif not _SERVICE_NAME.fullmatch(value):
        report.add(
            (*path, "service"),
            f"service '{value}' is not a valid service name; use letters, digits, '.', '-' and "
            "'_' (1-100 characters)",
        )
    else:
        return value
    return None


def _check_duration(
    value: Any, path: tuple, report: _Report, *, wall_clock: bool = False
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


def _check_timeout(
    raw: Mapping, path: tuple, report: _Report
) -> tuple[Duration | None, str | None]:
    """`timeout` and `onTimeout`; onTimeout needs a timeout, the default is the engine's."""
    timeout = None
    if raw.get("timeout") is not None:
        timeout = _check_duration(raw["timeout"], (*path, "timeout"), report)
    action = raw.get("onTimeout")
    if action is None:
        return timeout, None
    where = (*path, "onTimeout")
    if action not in ON_TIMEOUT_ACTIONS:
        hint = _suggest(action, ON_TIMEOUT_ACTIONS) if isinstance(action, str) else ""
        shown = f"'{action}'" if isinstance(action, str) else _kind(action)
        report.add(where, f"onTimeout {shown} is not one of escalate, fail, skip, retry{hint}")
        return timeout, None
    if raw.get("timeout") is None:
        report.add(
            where,
            f"onTimeout '{action}' needs a timeout; add one (e.g. timeout: 48h) or remove onTimeout",
        )
    return timeout, action


def _check_principal(value: Any, path: tuple, report: _Report) -> str | None:
    """'group:NAME' or 'user:USERNAME' (whether the user exists is checked elsewhere)."""
    what = _field_name(path[2:]) if path[:1] == ("steps",) else str(path[-1])
    if not isinstance(value, str):
        hint = "; in YAML put it in quotes: 'group:NAME'" if isinstance(value, Mapping) else ""
        report.add(
            path, f"{what} must be 'group:NAME' or 'user:USERNAME', not {_kind(value)}{hint}"
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
        return value
    return None


def _check_escalate_to(raw: Mapping, path: tuple, report: _Report) -> tuple[str, ...]:
    """The ordered escalation levels, each 'group:NAME' or 'user:USERNAME'."""
    value = raw.get("escalateTo")
    if value is None:
        return ()
    where = (*path, "escalateTo")
    if not isinstance(value, list):
        report.add(
            where,
            f"escalateTo must be a list such as [group:backup-reviewers], not {_kind(value)}",
        )
        return ()
    found = [_check_principal(item, (*where, i), report) for i, item in enumerate(value)]
    return tuple(item for item in found if item)


def _check_retry(raw: Mapping, path: tuple, report: _Report) -> RetryPolicy | None:
    """`retry: {max, backoff}` with the defaults of RetryPolicy for what is left out."""
    value = raw.get("retry")
    if value is None:
        return None
    where = (*path, "retry")
    if not isinstance(value, Mapping):
        report.add(
            where, f"retry must be a mapping such as {{max: 3, backoff: 10s}}, not {_kind(value)}"
        )
        return None
    _check_keys(value, ("max", "backoff"), where, report)
    retries = _DEFAULT_RETRY.max if value.get("max") is None else value["max"]
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES:
        report.add(
            (*where, "max"),
            f"retry.max must be a whole number from 0 to {MAX_RETRIES} (retries after the "
            f"first attempt), not {_kind(retries)}",
        )
        retries = None
    backoff = _DEFAULT_RETRY.backoff
    if value.get("backoff") is not None:
        backoff = _check_duration(value["backoff"], (*where, "backoff"), report, wall_clock=True)
    return RetryPolicy(retries, backoff) if retries is not None and backoff else None


def _check_target(value: Any, path: tuple, report: _Report) -> str | None:
    """A target's form; whether it names a known step is checked once all ids are known."""
    if isinstance(value, str) and value.strip():
        report.targets.append((path, value))
        return value
    what = _field_name(path[2:])
    report.add(path, f"{what} must name a step id or end, reject or fail, not {_kind(value)}")
    return None


def _check_next(raw: Mapping, path: tuple, report: _Report) -> tuple[str | None, tuple]:
    """`next`: a step id / terminal, or a non-empty list of {if, goto} branches."""
    value, where = raw.get("next"), (*path, "next")
    if value is None:
        return None, ()
    if isinstance(value, list) and value:
        found = [_check_branch(item, (*where, i), report) for i, item in enumerate(value)]
        return None, tuple(b for b in found if b)
    if isinstance(value, str):
        return _check_target(value, where, report), ()
    if isinstance(value, Mapping):
        shown = "a single mapping; put it in a list: next: [{if: ..., goto: ...}]"
    else:
        shown = "an empty list" if isinstance(value, list) else _kind(value)
    report.add(where, f"next must be a step id or a list of {{if, goto}} entries, not {shown}")
    return None, ()


def _check_branch(item: Any, path: tuple, report: _Report) -> Branch | None:
    """One `{if: EXPR, goto: STEP}` entry."""
    what = _field_name(path[2:])
    if not isinstance(item, Mapping):
        report.add(path, f"{what} must be a mapping with 'if' and 'goto', not {_kind(item)}")
        return None
    _check_keys(item, ("if", "goto"), path, report)
    program = goto = None
    if "if" not in item:
        report.add(
            path, f"{what} has no 'if'; every entry needs a condition (if: 'true' for a fallback)"
        )
    else:
        program = _check_condition(item["if"], (*path, "if"), report)
    if "goto" not in item:
        report.add(path, f"{what} has no 'goto'; name the step to go to when the condition holds")
    else:
        goto = _check_target(item["goto"], (*path, "goto"), report)
    if program is None or goto is None:
        return None
    return Branch(item["if"], goto, program)


def _check_condition(expr: Any, path: tuple, report: _Report) -> "cel.Program | None":
    """Compile a CEL condition; report syntax errors and unknown top-level variables."""
    if not isinstance(expr, str):
        hint = f"; write '{str(expr).lower()}' in quotes" if isinstance(expr, bool) else ""
        report.add(path, f"condition must be a CEL expression in text, not {_kind(expr)}{hint}")
        return None
    if not expr.strip():
        report.add(path, "condition is empty; write a CEL expression such as payload.docs == false")
        return None
    try:
        program = cel.compile(expr)
    except ValueError as error:
        report.add(path, _cel_syntax_message(expr, str(error)))
        return None
    bound = set(_CEL_BOUND.findall(expr))
    unknown = sorted(set(program.variables()) - bound - set(CEL_VARIABLES))
    for name in unknown:
        hint = "" if _suggest(name, CEL_VARIABLES) else f' (put text in quotes: "{name}")'
        report.add(
            path, f"unknown variable '{name}' in condition; use payload, context or result{hint}"
        )
    return None if unknown else program


def _cel_syntax_message(expr: str, error: str) -> str:
    """The first CEL parser error as "... at line L, column C: detail"."""
    found = _CEL_ERROR.search(error)
    if not found:
        return f"condition '{_short(expr)}' is not valid CEL: {_short(error, 200)}"
    line, column, detail = found.groups()
    if "<EOF>" in detail:
        detail = "the expression ends too early"
    detail = re.sub(r" expecting \{[^}]{40,}\}", "", detail)
    where = f"line {line}, column {column}" if "\n" in expr.strip() else f"column {column}"
    return f"condition '{_short(expr)}' has a CEL syntax error at {where}: {detail}"


def _short(text: str, limit: int = 80) -> str:
    """Text on one line, cut at `limit` characters, for messages."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else f"{flat[: limit - 3]}..."


def _check_on(raw: Mapping, path: tuple, report: _Report) -> dict[str, str]:
    """`on`: result name -> step id or terminal."""
    value = raw.get("on")
    if value is None:
        return {}
    where = (*path, "on")
    if not isinstance(value, Mapping):
        report.add(
            where, f"on must map results to steps, e.g. {{rejected: reject}}, not {_kind(value)}"
        )
        return {}
    routes = {}
    for result, target in value.items():
        if isinstance(result, str) and not result.strip():
            report.add(
                (*where, result), "on has an empty result name; name a result such as rejected"
            )
        elif isinstance(result, str) and _check_target(target, (*where, result), report):
            routes[result] = target
    return routes


# --- Services documents ---------------------------------------------------------------------


def parse_services(
    data: Mapping[str, Any],
    *,
    source: str = "<services>",
    lines: Mapping[tuple, int] | None = None,
    python_prefixes: Sequence[str] = DEFAULT_PYTHON_PREFIXES,
) -> tuple[ServiceSpec, ...]:
    """Validate a `services:` document; raise InvalidDefinition listing every problem."""
    report = _Report(source, lines)
    services = _check_services(data, report, python_prefixes)
    if report.found:
        raise InvalidDefinition(report.problems())
    return services


def _check_services(data: Any, report: _Report, prefixes: Sequence[str]) -> tuple[ServiceSpec, ...]:
    """Every service of a `{services: {NAME: {...}}}` document."""
    if not isinstance(data, Mapping):
        report.add(
            (),
            f"a services document must be a mapping {{services: {{NAME: {{...}}}}}}, not {_kind(data)}",
        )
        return ()
    _plain(data, (), report)
    _check_keys(data, ("services",), (), report)
    entries = data.get("services")
    if not isinstance(entries, Mapping) or not entries:
        shown = "empty" if isinstance(entries, Mapping) else _kind(entries)
        report.add(
            ("services",),
            f"services must be a non-empty mapping NAME: {{kind: ...}}; it is {shown}",
        )
        return ()
    found = [_check_service(name, raw, report, prefixes) for name, raw in entries.items()]
    return tuple(s for s in found if s)


def _check_service(
    name: Any, raw: Any, report: _Report, prefixes: Sequence[str]
) -> ServiceSpec | None:
    """One service entry; its kind decides which fields it takes."""
    path = ("services", name)
    if not isinstance(name, str) or not _SERVICE_NAME.fullmatch(name):
        message = f"'{name}' is not a valid service name; use letters, digits, '.', '-' and '_'"
        report.add(path, message)
    if not isinstance(raw, Mapping):
        report.add(
            path,
            f"a service must be a mapping with 'kind' (http, human or python), not {_kind(raw)}",
        )
        return None
    kind = raw.get("kind")
    if kind is None:
        report.add((*path, "kind"), "missing required field 'kind'; use http, human or python")
        return None
    if kind not in SERVICE_KINDS:
        hint = _suggest(kind, SERVICE_KINDS) if isinstance(kind, str) else ""
        shown = f"'{kind}'" if isinstance(kind, str) else _kind(kind)
        report.add((*path, "kind"), f"kind {shown} is not one of http, human, python{hint}")
        return None
    _check_service_keys(raw, kind, path, report)
    check = {"http": _check_http, "human": _check_human, "python": _check_python}[kind]
    values = check(raw, path, report, prefixes)
    if not _report_ok(report, path):
        return None
    source = _plain(raw, path, _Report("", None))
    return ServiceSpec(
        name, kind, **values, source=source, origin=report.source, lines=report.lines
    )


def _check_service_keys(raw: Mapping, kind: str, path: tuple, report: _Report) -> None:
    """Unknown fields for this kind; a field of another kind says which kind takes it."""
    allowed = SERVICE_FIELDS[kind]
    for key in raw:
        if not isinstance(key, str) or key in allowed:
            continue
        owner = next((k for k, keys in SERVICE_FIELDS.items() if key in keys), None)
        if owner:
            hint = f"; it belongs to {owner} services ({_an(kind)} service takes {', '.join(allowed[1:])})"
        else:
            hint = _suggest(key, allowed) or f"; {_an(kind)} service takes {', '.join(allowed)}"
        report.add((*path, key), f"unknown field '{key}' for {_an(kind)} service{hint}")


def _required_text(
    raw: Mapping, key: str, path: tuple, report: _Report, example: str
) -> str | None:
    """A required non-empty text field of a service."""
    value = raw.get(key)
    if isinstance(value, str) and value.strip():
        return value
    shown = "missing" if value is None else f"{_kind(value)}"
    report.add(
        (*path, key), f"{key} is {shown}; {_an(raw['kind'])} service needs it, e.g. {example}"
    )
    return None


def _optional(raw: Mapping, key: str) -> Any:
    """An optional field's value; absent and null both read as ""."""
    value = raw.get(key)
    return "" if value is None else value


def _check_http(raw: Mapping, path: tuple, report: _Report, prefixes: Sequence[str]) -> dict:
    """url (http/https), optional timeout (wall-clock), secret or secretEnv."""
    url = _required_text(raw, "url", path, report, "https://example.org/validate")
    parts = urlsplit(url or "")
    if url and (parts.scheme not in ("http", "https") or not parts.hostname):
        report.add((*path, "url"), f"url '{url}' must be an http:// or https:// URL with a host")
    timeout = None
    if raw.get("timeout") is not None:
        timeout = _check_duration(raw["timeout"], (*path, "timeout"), report, wall_clock=True)
    secret, secret_env = _optional(raw, "secret"), _optional(raw, "secretEnv")
    if not isinstance(secret, str):
        report.add((*path, "secret"), f"secret must be text, not {_kind(secret)}")
    elif secret.startswith("whsec_") and not _is_base64(secret.removeprefix("whsec_")):
        report.add((*path, "secret"), "secret starts with 'whsec_' but the rest is not base64")
    if not isinstance(secret_env, str) or (secret_env and not _ENV_NAME.fullmatch(secret_env)):
        report.add(
            (*path, "secretEnv"),
            f"secretEnv must name an environment variable (letters, digits, _), not {_kind(secret_env)}",
        )
    elif secret and secret_env:
        report.add((*path, "secretEnv"), "use secret or secretEnv, not both")
    return {"url": url, "timeout": timeout, "secret": secret, "secret_env": secret_env}


def _is_base64(text: str) -> bool:
    """Whether `text` is non-empty, valid base64."""
    try:
        return bool(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        return False


def _check_human(raw: Mapping, path: tuple, report: _Report, prefixes: Sequence[str]) -> dict:
    """group (required) and backupGroup: Django group names, without a 'group:' prefix."""
    group = _required_text(raw, "group", path, report, "plan-reviewers")
    backup = _optional(raw, "backupGroup")
    if not isinstance(backup, str):
        report.add((*path, "backupGroup"), f"backupGroup must be a group name, not {_kind(backup)}")
    for key, value in (("group", group), ("backupGroup", backup)):
        if isinstance(value, str) and value.startswith("group:"):
            report.add((*path, key), f"write the group name without 'group:' ('{value[6:]}')")
        elif isinstance(value, str) and (value != value.strip() or len(value) > 150):
            report.add((*path, key), f"{key} '{value}' has spaces around it or is longer than 150")
    return {"group": group, "backup_group": backup}


def _check_python(raw: Mapping, path: tuple, report: _Report, prefixes: Sequence[str]) -> dict:
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


def _an(word: str) -> str:
    """ "an http", "a human", "a python"."""
    return f"an {word}" if word[:1] in "aeiouh" and word != "human" else f"a {word}"


def _report_ok(report: _Report, path: tuple) -> bool:
    """No problem reported at or below `path` so far."""
    return not any(found[: len(path)] == path for found, _ in report.found)


# --- Files ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Item:
    """One document of a file: its data, the line of each path, repeated keys."""

    data: Any
    lines: dict[tuple, int]
    repeated: list[tuple[tuple, int]]


def load_text(
    text: str,
    *,
    source: str,
    format: str | None = None,
    python_prefixes: Sequence[str] = DEFAULT_PYTHON_PREFIXES,
) -> Document:
    """Parse JSON or YAML text holding workflows and/or services; raise InvalidDefinition."""
    text = text.removeprefix("\ufeff")
    fmt = format or _guess_format(source, text)
    if fmt not in ("json", "yaml"):
        raise InvalidDefinition([Problem(source, f"unknown format '{fmt}'; use json or yaml")])
    items, problems = _read_json(text, source) if fmt == "json" else _read_yaml(text, source)
    if not items and not problems:
        problems = [Problem(source, "the file holds no workflow or services document")]
    document, found = _check_items(items, source, python_prefixes)
    if problems or found:
        raise InvalidDefinition([*found, *problems])
    return document


def load_file(
    path: str | Path, *, python_prefixes: Sequence[str] = DEFAULT_PYTHON_PREFIXES
) -> Document:
    """Read a .json, .yaml or .yml file and load it; unreadable files are problems too."""
    path, source = Path(path), str(path)
    fmt = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}.get(path.suffix.lower())
    if fmt is None:
        message = f"unknown file type '{path.suffix}'; use .json, .yaml or .yml"
        raise InvalidDefinition([Problem(source, message)])
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise InvalidDefinition(
            [Problem(source, f"cannot read the file: {error.strerror}")]
        ) from None
    except UnicodeDecodeError as error:
        message = f"the file is not UTF-8 text (byte {error.start})"
        raise InvalidDefinition([Problem(source, message)]) from None
    return load_text(text, source=source, format=fmt, python_prefixes=python_prefixes)


def _guess_format(source: str, text: str) -> str:
    """From the extension of `source`, else JSON when the text starts with { or [."""
    suffix = Path(source).suffix.lower()
    if suffix in (".yaml", ".yml", ".json"):
        return "json" if suffix == ".json" else "yaml"
    return "json" if text.lstrip()[:1] in ("{", "[") else "yaml"


def _check_items(
    items: list[_Item], source: str, prefixes: Sequence[str]
) -> tuple[Document, list[Problem]]:
    """Validate every document of a file, and that workflow ids and service names are unique."""
    workflows, services, problems = [], [], []
    seen: dict[tuple, int | None] = {}
    for number, item in enumerate(items, 1):
        is_services = _is_services(item.data)
        label = None if is_services or len(items) == 1 else f"#{number}"
        report = _Report(source, item.lines, workflow=label)
        for path, line in item.repeated:
            report.add(path, f"duplicate key '{path[-1]}'; line {line} sets it too")
        if is_services:
            found = _check_services(item.data, report, prefixes)
            _check_unique([("services", s.name) for s in found], seen, report)
            services.extend(found)
        else:
            workflow_id = item.data.get("id") if isinstance(item.data, Mapping) else None
            _check_unique(
                [("id", workflow_id)] if isinstance(workflow_id, str) else [], seen, report
            )
            if spec := _check_workflow(item.data, report):
                workflows.append(spec)
        problems.extend(report.problems())
    return Document(tuple(workflows), tuple(services)), problems


def _check_unique(
    keys: list[tuple[str, str]], seen: dict[tuple, int | None], report: _Report
) -> None:
    """Report a workflow id or service name that an earlier document of the file defined."""
    for key in keys:
        path = key if key[0] == "services" else ("id",)
        if key in seen:
            what = "service" if key[0] == "services" else "workflow id"
            where = f" (line {seen[key]})" if seen[key] else ""
            report.add(path, f"duplicate {what} '{key[1]}'; an earlier document defines it{where}")
        seen.setdefault(key, report.line_of(path))


def _is_services(data: Any) -> bool:
    """A services document has `services` and no workflow keys."""
    return isinstance(data, Mapping) and "services" in data and not {"id", "steps"} & set(data)


def _read_json(text: str, source: str) -> tuple[list[_Item], list[Problem]]:
    """JSON documents; lines come from composing the same text as YAML when that works."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        message = f"JSON syntax error: {error.msg} (line {error.lineno}, column {error.colno})"
        return [], [Problem(source, message, line=error.lineno)]
    loader = _Loader(text.replace("\t", " "))  # JSON strings hold no raw tabs; YAML refuses them
    try:
        lines, repeated = _node_lines(loader.get_single_node(), loader)
    except yaml.YAMLError:
        lines, repeated = {}, []  # valid JSON that PyYAML cannot read (tabs): no line numbers
    finally:
        loader.dispose()
    return _split(data, lines, repeated), []


def _read_yaml(text: str, source: str) -> tuple[list[_Item], list[Problem]]:
    """YAML documents (separated by ---); a syntax error keeps the documents before it."""
    items: list[_Item] = []
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            lines, repeated = _node_lines(node, loader)
            data = loader.construct_document(node)
            if data is not None:
                items.extend(_split(data, lines, repeated))
    except yaml.MarkedYAMLError as error:  # syntax errors, and tags such as !!python/object
        return items, [_yaml_problem(error, source)]
    except yaml.YAMLError as error:
        return items, [Problem(source, f"YAML error: {error}")]
    finally:
        loader.dispose()
    return items, []


def _yaml_problem(error: yaml.MarkedYAMLError, source: str) -> Problem:
    """A YAML syntax error as a Problem on the line where it was noticed."""
    mark = error.problem_mark or error.context_mark
    line = mark.line + 1 if mark else None
    context = f" {error.context}" if error.context else ""
    where = f" (line {line}, column {mark.column + 1})" if mark else ""
    kind = (
        "YAML error"
        if isinstance(error, yaml.constructor.ConstructorError)
        else "YAML syntax error"
    )
    return Problem(source, f"{kind}: {error.problem}{context}{where}", line=line)


def _split(data: Any, lines: dict, repeated: list) -> list[_Item]:
    """A list document gives one item per element (paths re-rooted), anything else one item."""
    if not isinstance(data, list):
        return [_Item(data, lines, repeated)]
    return [
        _Item(
            element,
            {path[1:]: line for path, line in lines.items() if path[:1] == (index,)},
            [(path[1:], line) for path, line in repeated if path[:1] == (index,)],
        )
        for index, element in enumerate(data)
    ]


def _node_lines(node: yaml.Node, loader: yaml.SafeLoader) -> tuple[dict, list]:
    """The line of every key and list element of a composed document, and its repeated keys."""
    lines: dict[tuple, int] = {(): node.start_mark.line + 1}
    repeated: list[tuple[tuple, int]] = []
    _walk(node, (), lines, repeated, loader, frozenset())
    return lines, repeated


def _walk(
    node: yaml.Node,
    path: tuple,
    lines: dict,
    repeated: list,
    loader: yaml.SafeLoader,
    stack: frozenset,
) -> None:
    """Record lines below `node`; `stack` stops at aliases that refer to themselves."""
    if id(node) in stack or len(path) > _MAX_DEPTH:
        return
    for key, line, child in _children(node, loader):
        here = (*path, key)
        if here in lines and not isinstance(key, int):
            repeated.append((here, lines[here]))
        lines[here] = line
        _walk(child, here, lines, repeated, loader, stack | {id(node)})


def _children(node: yaml.Node, loader: yaml.SafeLoader) -> Iterator[tuple[Any, int, yaml.Node]]:
    """(index or key, line, child node) of a sequence or mapping node, before merges (<<)."""
    if isinstance(node, yaml.SequenceNode):
        for index, child in enumerate(node.value):
            yield index, child.start_mark.line + 1, child
    elif isinstance(node, yaml.MappingNode):
        for key_node, child in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            try:
                key = loader.construct_object(key_node)
            except yaml.YAMLError:
                loader.recursive_objects.pop(key_node, None)
                continue
            yield key, key_node.start_mark.line + 1, child


class _Loader(yaml.SafeLoader):
    """YAML 1.2 scalars: only true/false are booleans (`on:` stays a key), dates stay text."""


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, rx)
        for tag, rx in resolvers
        if not tag.endswith((":bool", ":int", ":timestamp", ":value"))
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
)
