"""The supervisors' reports, read from the daily rollups (docs/reports.md).

Decisions are human tasks that ended with an answer or a time-out (not cancelled ones). A
decision is on time when its step had a time limit, it was never escalated and it ended by
its due time; a case is on time when it ended by its workflow's deadline. Durations are
counted into fixed buckets, so medians and 90th percentiles are interpolated within a
bucket (as Prometheus' histogram_quantile does): exact to within a bucket's width.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import Case, Count, IntegerField, Q, QuerySet, Sum, Value, When
from django.db.models.functions import TruncMonth
from django.utils import timezone

from ..models import (
    CaseRollup,
    DecisionRollup,
    DurationRollup,
    RunState,
    Status,
    StepRun,
    WorkflowDefinition,
    WorkflowInstance,
)

# Upper bounds, in seconds, of the duration buckets; a last bucket holds everything longer.
BUCKET_BOUNDS = (
    *(60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 12 * 3600),
    *(86400 * d for d in (1, 2, 3, 5, 7, 10, 14, 21, 30, 45, 60, 90, 120, 180, 365)),
)
DECIDED_STATUSES = (Status.COMPLETED, Status.REJECTED)
DIMENSIONS = ("workflow", "step", "group", "month")
# Backlog ages: (upper bound in days, label); None: no upper bound.
AGES = (
    (1, "under 1 day"),
    (2, "1–2 days"),
    (5, "2–5 days"),
    (10, "5–10 days"),
    (30, "10–30 days"),
    (None, "30 days or more"),
)


def decisions() -> QuerySet[StepRun]:
    """Runs of human tasks that ended with an answer or a time-out."""
    return StepRun.objects.filter(
        Q(assignee_group__isnull=False) | Q(assignee_user__isnull=False),
        ended_at__isnull=False,
        state__in=(RunState.SUCCEEDED, RunState.SKIPPED, RunState.FAILED),
    )


@dataclass(frozen=True, slots=True)
class Period:
    """Whole days, first to last (inclusive)."""

    first: date
    last: date

    @classmethod
    def months_back(cls, months: int, *, today: date | None = None) -> "Period":
        """The last `months` calendar months, ending yesterday (today is not over yet)."""
        last = (today or timezone.localdate()) - timedelta(days=1)
        index = last.year * 12 + last.month - 1 - (months - 1)
        return cls(date(index // 12, index % 12 + 1, 1), last)


@dataclass(frozen=True, slots=True)
class Rate:
    """Counts of one row of an on-time table."""

    label: str
    total: int
    timed: int
    on_time: int

    @property
    def rate(self) -> float | None:
        """Share on time of those with a time limit (None: no limit to measure against)."""
        return self.on_time / self.timed if self.timed else None


def on_time(period: Period, by: str) -> list[Rate]:
    """Decisions on time against their step's time limit, by workflow, step, group or month."""
    rows = DecisionRollup.objects.filter(day__gte=period.first, day__lte=period.last)
    keys = {"workflow": ["workflow"], "step": ["workflow", "step"], "group": ["group"]}
    if by == "month":
        rows, keys["month"] = rows.annotate(month=TruncMonth("day")), ["month"]
    found = (
        rows.values(*keys[by])
        .annotate(total=Sum("decided"), timed=Sum("timed"), ok=Sum("on_time"))
        .order_by(*keys[by])
    )
    return [Rate(_label(r, keys[by]), r["total"], r["timed"], r["ok"]) for r in found]


def cases_on_time(period: Period, by: str) -> list[Rate]:
    """Decided cases (completed or refused) within their workflow's deadline."""
    rows = CaseRollup.objects.filter(
        day__gte=period.first, day__lte=period.last, status__in=DECIDED_STATUSES
    )
    key = "workflow"
    if by == "month":
        rows, key = rows.annotate(month=TruncMonth("day")), "month"
    found = (
        rows.values(key)
        .annotate(total=Sum("ended"), timed=Sum("timed"), ok=Sum("on_time"))
        .order_by(key)
    )
    return [Rate(_label(r, [key]), r["total"], r["timed"], r["ok"]) for r in found]


