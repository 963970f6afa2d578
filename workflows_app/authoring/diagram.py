"""A workflow as an SVG diagram, drawn on the server from a WorkflowSpec. Pure; no JavaScript.

Steps are boxes in definition order, top to bottom (diagram_graph.py lists them); a parallel
step is a fork bar, then its branches (each under a header, inside a dashed frame, nested ones
indented further), then a join bar. The terminal targets (end, reject, fail) follow as distinct
shapes (an ellipse, an octagon, a diamond). A route to the next box is a straight arrow; any
other route runs in its own lane to the right, labelled with the result or the condition that
takes it, dashed when it loops back. Every text is escaped, and only presentation attributes
are used (no style attributes), so the page's CSP needs no exception.
"""

from collections.abc import Collection, Mapping
from html import escape

from ..definitions import WorkflowSpec
from .diagram_graph import Edge, Graph, Node, build

BOX_W, LINE_H, PAD, GAP, LANE, MARGIN, LABEL_ROOM = 300, 16, 10, 40, 14, 16, 190
INDENT, BAR_H, HEADER_H, FRAME_PAD = 14, 30, 24, 6
TERMINAL_W, TERMINAL_H = 170, 40
TERMINAL_COLOUR = {"end": "#2e7d32", "reject": "#b26a00", "fail": "#ba2121"}
KIND_FILL = {"human": "#fff6dc", "http": "#eef5fb", "python": "#f3f3f3", "applicant": "#e8f5ea"}
SUB_WORKFLOW_FILL = "#eef7ee"


def render_svg(
    spec: WorkflowSpec,
    *,
    kinds: Mapping[str, str] | None = None,
    current: str | Collection[str] | None = None,
) -> str:
    """The diagram of `spec`; `kinds` maps service names to kinds, `current` marks the open
    step (or steps, while branches run)."""
    kinds = kinds or {}
    marked = {current} if isinstance(current, str) else set(current or ())
    graph = build(spec, kinds)
    _layout(graph.nodes)
    lanes = _assign_lanes(graph.edges, graph.nodes)
    width = MARGIN + BOX_W + 30 + lanes * LANE + LABEL_ROOM
    height = graph.nodes[-1].y + graph.nodes[-1].height + MARGIN
    parts = [_svg_open(spec, width, height)]
    parts += [_draw_frame(graph, header, last) for header, last in graph.frames]
    parts += [_draw_edge(edge, graph.nodes) for edge in graph.edges]
    parts += [_draw_node(node, spec, kinds, marked) for node in graph.nodes]
    return "".join(parts) + "</svg>"


def _layout(nodes: list[Node]) -> None:
    y = MARGIN
    for i, node in enumerate(nodes):
        node.y = y
        node.height = {"terminal": TERMINAL_H, "fork": BAR_H, "join": BAR_H}.get(
            node.kind, PAD * 2 + LINE_H * len(node.lines)
        )
        if node.kind == "branch":
            node.height = HEADER_H
        after = nodes[i + 1] if i + 1 < len(nodes) else None
        # A header sits close to its first step; a new branch starts after some room.
        gap = 8 if node.kind == "branch" else GAP
        if after is not None and after.kind == "branch" and node.kind != "fork":
            gap = GAP // 2 + FRAME_PAD * 2
        y = node.y + node.height + gap


def _x(node: Node) -> int:
    """The left edge of a node; nested nodes are indented, terminals centred."""
    if node.kind == "terminal":
        return MARGIN + (BOX_W - TERMINAL_W) // 2
    return MARGIN + node.depth * INDENT


def _width(node: Node) -> int:
    return TERMINAL_W if node.kind == "terminal" else BOX_W - 2 * node.depth * INDENT


def _port(node: Node) -> int:
    """The y of the next free connection point on the right (terminals: their middle)."""
    if node.kind == "terminal":
        return node.y + node.height // 2
    node.used += 1
    return node.y + node.height * node.used // (node.ports + 1)


def _assign_lanes(edges: list[Edge], nodes: list[Node]) -> int:
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


