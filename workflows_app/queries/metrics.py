"""What /metrics reports, read from the database at scrape time (docs/metrics.md).

Every process writes its work to the database anyway (instances, step runs, events, the
HTTP call counters, heartbeats), so one scrape of any web process sees the work of every
web process and qcluster worker, including workers killed a moment ago; nothing is kept in
process memory and nothing is lost with a process. Each family is one aggregate query
(GROUP BY, no per-row queries): a scrape costs a fixed handful of statements, however many
instances there are.
"""

from collections.abc import Iterator
from datetime import datetime, timedelta

from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, Sum
from django.utils import timezone
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from ..models import (
    CALL_BUCKETS,
    Event,
    Heartbeat,
    RunState,
    ServiceCallCount,
    Status,
    StepRun,
    WebhookDelivery,
    WorkflowInstance,
)

# Upper bounds (seconds) of the step-duration buckets: a minute to a month.
STEP_BUCKETS = (1, 10, 60, 300, 900, 3600, 4 * 3600, 86400, 2 * 86400, 7 * 86400, 30 * 86400)
USER = "(a person)"  # the group label of tasks assigned to one person rather than a group


class DatabaseCollector:
    """A prometheus_client collector whose every value comes from the database."""

    def __init__(self, now=timezone.now) -> None:
        self._now = now

    def collect(self) -> Iterator[Metric]:
        now = self._now()
        yield from instance_families()
        yield step_duration_family()
        yield from task_families(now)
        yield escalation_family()
        yield from service_call_families()
        yield from queue_families(now)
        yield heartbeat_family(now)
        yield from webhook_families(now)


def instance_families() -> Iterator[Metric]:
    """Instances started by workflow, ended by workflow and status, running now."""
    started = CounterMetricFamily(
        "hms_instances_started", "Instances started, by workflow.", labels=["workflow"]
    )
    ended = CounterMetricFamily(
        "hms_instances_ended",
        "Instances ended, by workflow and status.",
        labels=["workflow", "status"],
    )
    running = GaugeMetricFamily(
        "hms_instances_running", "Instances running now.", labels=["workflow"]
    )
    rows = (
        WorkflowInstance.objects.values_list("definition__key", "status")
        .annotate(n=Count("id"))
        .order_by("definition__key", "status")
    )
    totals: dict[str, int] = {}
    for key, status, n in rows:
        totals[key] = totals.get(key, 0) + n
        if status == Status.RUNNING:
            running.add_metric([key], n)
        else:
            ended.add_metric([key, status], n)
    for key, n in totals.items():
        started.add_metric([key], n)
    return iter((started, ended, running))


def step_duration_family() -> Metric:
    """How long finished step runs took (start to end), by workflow and step, as a histogram
    bucketed in SQL: one row per (workflow, step)."""
    took = ExpressionWrapper(F("ended_at") - F("started_at"), output_field=DurationField())
    buckets = {
        f"le_{i}": Count("id", filter=Q(took__lte=timedelta(seconds=bound)))
        for i, bound in enumerate(STEP_BUCKETS)
    }
    rows = (
        StepRun.objects.filter(ended_at__isnull=False, started_at__isnull=False)
        .annotate(took=took)
        .values("instance__definition__key", "step_id")
        .annotate(n=Count("id"), total=Sum("took"), **buckets)
        .order_by("instance__definition__key", "step_id")
    )
    family = HistogramMetricFamily(
        "hms_step_duration_seconds",
        "Time from a step run's start to its end (finished runs), by workflow and step.",
        labels=["workflow", "step"],
    )
    for row in rows:
        pairs = [(_bound(b), row[f"le_{i}"]) for i, b in enumerate(STEP_BUCKETS)]
        pairs.append(("+Inf", row["n"]))
        total = row["total"].total_seconds() if row["total"] else 0.0
        family.add_metric([row["instance__definition__key"], row["step_id"]], pairs, total)
    return family


def _bound(seconds: float) -> str:
    return str(float(seconds))


def task_families(now: datetime) -> Iterator[Metric]:
    """Open tasks and overdue tasks (past their time-out), by the group they are with."""
    open_ = GaugeMetricFamily(
        "hms_tasks_open", "Tasks waiting for a person, by group.", labels=["group"]
    )
    overdue = GaugeMetricFamily(
        "hms_tasks_overdue", "Open tasks past their time-out, by group.", labels=["group"]
    )
    rows = (
        StepRun.objects.filter(state=RunState.WAITING)
        .filter(Q(assignee_group__isnull=False) | Q(assignee_user__isnull=False))
        .values_list("assignee_group__name")
        .annotate(n=Count("id"), late=Count("id", filter=Q(due_at__lt=now)))
        .order_by("assignee_group__name")
    )
    for group, n, late in rows:
        open_.add_metric([group or USER], n)
        overdue.add_metric([group or USER], late)
    return iter((open_, overdue))