def _label(row: dict, keys: list[str]) -> str:
    parts = []
    for key in keys:
        value = row[key]
        if isinstance(value, datetime | date):
            value = value.strftime("%Y-%m")
        parts.append(str(value or "—").removeprefix("user:"))
    return " / ".join(parts)


@dataclass(frozen=True, slots=True)
class Backlog:
    """Running instances of one workflow, by age."""

    workflow: str
    counts: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.counts)


def backlog(*, now: datetime) -> list[Backlog]:
    """Instances still running, by workflow and age since they started (live, one query)."""
    whens = [
        When(created_at__gt=now - timedelta(days=days), then=Value(i))
        for i, (days, _) in enumerate(AGES)
        if days is not None
    ]
    age = Case(*whens, default=Value(len(AGES) - 1), output_field=IntegerField())
    found = (
        WorkflowInstance.objects.filter(status=Status.RUNNING)
        .annotate(age=age)
        .values("definition_id", "age")
        .annotate(n=Count("*"))  # not the id: the partial index answers alone
        .order_by()
    )
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * len(AGES))
    for row in found:  # versions by id from the cache: no join over the running instances
        counts[WorkflowDefinition.cached(row["definition_id"]).key][row["age"]] += row["n"]
    return [Backlog(key, tuple(counts[key])) for key in sorted(counts)]


@dataclass(frozen=True, slots=True)
class Workload:
    """One reviewer's decisions in the period, and the tasks they hold now."""

    reviewer: str
    decided: int
    timed: int
    on_time: int
    open_now: int

    @property
    def rate(self) -> float | None:
        return self.on_time / self.timed if self.timed else None


def workload(period: Period) -> list[Workload]:
    """Decisions per reviewer (rollups) and the open tasks each has claimed now (live)."""
    decided = (
        DecisionRollup.objects.filter(day__gte=period.first, day__lte=period.last)
        .values("reviewer")
        .annotate(total=Sum("decided"), timed=Sum("timed"), ok=Sum("on_time"))
        .order_by()
    )
    held = (
        StepRun.objects.filter(state=RunState.WAITING, claimed_by__isnull=False)
        .values("claimed_by__username")
        .annotate(n=Count("pk"))
        .order_by()
    )
    rows: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for r in decided:
        rows[r["reviewer"].removeprefix("user:") or "—"][:3] = [r["total"], r["timed"], r["ok"]]
    for r in held:
        rows[r["claimed_by__username"]][3] = r["n"]
    ordered = sorted(rows.items(), key=lambda item: (-item[1][0], item[0]))
    return [Workload(name, *values) for name, values in ordered]


@dataclass(frozen=True, slots=True)
class Durations:
    """How long decisions of one step (or whole cases: step "") took."""

    workflow: str
    step: str
    count: int
    median: float | None
    p90: float | None
    histogram: dict[int, int] = field(default_factory=dict, compare=False)


def durations(period: Period) -> list[Durations]:
    """Median and 90th percentile durations per workflow and step, and per whole case."""
    found = (
        DurationRollup.objects.filter(day__gte=period.first, day__lte=period.last)
        .values("workflow", "step", "bucket")
        .annotate(n=Sum("count"))
        .order_by()
    )
    histograms: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
    for r in found:
        histograms[(r["workflow"], r["step"])][r["bucket"]] = r["n"]
    return [
        Durations(wf, step, sum(h.values()), quantile(h, 0.5), quantile(h, 0.9), h)
        for (wf, step), h in sorted(histograms.items())
    ]


def quantile(histogram: dict[int, int], q: float) -> float | None:
    """The q-quantile in seconds of bucket counts, interpolated linearly inside its bucket."""
    total = sum(histogram.values())
    if not total:
        return None
    rank, seen = q * total, 0
    for bucket in sorted(histogram):
        count = histogram[bucket]
        if seen + count >= rank and count:
            if bucket >= len(BUCKET_BOUNDS):
                return float(BUCKET_BOUNDS[-1])  # longer than the last bound: say at least
            lower = BUCKET_BOUNDS[bucket - 1] if bucket else 0
            return lower + (BUCKET_BOUNDS[bucket] - lower) * (rank - seen) / count
        seen += count
    return float(BUCKET_BOUNDS[-1])
