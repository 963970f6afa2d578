"""Drafts written in the admin: rows <-> definition documents, checking, publishing, exporting.

A draft is edited as plain rows (one per step; `next`, `on` and `escalateTo` as lines of
text). Here the rows become the same document a file would hold, so the one validator
(definitions.parse_definition plus publishing.check_references) judges both, and a
published version can be turned back into rows to edit again.
"""

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from django.conf import settings
from django.db import transaction

from .. import definitions
from ..definitions import STEP_FIELDS, WORKFLOW_FIELDS, InvalidDefinition, Problem, WorkflowSpec
from ..models import DraftStep, WorkflowDefinition, WorkflowDraft
from ..queries import catalog
from . import publishing

DRAFT_FIELDS = ("key", "name", "description", "public", "input_schema", "deadline")
_BRANCH = re.compile(r"if\s+(?P<condition>.*?)(?:\s+goto\s+(?P<goto>\S+))?\s*", re.IGNORECASE)

# --- Rows -> document ---------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def parse_next(text: str) -> str | list[dict[str, str]] | None:
    """'approve' -> 'approve'; lines 'if COND goto STEP' -> [{'if': COND, 'goto': STEP}, ...]."""
    lines = _lines(text)
    if len(lines) == 1 and not lines[0].lower().startswith("if "):
        return lines[0]
    branches = []
    for line in lines:
        found = _BRANCH.fullmatch(line)
        condition, goto = (found["condition"], found["goto"]) if found else (None, line)
        branch = {"if": condition} if condition is not None else {}
        branches.append({**branch, "goto": goto} if goto else branch)
    return branches or None


def parse_on(text: str) -> dict[str, str | None] | None:
    """Lines 'rejected: reject' -> {'rejected': 'reject'}."""
    routes: dict[str, str | None] = {}
    for line in _lines(text):
        result, colon, target = line.partition(":")
        routes[result.strip()] = target.strip() if colon else None
    return routes or None


def step_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """One step as a file would write it, from a DraftStep's field values."""
    step: dict[str, Any] = {"id": row.get("step_id") or None, "service": row.get("service") or None}
    for name in ("title", "description", "timeout", "assignee"):
        if row.get(name):
            step[name] = row[name]
    if row.get("on_timeout"):
        step["onTimeout"] = row["on_timeout"]
    if escalate := [
        item
        for line in _lines(row.get("escalate_to", ""))
        for item in filter(None, (part.strip() for part in line.split(",")))
    ]:
        step["escalateTo"] = escalate
    retry = {"max": row.get("retry_max"), "backoff": row.get("retry_backoff") or None}
    if retry := {key: value for key, value in retry.items() if value is not None}:
        step["retry"] = retry
    if (nxt := parse_next(row.get("next", ""))) is not None:
        step["next"] = nxt
    if (on := parse_on(row.get("on", ""))) is not None:
        step["on"] = on
    return {key: value for key, value in step.items() if value is not None}


