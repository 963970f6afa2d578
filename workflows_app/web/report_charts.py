"""Bar charts drawn on the server as SVG (docs/reports.md): no script, no inline style, so
they work under the site's CSP and print; each chart sits next to a table with its numbers."""

from dataclasses import dataclass, field

LABEL_WIDTH = 230
PLOT_WIDTH = 420
ROW_HEIGHT = 26
TOP = 8
AXIS = 24


@dataclass(frozen=True, slots=True)
class Segment:
    x: float
    width: float
    css: str  # chart__bar--N: the series, coloured by the stylesheet
    title: str
    y: float = 0
    height: float = 0


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    y: float
    text_y: float
    segments: tuple[Segment, ...]
    value_text: str
    value_x: float


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    width: int
    height: int
    label_width: int
    bars: tuple[Bar, ...]
    ticks: tuple[tuple[float, str], ...]
    legend: tuple[tuple[str, str], ...] = field(default=())
    axis_y: float = 0


def bar_chart(
    title: str,
    rows: list[tuple[str, list[float], str]],
    *,
    series: list[str],
    maximum: float | None = None,
    stacked: bool = False,
    tick_format=lambda v: f"{v:g}",
) -> Chart:
    """Horizontal bars, one row per (label, values, value text); stacked or side by side."""
    top = max((sum(v) if stacked else max(v, default=0)) for _, v, _ in rows) if rows else 0
    maximum = maximum or top or 1
    scale = PLOT_WIDTH / maximum
    bars = []
    for index, (label, values, text) in enumerate(rows):
        y = TOP + index * ROW_HEIGHT
        bars.append(_bar(label, values, text, y, scale, series, stacked))
    height = TOP + len(rows) * ROW_HEIGHT + AXIS
    ticks = tuple(
        (LABEL_WIDTH + scale * maximum * f, tick_format(maximum * f)) for f in (0, 0.5, 1)
    )
    legend = (
        tuple((f"chart__bar--{i}", name) for i, name in enumerate(series))
        if len(series) > 1
        else ()
    )
    return Chart(
        title,
        LABEL_WIDTH + PLOT_WIDTH + 70,
        height,
        LABEL_WIDTH,
        tuple(bars),
        ticks,
        legend,
        height - AXIS,
    )


def _bar(label, values, text, y, scale, series, stacked) -> Bar:
    segments, x = [], float(LABEL_WIDTH)
    inner = ROW_HEIGHT - 8
    for i, value in enumerate(values):
        width = max(value * scale, 0)
        if stacked:
            seg = Segment(
                x, width, f"chart__bar--{i}", f"{label}: {series[i]} {value:g}", y + 4, inner
            )
            x += width
        else:
            h = inner / len(values)
            seg = Segment(
                LABEL_WIDTH, width, f"chart__bar--{i}", f"{label}: {series[i]}", y + 4 + i * h, h
            )
        segments.append(seg)
    end = max((s.x + s.width for s in segments), default=LABEL_WIDTH)
    return Bar(label[:34], y, y + ROW_HEIGHT / 2 + 4, tuple(segments), text, end + 4)
