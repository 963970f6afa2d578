"""Rules for what a step runs: a service, parallel branches (`parallel`, `join`) or a child
instance of another workflow (`workflow`). Branches hold steps of any kind, so parallel steps
nest. Whether a child workflow exists, and cycles of workflows calling each other, need the
published versions: authoring/publishing.py checks those."""

from collections.abc import Mapping
from typing import Any

from .checks import WORKFLOW_KEY, check_choice, check_keys, describe
from .languages import check_text_map
from .problems import Report
from .route_rules import check_next, check_on
from .specs import JOIN_MODES, BranchSpec, StepSpec
from .step_rules import check_step, check_step_id

PARALLEL_FIELDS = ("id", "title", "description", "parallel", "join", "next")
WORKFLOW_STEP_FIELDS = ("id", "title", "description", "workflow", "next", "on")
BRANCH_FIELDS = ("id", "title", "steps")
RUNS = ("service", "parallel", "workflow")

# Fields of a service step that a parallel or workflow step cannot take, and why.
_NOT_HERE = {
    "timeout": "put time-outs on the steps that do the work",
    "onTimeout": "put time-outs on the steps that do the work",
    "escalateTo": "escalation belongs to the tasks of the steps that do the work",
    "assignee": "assignees belong to the steps that do the work",
    "retry": "retries belong to the automated steps that do the work",
}


def check_any_step(raw: Any, path: tuple, report: Report) -> StepSpec | None:
    """One step of any kind, labelled by its id for the problems found in it."""
    if isinstance(raw, Mapping) and isinstance(raw.get("id"), str) and raw["id"].strip():
        report.step_labels[path] = raw["id"]
    if not isinstance(raw, Mapping) or not {"parallel", "workflow"} & set(raw):
        return check_step(raw, path, report)
    named = [key for key in RUNS if key in raw]
    if len(named) > 1:
        report.add(
            (*path, named[1]),
            f"a step runs one thing: give one of service, parallel and workflow, not "
            f"{' and '.join(named)}",
        )
        return None
    if "parallel" in raw:
        return _check_parallel_step(raw, path, report)
    return _check_workflow_step(raw, path, report)


def _check_parallel_step(raw: Mapping, path: tuple, report: Report) -> StepSpec | None:
    """`{id, parallel: [branches], join: all|any, next}`."""
    _check_fields(raw, PARALLEL_FIELDS, path, report, "a parallel step")
    step_id = check_step_id(raw, path, report)
    join = "all" if raw.get("join") is None else raw["join"]
    if not check_choice(join, JOIN_MODES, (*path, "join"), report):
        join = "all"
    branches = _check_branches(raw.get("parallel"), (*path, "parallel"), report)
    nxt, conditions = check_next(raw, path, report)
    if not step_id or branches is None:
        return None
    return StepSpec(
        step_id,
        "",
        title=check_text_map(raw.get("title"), (*path, "title"), report),
        description=check_text_map(raw.get("description"), (*path, "description"), report),
        next=nxt,
        conditions=conditions,
        parallel=branches,
        join=join,
    )


def _check_workflow_step(raw: Mapping, path: tuple, report: Report) -> StepSpec | None:
    """`{id, workflow: KEY, next, on}`: a child instance of KEY's latest version."""
    _check_fields(raw, WORKFLOW_STEP_FIELDS, path, report, "a workflow step")
    step_id = check_step_id(raw, path, report)
    key = raw.get("workflow")
    if not isinstance(key, str) or not WORKFLOW_KEY.fullmatch(key):
        shown = f"'{key}'" if isinstance(key, str) else describe(key)
        report.add(
            (*path, "workflow"),
            f"workflow must name a workflow by its id (a slug such as site-inspection), "
            f"not {shown}",
        )
        key = None
    else:
        report.refer("workflow", key, (*path, "workflow"))  # is it published? (publishing.py)
    nxt, conditions = check_next(raw, path, report)
    on = check_on(raw, path, report)
    if not step_id or not key:
        return None
    return StepSpec(
        step_id,
        "",
        title=check_text_map(raw.get("title"), (*path, "title"), report),
        description=check_text_map(raw.get("description"), (*path, "description"), report),
        next=nxt,
        conditions=conditions,
        on=on,
        workflow=key,
    )


_PARALLEL_ON = (
    "it ends with result 'ok' when its join fires, so there is nothing to route: use next "
    "(results inside a branch are routed by the branch's own steps)"
)


def _check_fields(raw: Mapping, allowed: tuple, path: tuple, report: Report, what: str) -> None:
    """Unknown fields; a service step's field says why it does not belong here."""
    why = {**_NOT_HERE, "on": _PARALLEL_ON} if "on" not in allowed else _NOT_HERE
    for key in raw:
        if key in why and key not in allowed:
            report.add((*path, key), f"{what} takes no '{key}'; {why[key]}")
    check_keys({k: v for k, v in raw.items() if k not in why}, allowed, path, report)


def _check_branches(value: Any, path: tuple, report: Report) -> tuple[BranchSpec, ...] | None:
    """At least two branches, each `{id, title, steps}`."""
    if not isinstance(value, list) or len(value) < 2:
        shown = {0: "empty", 1: "one branch"}.get(len(value)) if isinstance(value, list) else None
        shown = shown or describe(value)
        if isinstance(value, list) and len(value) == 1:
            shown += " (put its steps in the list in place of the parallel step instead)"
        report.add(
            path,
            f"parallel must be a list of at least two branches, each {{id, steps}}; it is {shown}",
        )
        return None
    found = [_check_branch(item, (*path, number), report) for number, item in enumerate(value)]
    return tuple(found) if all(found) else None


def _check_branch(raw: Any, path: tuple, report: Report) -> BranchSpec | None:
    """One branch: an id (unique in the workflow), an optional title, its steps."""
    if not isinstance(raw, Mapping):
        report.add(
            path, f"each branch must be a mapping with 'id' and 'steps', not {describe(raw)}"
        )
        return None
    check_keys(raw, BRANCH_FIELDS, path, report)
    branch_id = check_step_id(raw, path, report, what="branch")
    if branch_id:
        report.branch_labels[path] = branch_id
    title = check_text_map(raw.get("title"), (*path, "title"), report)
    steps = raw.get("steps")
    if not isinstance(steps, list) or not steps:
        shown = "empty" if isinstance(steps, list) else f"{describe(steps)}, not a list"
        if "steps" not in raw:
            shown = "missing"
        report.add((*path, "steps"), f"a branch's steps must be a non-empty list; it is {shown}")
        return None
    specs = [check_any_step(s, (*path, "steps", i), report) for i, s in enumerate(steps)]
    if not branch_id or not all(specs):
        return None
    return BranchSpec(branch_id, tuple(specs), title)
