"""Rules for where a step goes next: `next`, `{if, goto}` conditions (CEL), `on`, known targets."""

import re
from collections.abc import Mapping
from typing import Any

import cel

from .cel_cost import MAX_LENGTH, MAX_NESTING, shape_of
from .checks import check_keys, describe, suggest
from .problems import Report, field_name, step_path_end
from .specs import TERMINALS, Condition

CEL_VARIABLES = ("payload", "context", "result")

_CEL_ERROR = re.compile(r"<input>:(\d+):(\d+): (?:Syntax error: )?([^\n]*)")
_CEL_BOUND = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")


def check_targets(report: Report) -> None:
    """Every `next`, `goto` and `on` target names a step of the same list (the workflow's
    own steps, or the same branch's) or a terminal: a route never leaves its branch."""
    lists: dict[tuple, list[str]] = {}
    for step_path, step_id in report.step_labels.items():
        lists.setdefault(step_path[:-1], []).append(step_id)
    home = {step_id: path[:-1] for path, step_id in report.step_labels.items()}
    for path, target in report.targets:
        here = path[: step_path_end(path) - 1]
        ids = lists.get(here, [])
        if target in ids or target in TERMINALS:
            continue
        report.add(path, _stray_target(target, here, home, ids, report))


def _stray_target(target: str, here: tuple, home: dict, ids: list[str], report: Report) -> str:
    """Why a target is refused: a step of another list, a branch, or nothing known."""
    if target in home and len(here) == 1:
        there = home[target]
        return (
            f"'{target}' is inside branch '{_branch(there, report)}' of parallel step "
            f"'{report.step_label(there[:-3])}'; a main step cannot go into a branch: go to the "
            "parallel step (it starts all its branches), another main step, or end, reject or fail"
        )
    if target in home or target in report.branch_labels.values():
        there = home.get(target)
        what = (
            "is a branch"
            if there is None
            else (
                "is one of the main steps"
                if len(there) == 1
                else f"belongs to branch '{_branch(there, report)}'"
            )
        )
        return (
            f"'{target}' {what}; a step inside branch '{_branch(here, report)}' goes to a step "
            "of the same branch, or to end (the branch ends), reject or fail"
        )
    hint = suggest(target, [*ids, *sorted(TERMINALS)])
    where = "this workflow" if len(here) == 1 else f"branch '{_branch(here, report)}'"
    return f"'{target}' is not a step of {where}{hint} (use a step id, or end, reject or fail)"


def _branch(list_path: tuple, report: Report) -> str:
    """The id of the branch whose steps are at `list_path`."""
    return report.branch_labels.get(list_path[:-1], "?")


def check_next(raw: Mapping, path: tuple, report: Report) -> tuple[str | None, tuple]:
    """`next`: a step id / terminal, or a non-empty list of {if, goto} conditions."""
    value, where = raw.get("next"), (*path, "next")
    if value is None:
        return None, ()
    if isinstance(value, list) and value:
        found = [_check_entry(item, (*where, i), report) for i, item in enumerate(value)]
        return None, tuple(b for b in found if b)
    if isinstance(value, str):
        return _check_target(value, where, report), ()
    if isinstance(value, Mapping):
        shown = "a single mapping; put it in a list: next: [{if: ..., goto: ...}]"
    else:
        shown = "an empty list" if isinstance(value, list) else describe(value)
    report.add(where, f"next must be a step id or a list of {{if, goto}} entries, not {shown}")
    return None, ()


def check_on(raw: Mapping, path: tuple, report: Report) -> dict[str, str]:
    """`on`: result name -> step id or terminal."""
    value = raw.get("on")
    if value is None:
        return {}
    where = (*path, "on")
    if not isinstance(value, Mapping):
        report.add(
            where, f"on must map results to steps, e.g. {{rejected: reject}}, not {describe(value)}"
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


def _check_target(value: Any, path: tuple, report: Report) -> str | None:
    """A target's form; whether it names a known step is checked once all ids are known."""
    if isinstance(value, str) and value.strip():
        report.targets.append((path, value))
        return value
    what = field_name(path[2:])
    report.add(path, f"{what} must name a step id or end, reject or fail, not {describe(value)}")
    return None


def _check_entry(item: Any, path: tuple, report: Report) -> Condition | None:
    """One `{if: EXPR, goto: STEP}` entry."""
    what = field_name(path[2:])
    if not isinstance(item, Mapping):
        report.add(path, f"{what} must be a mapping with 'if' and 'goto', not {describe(item)}")
        return None
    check_keys(item, ("if", "goto"), path, report)
    program = goto = None
    if "if" not in item:
        report.add(
            path, f"{what} has no 'if'; every entry needs a condition (if: 'true' for a fallback)"
        )
    else:
        program = _compile_condition(item["if"], (*path, "if"), report)
    if "goto" not in item:
        report.add(path, f"{what} has no 'goto'; name the step to go to when the condition holds")
    else:
        goto = _check_target(item["goto"], (*path, "goto"), report)
    if program is None or goto is None:
        return None
    return Condition(item["if"], goto, program, shape_of(item["if"]))


def _compile_condition(expr: Any, path: tuple, report: Report) -> "cel.Program | None":
    """Compile a CEL condition; report syntax errors and unknown top-level variables."""
    if not isinstance(expr, str):
        hint = f"; write '{str(expr).lower()}' in quotes" if isinstance(expr, bool) else ""
        report.add(path, f"condition must be a CEL expression in text, not {describe(expr)}{hint}")
        return None
    if not expr.strip():
        report.add(path, "condition is empty; write a CEL expression such as payload.docs == false")
        return None
    if too_costly := _cost_problem(expr):
        report.add(path, too_costly)
        return None
    try:
        program = cel.compile(expr)
    except ValueError as error:
        report.add(path, _cel_syntax_message(expr, str(error)))
        return None
    bound = set(_CEL_BOUND.findall(expr))
    unknown = sorted(set(program.variables()) - bound - set(CEL_VARIABLES))
    for name in unknown:
        hint = "" if suggest(name, CEL_VARIABLES) else f' (put text in quotes: "{name}")'
        report.add(
            path, f"unknown variable '{name}' in condition; use payload, context or result{hint}"
        )
    return None if unknown else program


def _cost_problem(expr: str) -> str | None:
    """Why a condition may cost too much to evaluate, whatever the data (definitions/cel_cost)."""
    if len(expr) > MAX_LENGTH:
        return f"condition is {len(expr)} characters long; at most {MAX_LENGTH} are allowed"
    nesting = shape_of(expr).nesting
    if nesting > MAX_NESTING:
        return (
            f"condition '{_short(expr)}' nests {nesting} comprehensions (all, exists, "
            f"exists_one, map, filter) inside each other; at most {MAX_NESTING} are allowed, "
            "as each level multiplies the work by the length of a list"
        )
    return None


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
