"""/reports/: the supervisors' reports (docs/reports.md) — decisions on time, backlog by age,
workload per reviewer, durations. Each section: an SVG chart, its table, a CSV download."""

import csv
from dataclasses import dataclass

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from ..queries import reports
from ..runtime import reporting
from .report_charts import Chart, bar_chart

TEMPLATE = "workflows_app/reports.html"
MONTHS = (1, 3, 6, 12, 24)
PERMISSION = "workflows_app.view_reports"
BY_LABELS = {"workflow": "workflow", "step": "step", "group": "group", "month": "month"}


@dataclass(frozen=True, slots=True)
class Section:
    id: str
    title: str
    description: str
    chart: Chart
    columns: list[str]
    rows: list[list[str]]  # as shown
    raw: list[list]  # as downloaded
    csv_columns: list[str] | None = None  # when the download's differ (seconds, not "3.2 h")


def _guard(view):
    return require_GET(login_required(permission_required(PERMISSION, raise_exception=True)(view)))


def _period(request: HttpRequest) -> tuple[int, reports.Period]:
    try:
        months = int(request.GET.get("months", 12))
    except ValueError:
        months = 12
    months = months if months in MONTHS else 12
    return months, reports.Period.months_back(months)


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _rate_section(id_: str, title: str, description: str, dimension: str, rates) -> Section:
    rows = [(r.label, [100 * (r.rate or 0)], _percent(r.rate)) for r in rates]
    chart = bar_chart(title, rows, series=["on time"], maximum=100, tick_format=lambda v: f"{v:g}%")
    columns = [dimension.capitalize(), "Total", "With a time limit", "On time", "On-time rate"]
    shown = [[r.label, str(r.total), str(r.timed), str(r.on_time), _percent(r.rate)] for r in rates]
    raw = [
        [r.label, r.total, r.timed, r.on_time, "" if r.rate is None else round(r.rate, 4)]
        for r in rates
    ]
    return Section(id_, title, description, chart, columns, shown, raw)


@_guard
def on_time(request: HttpRequest) -> HttpResponse:
    reporting.fill_rollups()
    months, period = _period(request)
    by = request.GET.get("by") if request.GET.get("by") in reports.DIMENSIONS else "workflow"
    sections = [
        _rate_section(
            "decisions",
            f"Decisions on time, by {by}",
            "Tasks decided within their step's time limit and never escalated, of those with a "
            "time limit.",
            by,
            reports.on_time(period, by),
        )
    ]
    if by in ("workflow", "month"):
        sections.append(
            _rate_section(
                "cases",
                f"Cases decided within the workflow's deadline, by {by}",
                "Applications completed or refused by their statutory deadline, of those with one.",
                by,
                reports.cases_on_time(period, by),
            )
        )
    return _respond(request, "on-time", "Decisions on time", months, period, sections, by=by)


@_guard
def backlog(request: HttpRequest) -> HttpResponse:
    months, period = _period(request)
    found = reports.backlog(now=timezone.now())
    ages = [label for _, label in reports.AGES]
    rows = [(b.workflow, list(b.counts), str(b.total)) for b in found]
    chart = bar_chart("Running applications by age", rows, series=ages, stacked=True)
    section = Section(
        "backlog",
        "Running applications by age",
        "Applications not yet ended, by how long ago they started (now, not the period).",
        chart,
        ["Workflow", *ages, "Total"],
        [[b.workflow, *map(str, b.counts), str(b.total)] for b in found],
        [[b.workflow, *b.counts, b.total] for b in found],
    )
    return _respond(request, "backlog", "Backlog by age", months, period, [section])


@_guard
def workload(request: HttpRequest) -> HttpResponse:
    reporting.fill_rollups()
    months, period = _period(request)
    found = reports.workload(period)
    rows = [(w.reviewer, [w.decided], str(w.decided)) for w in found]
    section = Section(
        "workload",
        "Decisions per reviewer",
        "Tasks each person decided in the period, how many on time, and the tasks they have "
        "claimed now.",
        bar_chart("Decisions per reviewer", rows, series=["decisions"]),
        ["Reviewer", "Decisions", "With a time limit", "On time", "On-time rate", "Claimed now"],
        [
            [
                w.reviewer,
                str(w.decided),
                str(w.timed),
                str(w.on_time),
                _percent(w.rate),
                str(w.open_now),
            ]
            for w in found
        ],
        [
            [
                w.reviewer,
                w.decided,
                w.timed,
                w.on_time,
                "" if w.rate is None else round(w.rate, 4),
                w.open_now,
            ]
            for w in found
        ],
    )
    return _respond(request, "workload", "Workload per reviewer", months, period, [section])


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


@_guard
def durations(request: HttpRequest) -> HttpResponse:
    reporting.fill_rollups()
    months, period = _period(request)
    found = reports.durations(period)
    label = lambda d: f"{d.workflow} / {d.step or 'whole case'}"  # noqa: E731
    rows = [
        (label(d), [(d.median or 0) / 3600, (d.p90 or 0) / 3600], _duration(d.p90)) for d in found
    ]
    section = Section(
        "durations",
        "How long decisions and cases take",
        "Median and 90th percentile, from the task's creation to its decision (a whole case: "
        "from start to end); exact to within a bucket of the duration histogram.",
        bar_chart(
            "Median and 90th percentile (hours)",
            rows,
            series=["median", "90th percentile"],
            tick_format=lambda v: f"{v:.0f} h",
        ),
        ["Workflow", "Step", "Count", "Median", "90th percentile"],
        [
            [
                d.workflow,
                d.step or "whole case",
                str(d.count),
                _duration(d.median),
                _duration(d.p90),
            ]
            for d in found
        ],
        [[d.workflow, d.step, d.count, _round(d.median), _round(d.p90)] for d in found],
        ["Workflow", "Step", "Count", "Median (seconds)", "90th percentile (seconds)"],
    )
    return _respond(request, "durations", "Durations", months, period, [section])


def _round(value: float | None):
    return "" if value is None else round(value)


def _respond(request, page: str, title: str, months, period, sections, **extra) -> HttpResponse:
    if request.GET.get("format") == "csv":
        return _csv(page, sections, request.GET.get("section"), period)
    context = {
        "page": page,
        "title": title,
        "months": months,
        "month_choices": MONTHS,
        "period": period,
        "sections": sections,
        "dimensions": reports.DIMENSIONS,
        "query": request.GET.urlencode(),
        **extra,
    }
    return render(request, TEMPLATE, context)


def _csv(page: str, sections: list[Section], wanted: str | None, period) -> HttpResponse:
    section = next((s for s in sections if s.id == wanted), sections[0])
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"{page}-{section.id}-{period.first}-{period.last}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    writer.writerow(section.csv_columns or section.columns)
    writer.writerows(section.raw)
    return response
