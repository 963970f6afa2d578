"""The boxes and routes of a workflow diagram, in drawing order (pure; diagram.py draws them).

Steps follow in definition order, top to bottom. A parallel step is a fork bar, then each
branch under a header (its steps indented, nested branches more so), then a join bar; the
parallel step's own routes leave from its join. Inside a branch, `end` leads to the join.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..definitions import StepSpec, WorkflowSpec

TERMINAL_LABELS = {"end": "end: completed", "reject": "reject: rejected", "fail": "fail: failed"}
JOIN_WORDS = {
    "all": "join all: when every branch has ended",
    "any": "join any: when the first branch ends",
}


@dataclass(slots=True)
class Node:
    """A box: a step, a fork or join bar, a branch header or a terminal."""

    key: str
    lines: list[str]
    kind: str = "step"  # step, fork, join, branch, terminal
    depth: int = 0
    step: str = ""  # the step it stands for (forks and joins: the parallel step)
    y: int = 0
    height: int = 0
    ports: int = 0  # connection points on the right side
    used: int = 0


@dataclass(slots=True)
class Edge:
    src: int
    dst: int
    labels: list[str]
    lane: int = -1  # -1: a straight arrow to the box below


@dataclass(slots=True)
class Graph:
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    frames: list[tuple[int, int]] = field(default_factory=list)  # (header, last node) per branch


def build(spec: WorkflowSpec, kinds: Mapping[str, str]) -> Graph:
    """Every box and every route of `spec`, with terminals last (only those something uses)."""
    nodes: list[Node] = []
    routes: dict[tuple[str, str], list[str]] = {}
    frames: list[tuple[str, str]] = []
    _add_list(spec.steps, 0, "end", kinds, nodes, routes, frames)
    used = {target for _, target in routes}
    for key, label in TERMINAL_LABELS.items():
        if key in used:
            nodes.append(Node(key, [label], kind="terminal"))
    index = {node.key: i for i, node in enumerate(nodes)}
    edges = [Edge(index[src], index[dst], labels) for (src, dst), labels in routes.items()]
    return Graph(nodes, edges, [(index[a], index[b]) for a, b in frames])


def _add_list(
    steps: Sequence[StepSpec],
    depth: int,
    end: str,
    kinds: Mapping[str, str],
    nodes: list[Node],
    routes: dict[tuple[str, str], list[str]],
    frames: list[tuple[str, str]],
) -> None:
    """The boxes of one list of steps; `end` is where the list's `end` leads (a join inside
    a branch, the terminal in the workflow's own list)."""
    for i, step in enumerate(steps):
        source = step.id
        if step.parallel:
            source = _add_fork(step, depth, kinds, nodes, routes, frames)
        else:
            nodes.append(Node(step.id, step_lines(step, kinds), depth=depth, step=step.id))
        following = steps[i + 1].id if i + 1 < len(steps) else "end"
        _add_routes(step, source, following, end, routes)


def _add_fork(step: StepSpec, depth, kinds, nodes, routes, frames) -> str:
    """A parallel step: fork bar, each branch under its header, join bar (returned)."""
    count = "in parallel"
    nodes.append(
        Node(step.id, [step.display_title, f"{step.id} · {count}"], "fork", depth, step.id)
    )
    join = f"join:{step.id}"
    for branch in step.parallel:
        header = f"branch:{branch.id}"
        nodes.append(
            Node(header, [f"{branch.display_title} (branch {branch.id})"], "branch", depth + 1)
        )
        routes.setdefault((step.id, header), [])
        routes.setdefault((header, branch.steps[0].id), [])
        _add_list(branch.steps, depth + 1, join, kinds, nodes, routes, frames)
        frames.append((header, nodes[-1].key))
    nodes.append(Node(join, [JOIN_WORDS[step.join]], "join", depth, step.id))
    return join


def _add_routes(step: StepSpec, source: str, following: str, end: str, routes) -> None:
    """Every route out of `step` (leaving from `source`), with the labels that take it."""

    def place(target: str) -> str:
        return end if target == "end" else target

    for result, target in step.on.items():
        routes.setdefault((source, place(target)), []).append(f"on {result}")
    for entry in step.conditions:
        routes.setdefault((source, place(entry.goto)), []).append(f"if {entry.condition}")
    if step.next:
        routes.setdefault((source, place(step.next)), [])
        return
    labels = routes.setdefault((source, place(following)), [])
    if step.conditions or step.on:
        labels.append("otherwise")


def step_lines(step: StepSpec, kinds: Mapping[str, str]) -> list[str]:
    """The title, the id and what runs it, then time-out, ladder, assignee and retries."""
    if step.workflow:
        return [step.display_title, f"{step.id} · sub-workflow {step.workflow}"]
    kind = kinds.get(step.service)
    lines = [step.display_title, f"{step.id} · {step.service}" + (f" ({kind})" if kind else "")]
    if step.assignee:
        lines.append(f"assignee: {step.assignee}")
    if step.timeout:
        default = {"human": "escalate", "applicant": "reject"}.get(kind or "", "fail")
        action = step.on_timeout or default
        lines.append(f"time-out {step.timeout.text} → {action}")
    if step.escalate_to:
        lines.append("escalates to: " + " → ".join(step.escalate_to))
    if step.retry:
        lines.append(f"retries: {step.retry.max} × from {step.retry.backoff.text}")
    return lines
