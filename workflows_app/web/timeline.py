"""The tracker's timeline as a tree: the workflow's steps in order; a parallel step holds its
branches, shown side by side (stacked on a phone), nested ones inside; a workflow step links
to its child's tracker (docs/pages.md)."""

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..definitions import StepSpec, WorkflowSpec

MAX_HEADING = 6


@dataclass(frozen=True, slots=True)
class Branch:
    """One branch of a parallel step: its plain-language title and its steps' rows."""

    id: str
    title: str
    rows: tuple[Any, ...]
    level: int  # the heading level of its title


def nest(spec: WorkflowSpec, rows: Mapping[str, Any], children: Mapping) -> list[Any]:
    """The rows of the workflow's own steps, each parallel step's with its branches, each
    workflow step's with its child instance (`children`: by run id)."""
    return _rows(spec.steps, rows, children, depth=0)


def flatten(rows: Sequence[Any]) -> list[Any]:
    """Every row of the tree, in definition order (depth first)."""
    found = []
    for row in rows:
        found.append(row)
        for branch in row.branches:
            found.extend(flatten(branch.rows))
    return found


def _rows(steps: Sequence[StepSpec], rows: Mapping[str, Any], children, *, depth: int) -> list:
    nested = []
    for step in steps:
        row = rows[step.id]
        branches = tuple(
            Branch(
                branch.id,
                branch.display_title,
                tuple(_rows(branch.steps, rows, children, depth=depth + 1)),
                min(4 + 2 * depth, MAX_HEADING),
            )
            for branch in step.parallel
        )
        run = row.view.run
        child = children.get(run.pk) if run is not None and step.kind == "workflow" else None
        level = min(3 + 2 * depth, MAX_HEADING)
        nested.append(dataclasses.replace(row, branches=branches, child=child, level=level))
    return nested
