"""Filling the daily rollups behind the supervisors' reports (docs/reports.md).

Days are counted whole, once: a day is filled after it has ended (by the daily schedule, or
on demand when a report page finds it missing), with four grouped queries per run of
missing days, however many days that run spans. A day's RollupDay row is written in the same
transaction as its rollup rows, so two fillers never count a day twice.
"""

from datetime import date, datetime, time, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Case, Count, DurationField, ExpressionWrapper, F, Q, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from ..models import (
    CaseRollup,
    DecisionRollup,
    DurationRollup,
    RollupDay,
    RunState,
    WorkflowInstance,
)
from ..queries.reports import BUCKET_BOUNDS, DECIDED_STATUSES, decisions

MAX_DAYS = 3660  # one fill looks back at most ten years


def fill_rollups(*, through: date | None = None) -> int:
    """Count every day up to `through` (default: yesterday) not counted yet; return how many."""
    through = through or timezone.localdate() - timedelta(days=1)
    ended = WorkflowInstance.objects.filter(ended_at__isnull=False).order_by("ended_at")
    first = ended.values_list("ended_at", flat=True).first()
    if first is None:
        return 0
    start = max(timezone.localdate(first), through - timedelta(days=MAX_DAYS))
    done = set(
        RollupDay.objects.filter(day__gte=start, day__lte=through).values_list("day", flat=True)
    )
    missing = [d for d in _days(start, through) if d not in done]
    filled = 0
    for first_day, last_day in _runs(missing):
        filled += _fill_range(first_day, last_day)
    return filled


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) pairs."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and runs[-1][1] == day - timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _fill_range(first: date, last: date) -> int:
    """Count the days first..last (inclusive) in one transaction; 0 if someone else did."""
    zone = timezone.get_current_timezone()
    since = datetime.combine(first, time.min, tzinfo=zone)
    until = datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone)
    try:
        with transaction.atomic():
            RollupDay.objects.bulk_create([RollupDay(day=d) for d in _days(first, last)])
            DecisionRollup.objects.bulk_create(_decision_rows(since, until), batch_size=2000)
            CaseRollup.objects.bulk_create(_case_rows(since, until), batch_size=2000)
            DurationRollup.objects.bulk_create(_duration_rows(since, until), batch_size=2000)
    except IntegrityError:
        return 0
    return (last - first).days + 1


def _bucket(duration) -> Case:
    whens = [When(**{f"{duration}__lte": timedelta(seconds=b)}, then=i) for i, b in _bounds()]
    return Case(*whens, default=len(BUCKET_BOUNDS))


def _bounds():
    return list(enumerate(BUCKET_BOUNDS))


def _decision_rows(since: datetime, until: datetime) -> list[DecisionRollup]:
    runs = decisions().filter(ended_at__gte=since, ended_at__lt=until)
    on_time = Q(state=RunState.SUCCEEDED, escalation_level=0, ended_at__lte=F("due_at"))
    rows = (
        runs.annotate(day=TruncDate("ended_at"))
        .values(
            "day", "instance__definition__key", "step_id", "assignee_group__name", "completed_by"
        )
        .annotate(
            decided=Count("pk"),
            timed=Count("pk", filter=Q(due_at__isnull=False)),
            on_time=Count("pk", filter=on_time),
        )
        .order_by()
    )
    return [
        DecisionRollup(
            day=r["day"],
            workflow=r["instance__definition__key"],
            step=r["step_id"],
            group=r["assignee_group__name"] or "",
            reviewer=r["completed_by"],
            decided=r["decided"],
            timed=r["timed"],
            on_time=r["on_time"],
        )
        for r in rows
    ]


def _case_rows(since: datetime, until: datetime) -> list[CaseRollup]:
    cases = WorkflowInstance.objects.filter(ended_at__gte=since, ended_at__lt=until)
    rows = (
        cases.annotate(day=TruncDate("ended_at"))
        .values("day", "definition__key", "status")
        .annotate(
            ended=Count("pk"),
            timed=Count("pk", filter=Q(deadline_at__isnull=False)),
            on_time=Count("pk", filter=Q(ended_at__lte=F("deadline_at"))),
        )
        .order_by()
    )
    return [
        CaseRollup(
            day=r["day"],
            workflow=r["definition__key"],
            status=r["status"],
            ended=r["ended"],
            timed=r["timed"],
            on_time=r["on_time"],
        )
        for r in rows
    ]


def _duration_rows(since: datetime, until: datetime) -> list[DurationRollup]:
    took = ExpressionWrapper(F("ended_at") - F("created_at"), output_field=DurationField())
    runs = (
        decisions()
        .filter(ended_at__gte=since, ended_at__lt=until)
        .annotate(day=TruncDate("ended_at"), took=took, bucket=_bucket("took"))
        .values("day", "instance__definition__key", "step_id", "bucket")
        .annotate(n=Count("pk"))
        .order_by()
    )
    cases = (
        WorkflowInstance.objects.filter(
            ended_at__gte=since, ended_at__lt=until, status__in=DECIDED_STATUSES
        )
        .annotate(day=TruncDate("ended_at"), took=took, bucket=_bucket("took"))
        .values("day", "definition__key", "bucket")
        .annotate(n=Count("pk"))
        .order_by()
    )
    rows = [
        DurationRollup(
            day=r["day"],
            workflow=r["instance__definition__key"],
            step=r["step_id"],
            bucket=r["bucket"],
            count=r["n"],
        )
        for r in runs
    ]
    rows += [
        DurationRollup(
            day=r["day"], workflow=r["definition__key"], step="", bucket=r["bucket"], count=r["n"]
        )
        for r in cases
    ]
    return rows
