"""Workflow steps checked against what is published: the child workflow exists, and no
workflow ends up calling itself (directly or through others), which would never end.

The workflows being loaded count as they are written; every other workflow counts as its
newest published version, since a child instance always starts on the newest version.
"""

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from ..definitions import Problem, Reference, WorkflowSpec
from ..queries import catalog


def child_problems(
    batch: Iterable[WorkflowSpec], *, refused: Sequence[Reference] = ()
) -> list[Problem]:
    """Unknown child workflows and cycles of calls, placed on the workflow steps; `refused`:
    the workflows that refused documents name (checked too, so every problem is listed)."""
    specs = {spec.id: spec for spec in batch}
    calls = _CallGraph(specs)
    problems = [
        dataclasses.replace(ref.place, message=_unknown_message(ref.name))
        for ref in refused
        if ref.kind == "workflow" and not calls.exists(ref.name)
    ]
    for spec in specs.values():
        for step in spec.all_steps:
            if step.kind != "workflow":
                continue
            if not calls.exists(step.workflow):
                problems.append(_unknown(spec, step.id, step.workflow))
            elif cycle := calls.cycle_through(spec.id, step.workflow):
                problems.append(_cycle(spec, step.id, cycle))
    return problems


def calls_of(spec: WorkflowSpec) -> list[str]:
    """The keys of the workflows `spec`'s workflow steps start, in definition order."""
    return list(dict.fromkeys(s.workflow for s in spec.all_steps if s.kind == "workflow"))


class _CallGraph:
    """Which workflow calls which: the batch as written, the rest as published."""

    def __init__(self, batch: Mapping[str, WorkflowSpec]):
        self.batch = batch
        self.published: dict[str, list[str] | None] = {}

    def exists(self, key: str) -> bool:
        return key in self.batch or self.callees(key) is not None

    def callees(self, key: str) -> list[str] | None:
        """The workflows `key` calls; None when no such workflow is published or loaded."""
        if key in self.batch:
            return calls_of(self.batch[key])
        if key not in self.published:
            latest = catalog.latest_definition(key)
            self.published[key] = calls_of(catalog.spec_of(latest)) if latest else None
        return self.published[key]

    def cycle_through(self, start: str, child: str) -> list[str] | None:
        """The path start -> child -> ... -> start, if the child leads back to `start`."""
        if child == start:
            return [start, start]
        return self._walk(start, [start, child], {child})

    def _walk(self, start: str, path: list[str], seen: set[str]) -> list[str] | None:
        for callee in self.callees(path[-1]) or ():
            if callee == start:
                return [*path, start]
            if callee not in seen:
                seen.add(callee)
                if found := self._walk(start, [*path, callee], seen):
                    return found
        return None


def _unknown(spec: WorkflowSpec, step_id: str, key: str) -> Problem:
    return spec.problem(_unknown_message(key), step=step_id, path=("workflow",))


def _unknown_message(key: str) -> str:
    return (
        f"workflow '{key}' is not published; load it before this file, or in the same "
        "command, so the step can start it"
    )


def _cycle(spec: WorkflowSpec, step_id: str, cycle: list[str]) -> Problem:
    chain = " -> ".join(f"'{key}'" for key in cycle)
    message = (
        f"workflows would call each other without end: {chain}; a workflow step may not lead "
        "back to its own workflow"
    )
    return spec.problem(message, step=step_id, path=("workflow",))
