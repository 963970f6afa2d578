"""A workflow as an SVG diagram, drawn on the server from a WorkflowSpec. Pure; no JavaScript.

Steps are boxes in list order, top to bottom; the terminal targets (end, reject, fail) follow
as distinct shapes (an ellipse, an octagon, a diamond). A route to the next box is a straight
arrow; any other route runs in its own lane to the right, labelled with the result or the
condition that takes it, dashed when it loops back. Every text is escaped, and only
presentation attributes are used (no style attributes), so the page's CSP needs no exception.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from html import escape

from ..definitions import StepSpec, WorkflowSpec

BOX_W, LINE_H, PAD, GAP, LANE, MARGIN, LABEL_ROOM = 300, 16, 10, 40, 14, 16, 190
TERMINAL_W, TERMINAL_H = 170, 40
TERMINAL_LABELS = {"end": "end: completed", "reject": "reject: rejected", "fail": "fail: failed"}
TERMINAL_COLOUR = {"end": "#2e7d32", "reject": "#b26a00", "fail": "#ba2121"}
KIND_FILL = {"human": "#fff6dc", "http": "#eef5fb", "python": "#f3f3f3", "applicant": "#e8f5ea"}


@dataclass(slots=True)
class _Node:
    key: str
    lines: list[str]
    y: int = 0
    height: int = 0
    ports: int = 0  # connection points on the right side
    used: int = 0

    @property
    def terminal(self) -> bool:
        return self.key in TERMINAL_LABELS

    @property
    def bottom(self) -> int:
        return self.y + self.height

    def port(self) -> int:
        """The y of the next free connection point on the right (terminals: their middle)."""
        if self.terminal:
            return self.y + self.height // 2
        self.used += 1
        return self.y + self.height * self.used // (self.ports + 1)


@dataclass(slots=True)
class _Edge:
    src: int
    target: str
    labels: list[str]
    dst: int = -1
    lane: int = -1  # -1: a straight arrow to the box below


def render_svg(
    spec: WorkflowSpec, *, kinds: Mapping[str, str] | None = None, current: str | None = None
) -> str:
    """The diagram of `spec`; `kinds` maps service names to kinds, `current` marks a step."""
    kinds = kinds or {}
    edges = _edges(spec)
    nodes = [_Node(step.id, _step_lines(step, kinds)) for step in spec.steps]
    targets = {edge.target for edge in edges}
    nodes += [_Node(key, [label]) for key, label in TERMINAL_LABELS.items() if key in targets]
    index = {node.key: i for i, node in enumerate(nodes)}
    for edge in edges:
        edge.dst = index[edge.target]
    _layout(nodes)
    lanes = _assign_lanes(edges, nodes)
    width = MARGIN + BOX_W + 30 + lanes * LANE + LABEL_ROOM
    height = nodes[-1].bottom + MARGIN
    parts = [_svg_open(spec, width, height)]
    parts += [_draw_edge(edge, nodes) for edge in edges]
    parts += [_draw_node(node, spec, kinds, current) for node in nodes]
    return "".join(parts) + "</svg>"


def _edges(spec: WorkflowSpec) -> list[_Edge]:
    """Every route out of every step, one per (step, target), with the labels that take it."""
    found: dict[tuple[int, str], list[str]] = {}
    for i, step in enumerate(spec.steps):
        for result, target in step.on.items():
            found.setdefault((i, target), []).append(f"on {result}")
        for entry in step.conditions:
            found.setdefault((i, entry.goto), []).append(f"if {entry.condition}")
        if step.next:
            found.setdefault((i, step.next), [])
            continue
        labels = found.setdefault((i, spec.following(step.id)), [])
        if step.conditions or step.on:
            labels.append("otherwise")
    return [_Edge(i, target, labels) for (i, target), labels in found.items()]


def _step_lines(step: StepSpec, kinds: Mapping[str, str]) -> list[str]:
    """The title, the id and service, then time-out, escalation ladder, assignee and retries."""
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


def _layout(nodes: list[_Node]) -> None:
    y = MARGIN
    for node in nodes:
        node.y = y
        node.height = TERMINAL_H if node.terminal else PAD * 2 + LINE_H * len(node.lines)
        y = node.bottom + GAP


def _assign_lanes(edges: list[_Edge], nodes: list[_Node]) -> int:
    """Give each route that is not a straight arrow down a lane no overlapping route uses."""
    lanes: list[list[tuple[int, int]]] = []
    for edge in sorted(edges, key=lambda e: (abs(e.dst - e.src), e.src)):
        if edge.dst == edge.src + 1:
            continue
        span = (min(edge.src, edge.dst), max(edge.src, edge.dst))
        for number, spans in enumerate(lanes):
            if all(span[1] < a or b < span[0] for a, b in spans):
                spans.append(span)
                edge.lane = number
                break
        else:
            lanes.append([span])
            edge.lane = len(lanes) - 1
        nodes[edge.src].ports += 1
        nodes[edge.dst].ports += 1
    return len(lanes)


def _svg_open(spec: WorkflowSpec, width: int, height: int) -> str:
    title = escape(f"Diagram of the workflow {spec.display_name} ({spec.id})")
    marker = (
        '<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="workflow-diagram" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'font-family="sans-serif" font-size="12"><title>{title}</title><defs>{marker}</defs>'
    )


def _x(node: _Node) -> int:
    """The left edge of a node; terminals are centred in the column of steps."""
    return MARGIN + (BOX_W - TERMINAL_W) // 2 if node.terminal else MARGIN


def _width(node: _Node) -> int:
    return TERMINAL_W if node.terminal else BOX_W


def _draw_edge(edge: _Edge, nodes: list[_Node]) -> str:
    src, dst = nodes[edge.src], nodes[edge.dst]
    label = escape(_short(", ".join(edge.labels), 40))
    tip = f"<title>{escape(', '.join(edge.labels))}</title>" if edge.labels else ""
    dashes = ' stroke-dasharray="5,3"' if edge.dst <= edge.src else ""
    line = f'fill="none" stroke="#555" stroke-width="1.3"{dashes} marker-end="url(#arrow)"'
    if edge.lane < 0:
        cx = MARGIN + BOX_W // 2
        text = f'<text x="{cx + 6}" y="{src.bottom + GAP // 2 + 4}" fill="#333">{label}</text>'
        return f'<g class="route">{tip}<path d="M{cx},{src.bottom} V{dst.y}" {line}/>{text}</g>'
    y1, y2 = src.port(), dst.port()
    start, end = MARGIN + BOX_W, _x(dst) + _width(dst)
    lane_x = start + 30 + edge.lane * LANE
    path = f'<path d="M{start},{y1} H{lane_x} V{y2} H{end}" {line}/>'
    text = f'<text x="{lane_x + 4}" y="{y1 - 3}" fill="#333">{label}</text>'
    return f'<g class="route">{tip}{path}{text}</g>'


def _draw_node(
    node: _Node, spec: WorkflowSpec, kinds: Mapping[str, str], current: str | None
) -> str:
    if node.terminal:
        return _draw_terminal(node)
    fill = KIND_FILL.get(kinds.get(spec.step(node.key).service, ""), "#ffffff")
    marked = node.key == current
    stroke = (
        'stroke="#2e7d32" stroke-width="3"' if marked else 'stroke="#417690" stroke-width="1.5"'
    )
    rect = (
        f'<rect x="{MARGIN}" y="{node.y}" width="{BOX_W}" height="{node.height}" rx="6" '
        f'fill="{fill}" {stroke}/>'
    )
    texts = []
    for n, line in enumerate(node.lines):
        weight = ' font-weight="bold"' if n == 0 else ""
        y = node.y + PAD + LINE_H * (n + 1) - 4
        texts.append(f'<text x="{MARGIN + PAD}" y="{y}"{weight}>{escape(_short(line, 44))}</text>')
    tip = escape("\n".join(node.lines) + ("\n(the current step)" if marked else ""))
    return f'<g class="step"><title>{tip}</title>{rect}{"".join(texts)}</g>'


def _draw_terminal(node: _Node) -> str:
    colour, x, y = TERMINAL_COLOUR[node.key], _x(node), node.y
    w, h = TERMINAL_W, TERMINAL_H
    attrs = f'fill="#ffffff" stroke="{colour}" stroke-width="2"'
    if node.key == "end":
        shape = (
            f'<ellipse cx="{x + w // 2}" cy="{y + h // 2}" rx="{w // 2}" ry="{h // 2}" {attrs}/>'
        )
    elif node.key == "reject":
        c = 12  # the cut corners of an octagon, a stop sign
        corners = [(c, 0), (w - c, 0), (w, c), (w, h - c), (w - c, h), (c, h), (0, h - c), (0, c)]
        shape = _polygon(corners, x, y, attrs)
    else:
        shape = _polygon([(w // 2, 0), (w, h // 2), (w // 2, h), (0, h // 2)], x, y, attrs)
    text = (
        f'<text x="{x + w // 2}" y="{y + h // 2 + 4}" text-anchor="middle" fill="{colour}" '
        f'font-weight="bold">{escape(node.lines[0])}</text>'
    )
    label = escape(node.lines[0])
    return f'<g class="terminal terminal-{node.key}"><title>{label}</title>{shape}{text}</g>'


def _polygon(points: list[tuple[int, int]], x: int, y: int, attrs: str) -> str:
    coords = " ".join(f"{x + px},{y + py}" for px, py in points)
    return f'<polygon points="{coords}" {attrs}/>'


def _short(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