def workflow_document(fields: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> dict:
    """The definition document of a draft's fields and its step rows (already in order)."""
    document: dict[str, Any] = {"id": fields.get("key") or None}
    for name in ("name", "description"):
        if fields.get(name):
            document[name] = fields[name]
    if fields.get("public"):
        document["public"] = True
    if fields.get("input_schema") is not None:
        document["input"] = fields["input_schema"]
    if fields.get("deadline"):
        document["deadline"] = fields["deadline"]
    document["steps"] = [step_document(row) for row in rows]
    return {key: value for key, value in document.items() if value is not None}


def ordered(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Rows by position; rows without one keep their place after the numbered ones."""
    indexed = list(enumerate(rows))
    indexed.sort(
        key=lambda item: (item[1].get("position") is None, item[1].get("position") or 0, item[0])
    )
    return [row for _, row in indexed]


def draft_document(draft: WorkflowDraft) -> dict[str, Any]:
    """The document of a saved draft and its saved steps."""
    fields = {name: getattr(draft, name) for name in DRAFT_FIELDS}
    rows = [_row_values(step) for step in draft.steps.order_by("pk")]
    return workflow_document(fields, ordered(rows))


def _row_values(step: DraftStep) -> dict[str, Any]:
    return {f.name: getattr(step, f.attname) for f in DraftStep._meta.concrete_fields}


# --- Document -> rows ---------------------------------------------------------------------


def draft_fields(document: Mapping[str, Any]) -> dict[str, Any]:
    """A draft's own fields from a (valid) workflow document."""
    return {
        "key": document["id"],
        "name": document.get("name") or "",
        "description": document.get("description") or "",
        "public": bool(document.get("public")),
        "input_schema": document.get("input"),
        "deadline": document.get("deadline") or "",
    }


def step_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """DraftStep field values of every step of a (valid) workflow document, numbered 10, 20..."""
    return [{"position": 10 * (i + 1), **_row(step)} for i, step in enumerate(document["steps"])]


def _row(step: Mapping[str, Any]) -> dict[str, Any]:
    retry = step.get("retry") or {}
    nxt = step.get("next")
    if isinstance(nxt, list):
        nxt = "\n".join(f"if {' '.join(str(b['if']).split())} goto {b['goto']}" for b in nxt)
    on = step.get("on") or {}
    return {
        "step_id": step["id"],
        "service": step["service"],
        "title": step.get("title") or "",
        "description": step.get("description") or "",
        "timeout": str(step.get("timeout") or ""),
        "on_timeout": step.get("onTimeout") or "",
        "escalate_to": "\n".join(step.get("escalateTo") or ()),
        "assignee": step.get("assignee") or "",
        "retry_max": retry.get("max"),
        "retry_backoff": str(retry.get("backoff") or ""),
        "next": nxt or "",
        "on": "\n".join(f"{result}: {target}" for result, target in on.items()),
    }


@transaction.atomic
def save_as_draft(
    document: Mapping[str, Any], *, actor: str = "", based_on: WorkflowDefinition | None = None
) -> WorkflowDraft:
    """Write a (valid) document into the draft of its workflow id, replacing its steps."""
    fields = {**draft_fields(document), "updated_by": actor, "based_on": based_on}
    draft, _ = WorkflowDraft.objects.update_or_create(key=document["id"], defaults=fields)
    draft.steps.all().delete()
    DraftStep.objects.bulk_create(DraftStep(draft=draft, **row) for row in step_rows(document))
    return draft


def import_text(text: str, *, filename: str) -> list[WorkflowSpec]:
    """The workflows of an uploaded JSON or YAML file; InvalidDefinition lists every problem."""
    document = definitions.load_text(
        text, source=filename, python_prefixes=tuple(settings.HMS_PYTHON_SERVICES)
    )
    if not document.workflows:
        message = "the file holds no workflow (services are registered under Services)"
        raise InvalidDefinition([Problem(filename, message)])
    refused = [
        Problem(filename, why, workflow=spec.id)
        for spec in document.workflows
        if (why := why_not_editable(spec.source))
    ]
    if refused:
        raise InvalidDefinition(refused)
    return list(document.workflows)


def why_not_editable(document: Mapping[str, Any]) -> str | None:
    """Why a workflow cannot become a draft: drafts edit one list of service steps, so a
    workflow with parallel or workflow steps is written and loaded as a file."""
    steps = document.get("steps") if isinstance(document.get("steps"), list) else []
    held = [
        str(step.get("id"))
        for step in steps
        if isinstance(step, Mapping) and {"parallel", "workflow"} & set(step)
    ]
    if not held:
        return None
    return (
        f"step {', '.join(held)} of workflow '{document.get('id')}' runs parallel branches or "
        "a sub-workflow, which drafts cannot hold (they edit one list of service steps); "
        "change it as a file and load it with manage.py load_workflows"
    )


# --- Checking and publishing --------------------------------------------------------------


def check(document: Mapping[str, Any], *, source: str) -> tuple[WorkflowSpec | None, list[Problem]]:
    """The spec and no problems, or every problem: the file rules, then the database's."""
    try:
        spec = definitions.parse_definition(document, source=source)
    except InvalidDefinition as refused:
        return None, [*refused.problems, *publishing.check_references([], also=refused)]
    sourced = publishing.Sourced(source, definitions.Document(workflows=(spec,)))
    problems = publishing.check_references([sourced])
    return (None if problems else spec), problems


@transaction.atomic
def publish_draft(draft: WorkflowDraft, *, actor: str = "") -> tuple[WorkflowDefinition, bool]:
    """Publish the saved draft: a new version unless unchanged; InvalidDefinition otherwise."""
    source = f"{publishing.DRAFT_ORIGIN}{draft.key}"
    spec, problems = check(draft_document(draft), source=source)
    if spec is None:
        raise InvalidDefinition(problems)
    sourced = publishing.Sourced(source, definitions.Document(workflows=(spec,)))
    report = publishing.load_parsed([sourced])
    definition = report.published[0] if report.published else catalog.latest_definition(spec.id)
    WorkflowDraft.objects.filter(pk=draft.pk).update(based_on=definition, updated_by=actor)
    return definition, bool(report.published)


# --- Export and differences ---------------------------------------------------------------


def canonical(document: Mapping[str, Any]) -> dict[str, Any]:
    """The document with its keys in the order the format lists them (stable diffs)."""
    top = _reorder(document, WORKFLOW_FIELDS)
    if isinstance(top.get("steps"), list):
        top["steps"] = [_canonical_step(step) for step in top["steps"]]
    return top


def _canonical_step(step: Any) -> Any:
    if not isinstance(step, Mapping):
        return step
    step = _reorder(step, STEP_FIELDS)
    if isinstance(step.get("retry"), Mapping):
        step["retry"] = _reorder(step["retry"], ("max", "backoff"))
    if isinstance(step.get("next"), list):
        step["next"] = [
            _reorder(b, ("if", "goto")) if isinstance(b, Mapping) else b for b in step["next"]
        ]
    return step


def _reorder(mapping: Mapping[str, Any], order: Sequence[str]) -> dict[str, Any]:
    known = {key: mapping[key] for key in order if key in mapping}
    return {**known, **{key: value for key, value in mapping.items() if key not in known}}


def dump(document: Mapping[str, Any], fmt: str) -> str:
    """The document as JSON or YAML text that loads back to the same definition."""
    data = canonical(document)
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def diff(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    old_label: str,
    new_label: str,
    fmt: str = "yaml",
) -> list[str]:
    """Unified diff lines between two documents in canonical form (empty: no difference)."""
    lines = difflib.unified_diff(
        dump(old, fmt).splitlines(),
        dump(new, fmt).splitlines(),
        fromfile=old_label,
        tofile=new_label,
        lineterm="",
    )
    return list(lines)