def _draw_frame(graph: Graph, header: int, last: int) -> str:
    """A dashed frame around one branch: its header and every box down to its last step."""
    top, bottom = graph.nodes[header], graph.nodes[last]
    x, y = _x(top) - FRAME_PAD, top.y - FRAME_PAD
    width = _width(top) + 2 * FRAME_PAD
    height = bottom.y + bottom.height + FRAME_PAD - y
    return (
        f'<rect class="branch-frame" x="{x}" y="{y}" width="{width}" height="{height}" rx="8" '
        'fill="none" stroke="#8a8a8a" stroke-width="1" stroke-dasharray="4,3"/>'
    )


def _draw_edge(edge: Edge, nodes: list[Node]) -> str:
    src, dst = nodes[edge.src], nodes[edge.dst]
    label = escape(_short(", ".join(edge.labels), 40))
    tip = f"<title>{escape(', '.join(edge.labels))}</title>" if edge.labels else ""
    dashes = ' stroke-dasharray="5,3"' if edge.dst <= edge.src else ""
    line = f'fill="none" stroke="#555" stroke-width="1.3"{dashes} marker-end="url(#arrow)"'
    if edge.lane < 0:
        cx = _x(dst) + _width(dst) // 2
        bottom = src.y + src.height
        text = f'<text x="{cx + 6}" y="{bottom + (dst.y - bottom) // 2 + 4}" fill="#333">{label}</text>'
        return f'<g class="route">{tip}<path d="M{cx},{bottom} V{dst.y}" {line}/>{text}</g>'
    y1, y2 = _port(src), _port(dst)
    start, end = _x(src) + _width(src), _x(dst) + _width(dst)
    lane_x = MARGIN + BOX_W + 30 + edge.lane * LANE
    path = f'<path d="M{start},{y1} H{lane_x} V{y2} H{end}" {line}/>'
    text = f'<text x="{lane_x + 4}" y="{y1 - 3}" fill="#333">{label}</text>'
    return f'<g class="route">{tip}{path}{text}</g>'


def _draw_node(
    node: Node, spec: WorkflowSpec, kinds: Mapping[str, str], marked: Collection[str]
) -> str:
    if node.kind == "terminal":
        return _draw_terminal(node)
    if node.kind in ("fork", "join", "branch"):
        return _draw_bar(node, marked)
    step = spec.step(node.key)
    fill = (
        SUB_WORKFLOW_FILL if step.workflow else KIND_FILL.get(kinds.get(step.service, ""), "#fff")
    )
    is_marked = node.key in marked
    stroke = (
        'stroke="#2e7d32" stroke-width="3"' if is_marked else 'stroke="#417690" stroke-width="1.5"'
    )
    x, width = _x(node), _width(node)
    rect = (
        f'<rect x="{x}" y="{node.y}" width="{width}" height="{node.height}" rx="6" '
        f'fill="{fill}" {stroke}/>'
    )
    texts = []
    for n, line in enumerate(node.lines):
        weight = ' font-weight="bold"' if n == 0 else ""
        y = node.y + PAD + LINE_H * (n + 1) - 4
        shown = escape(_short(line, 44 - 4 * node.depth))
        texts.append(f'<text x="{x + PAD}" y="{y}"{weight}>{shown}</text>')
    tip = escape("\n".join(node.lines) + ("\n(the current step)" if is_marked else ""))
    return f'<g class="step"><title>{tip}</title>{rect}{"".join(texts)}</g>'


def _draw_bar(node: Node, marked: Collection[str]) -> str:
    """A fork or join bar (dark, white text), or a branch header (light, dashed)."""
    x, width = _x(node), _width(node)
    if node.kind == "branch":
        fill, colour, stroke = "#f7f7f7", "#333", 'stroke="#8a8a8a" stroke-width="1"'
    else:
        fill, colour, stroke = "#37474f", "#ffffff", 'stroke="#263238" stroke-width="1"'
        if node.kind == "fork" and node.step in marked:
            stroke = 'stroke="#2e7d32" stroke-width="3"'
    rect = f'<rect x="{x}" y="{node.y}" width="{width}" height="{node.height}" rx="4" fill="{fill}" {stroke}/>'
    text = escape(_short(" · ".join(node.lines), 52 - 4 * node.depth))
    words = f'<text x="{x + PAD}" y="{node.y + node.height // 2 + 4}" fill="{colour}" font-weight="bold">{text}</text>'
    tip = escape(" · ".join(node.lines))
    return f'<g class="{node.kind}"><title>{tip}</title>{rect}{words}</g>'


def _draw_terminal(node: Node) -> str:
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
