"""Rules for a workflow document as a whole: its id, name, input schema and list of steps."""

from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator

from .checks import WORKFLOW_KEY, check_duration, check_keys, describe, plain_copy
from .flow_rules import check_any_step
from .languages import check_text_map
from .problems import InvalidDefinition, Report
from .retention import parse_retention
from .route_rules import check_targets
from .specs import StepSpec, WorkflowSpec

WORKFLOW_FIELDS = ("id", "name", "description", "public", "input", "deadline", "retention", "steps")
# More steps than any real procedure has; far more make every page of the workflow slow
# (an 8,000-step file took 78 s to show as a draft), so they are refused before any check.
MAX_STEPS = 500


def parse_definition(
    data: Mapping[str, Any],
    *,
    source: str = "<definition>",
    lines: Mapping[tuple, int] | None = None,
) -> WorkflowSpec:
    """Validate one workflow document; raise InvalidDefinition listing every problem."""
    report = Report(source, lines)
    spec = check_workflow(data, report)
    if report.found or spec is None:
        raise InvalidDefinition(report.problems(), references=report.references())
    return spec


def check_workflow(data: Any, report: Report) -> WorkflowSpec | None:
    """The WorkflowSpec when `data` is valid; otherwise None, with problems in `report`."""
    if not isinstance(data, Mapping):
        report.add((), f"a workflow must be a mapping with 'id' and 'steps', not {describe(data)}")
        return None
    source = plain_copy(data, (), report)
    workflow_id = _check_workflow_id(data, report)
    check_keys(data, WORKFLOW_FIELDS, (), report)
    name = check_text_map(data.get("name"), ("name",), report)
    description = check_text_map(data.get("description"), ("description",), report)
    public = False if data.get("public") is None else data["public"]
    if not isinstance(public, bool):
        hint = " (yes/no/on/off are text here)" if isinstance(public, str) else ""
        report.add(("public",), f"public must be true or false, not {describe(public)}{hint}")
    schema = _check_input(data, report)
    deadline = None
    if data.get("deadline") is not None:
        deadline = check_duration(data["deadline"], ("deadline",), report)
    retention = None
    if data.get("retention") is not None:
        try:
            retention = parse_retention(data["retention"])
        except ValueError as exc:
            report.add(("retention",), f"retention: {exc}")
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
        references=tuple(report.references()),
        deadline=deadline,
        retention=retention,
    )


def _check_workflow_id(data: Mapping, report: Report) -> str | None:
    """The workflow id when it is a slug; it also labels the workflow's problems."""
    if "id" not in data:
        report.add(("id",), "missing required field 'id' (the workflow key, e.g. building-permit)")
        return None
    value = data["id"]
    if not isinstance(value, str) or not value.strip():
        report.add(("id",), f"id must be a slug such as building-permit, not {describe(value)}")
        return None
    report.workflow = value
    if not WORKFLOW_KEY.fullmatch(value):
        report.add(
            ("id",),
            f"id '{value}' is not a slug; use 1-64 lowercase letters, digits and hyphens, "
            "starting with a letter or digit (e.g. building-permit)",
        )
        return None
    return value


def _check_input(data: Mapping, report: Report) -> Mapping[str, Any] | None:
    """The `input` JSON Schema (draft 2020-12), with each schema error reported."""
    schema = data.get("input")
    if schema is None:
        return None
    if not isinstance(schema, Mapping):
        report.add(("input",), f"input must be a JSON Schema object, not {describe(schema)}")
        return None
    meta = Draft202012Validator(Draft202012Validator.META_SCHEMA)
    errors = sorted(meta.iter_errors(schema), key=lambda e: [str(p) for p in e.path])
    for error in errors:
        where = ".".join(str(p) for p in error.path)
        at = f" at {where}" if where else ""
        report.add(("input", *error.path), f"input is not a valid JSON Schema{at}: {error.message}")
    return None if errors else plain_copy(schema, ("input",), Report("", None))


def _check_steps(data: Mapping, report: Report) -> list[StepSpec]:
    """Each step, then ids (unique) and every routing target (known)."""
    raw = data.get("steps")
    if "steps" not in data:
        report.add(("steps",), "missing required field 'steps' (the ordered list of steps)")
        return []
    if not isinstance(raw, list) or not raw:
        shown = "empty" if isinstance(raw, list) else f"{describe(raw)}, not a list"
        report.add(("steps",), f"steps must be a non-empty list of steps; it is {shown}")
        return []
    if len(raw) > MAX_STEPS:
        report.add(
            ("steps",),
            f"the workflow has {len(raw)} steps; a workflow may have at most {MAX_STEPS} "
            "(split it into several workflows)",
        )
        return []
    specs = [check_any_step(step, ("steps", index), report) for index, step in enumerate(raw)]
    _check_unique_ids(report)
    check_targets(report)
    return [s for s in specs if s is not None]


def _check_unique_ids(report: Report) -> None:
    """Step and branch ids are unique in the whole workflow; a repeat is reported where it
    is used again (in document order)."""
    first: dict[str, tuple] = {}
    named = [*report.step_labels.items(), *report.branch_labels.items()]
    for path, name in sorted(named, key=lambda item: _document_order(item[0])):
        if name in first:
            report.add(
                (*path, "id"), f"duplicate {_what(path)} id '{name}'; {_user(first[name], report)}"
            )
        first.setdefault(name, path)


def _document_order(path: tuple) -> tuple:
    return tuple((0, part) if isinstance(part, int) else (1, str(part)) for part in path)


def _what(path: tuple) -> str:
    return "step" if path[-2] == "steps" else "branch"


_UNIQUE = "ids of steps and branches are unique in the whole workflow"


def _user(path: tuple, report: Report) -> str:
    """Who already uses an id: "step #2 already uses it", "a step of branch 'fire' ..."."""
    if path[:1] == ("steps",) and len(path) == 2:
        return f"step #{path[1] + 1} already uses it"
    where = f" (line {line})" if (line := report.line_of(path)) else ""
    if _what(path) == "branch":
        owner = f"a branch of parallel step '{report.step_label(path[:-2])}'"
    else:
        owner = f"a step of branch '{report.branch_labels.get(path[:-2], '?')}'"
    return f"{owner} already uses it{where}; {_UNIQUE}"