def escalation_family() -> Metric:
    family = CounterMetricFamily(
        "hms_escalations", "Tasks escalated (each level counts once), by workflow and step.",
        labels=["workflow", "step"],
    )  # fmt: skip
    rows = (
        Event.objects.filter(type=Event.Type.ESCALATED)
        .values_list("instance__definition__key", "step")
        .annotate(n=Count("id"))
        .order_by("instance__definition__key", "step")
    )
    for key, step, n in rows:
        family.add_metric([key, step], n)
    return family


def service_call_families() -> Iterator[Metric]:
    """HTTP calls to services by service and outcome (done, accepted, retry, fail), with
    their latency as a histogram (runtime/callcounts.py counts them)."""
    calls = CounterMetricFamily(
        "hms_service_calls", "HTTP calls to services, by service and outcome.",
        labels=["service", "outcome"],
    )  # fmt: skip
    latency = HistogramMetricFamily(
        "hms_service_call_duration_seconds", "Latency of HTTP calls to services.",
        labels=["service", "outcome"],
    )  # fmt: skip
    grouped: dict[tuple[str, str], dict[float, tuple[int, float]]] = {}
    for service, outcome, le, n, seconds in ServiceCallCount.objects.values_list(
        "service", "outcome", "le", "count", "seconds"
    ):
        grouped.setdefault((service, outcome), {})[le] = (n, seconds)
    for (service, outcome), by_bound in sorted(grouped.items()):
        running, pairs = 0, []
        for bound in CALL_BUCKETS:
            running += by_bound.get(bound, (0, 0.0))[0]
            pairs.append((_bound(bound), running))
        total = sum(n for n, _ in by_bound.values())
        pairs.append(("+Inf", total))
        seconds = sum(s for _, s in by_bound.values())
        calls.add_metric([service, outcome], total)
        latency.add_metric([service, outcome], pairs, seconds)
    return iter((calls, latency))


def queue_families(now: datetime) -> Iterator[Metric]:
    """Step runs waiting for a worker, and how long the oldest new one has waited."""
    row = StepRun.objects.filter(state=RunState.QUEUED).aggregate(
        n=Count("id"), oldest=Min("created_at", filter=Q(attempts=0))
    )
    depth = GaugeMetricFamily("hms_queue_depth", "Step runs queued for a worker (incl. retries).")
    depth.add_metric([], row["n"])
    age = GaugeMetricFamily(
        "hms_queue_oldest_age_seconds",
        "Age of the oldest queued step run not yet tried (0 when none waits).",
    )
    age.add_metric([], _seconds_since(row["oldest"], now))
    return iter((depth, age))


def heartbeat_family(now: datetime) -> Metric:
    """Seconds since each periodic job last ticked (`timer`: a worker's timer thread;
    `sweep`: the scheduled sweep)."""
    family = GaugeMetricFamily(
        "hms_heartbeat_age_seconds", "Seconds since a worker job last ticked.", labels=["job"]
    )
    for name, tick in Heartbeat.objects.values_list("name", "last_tick").order_by("name"):
        family.add_metric([name], _seconds_since(tick, now))
    return family


def webhook_families(now: datetime) -> Iterator[Metric]:
    """Status-webhook messages by state, and the age of the oldest one not yet delivered."""
    rows = dict(
        WebhookDelivery.objects.values_list("state").annotate(n=Count("id")).order_by("state")
    )
    oldest = WebhookDelivery.objects.filter(state=WebhookDelivery.State.PENDING).aggregate(
        t=Min("created_at")
    )["t"]
    family = GaugeMetricFamily(
        "hms_webhook_messages", "Status-webhook messages, by state.", labels=["state"]
    )
    for state in WebhookDelivery.State.values:
        family.add_metric([state], rows.get(state, 0))
    age = GaugeMetricFamily(
        "hms_webhook_oldest_pending_age_seconds", "Age of the oldest undelivered message."
    )
    age.add_metric([], _seconds_since(oldest, now))
    return iter((family, age))


def _seconds_since(moment: datetime | None, now: datetime) -> float:
    return max(0.0, (now - moment).total_seconds()) if moment else 0.0
