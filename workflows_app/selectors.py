"""Read queries for the API and the pages. Each builds what it shows in a fixed number of queries."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.db.models import F, Max, Q

from .models import (
    OPEN_RUN_STATES,
    Event,
    RunState,
    StepRun,
    WorkflowDefinition,
    WorkflowInstance,
)

FINISHED_RUN_STATES = (RunState.SUCCEEDED, RunState.FAILED, RunState.SKIPPED)


def latest_definition(key: str) -> WorkflowDefinition | None:
    """The newest published version of workflow `key`."""
    return WorkflowDefinition.objects.filter(key=key).order_by("-version").first()


def latest_definitions() -> list[WorkflowDefinition]:
    """The newest version of every workflow, by key."""
    newest = WorkflowDefinition.objects.values("key").annotate(v=Max("version"))
    wanted = {(row["key"], row["v"]) for row in newest}
    rows = WorkflowDefinition.objects.filter(key__in=[k for k, _ in wanted]).order_by("key")
    return [row for row in rows if (row.key, row.version) in wanted]


def _public_id(value: str | UUID) -> UUID | None:
    """An instance's public id from a URL or a form; None when it is malformed."""
    try:
        return value if isinstance(value, UUID) else UUID(str(value))
    except ValueError:
        return None


def instance_by_uuid(value: str | UUID) -> WorkflowInstance | None:
    """The instance with this public id; None for an unknown or malformed id."""
    public_id = _public_id(value)
    if public_id is None:
        return None
    return WorkflowInstance.objects.filter(uuid=public_id).first()


def instance_with_runs(value: str | UUID) -> tuple[WorkflowInstance | None, list[StepRun]]:
    """The instance with this public id and its runs, oldest first: one query.

    One join costs half of two look-ups (most of a query's cost is compiling it; see
    docs/BENCHMARKS.md). Every instance has a run from its start, so an empty answer means
    an unknown id; only then is the instance looked up on its own.
    """
    public_id = _public_id(value)
    if public_id is None:
        return None, []
    runs = list(
        StepRun.objects.filter(instance__uuid=public_id)
        .select_related("instance", "assignee_group", "assignee_user")
        .order_by("created_at", "pk")
    )
    if not runs:
        return instance_by_uuid(public_id), []
    instance = runs[0].instance
    for run in runs:
        run.instance = instance  # one object for all, as a caller may change it
    return instance, runs


@dataclass(frozen=True, slots=True)
class StepView:
    """One step of the definition as it stands for one instance."""

    id: str
    title: str
    description: str
    state: str  # done, current, waiting, escalated, failed, skipped, upcoming
    started_at: datetime | None
    ended_at: datetime | None
    due_at: datetime | None
    result: str
    run: StepRun | None


def runs_of(instance: WorkflowInstance) -> list[StepRun]:
    """Every run of the instance, oldest first (one query)."""
    runs = StepRun.objects.filter(instance=instance).select_related(
        "assignee_group", "assignee_user"
    )
    return list(runs.order_by("created_at", "pk"))


def events_of(instance: WorkflowInstance) -> list[Event]:
    """Every event of the instance, oldest first (one query)."""
    return list(Event.objects.filter(instance=instance).order_by("pk"))


def step_views(instance: WorkflowInstance, runs: list[StepRun]) -> list[StepView]:
    """Each step of the pinned definition with its state, from the latest run of that step."""
    latest: dict[str, StepRun] = {}
    for run in runs:
        if run.state != RunState.CANCELLED or run.step_id not in latest:
            latest[run.step_id] = run
    views = []
    for step in instance.spec.steps:
        run = latest.get(step.id)
        if run is not None and run.state == RunState.CANCELLED:
            run = None  # a step whose only run was cancelled never happened, for the reader
        views.append(
            StepView(
                id=step.id,
                title=step.display_title,
                description=step.description,
                state=step_state(run),
                started_at=run.started_at if run else None,
                ended_at=run.ended_at if run else None,
                due_at=run.due_at if run and run.is_open else None,
                result=run.result if run else "",
                run=run,
            )
        )
    return views


def step_state(run: StepRun | None) -> str:
    """The state word CONTRACT §3 uses for a step whose latest run is `run`."""
    if run is None or run.state == RunState.CANCELLED:
        return "upcoming"
    match run.state:
        case RunState.SUCCEEDED:
            return "done"
        case RunState.FAILED:
            return "failed"
        case RunState.SKIPPED:
            return "skipped"
        case RunState.WAITING if run.escalation_level:
            return "escalated"
        case RunState.WAITING:
            return "waiting"
    return "current"


def history(runs: list[StepRun]) -> list[StepRun]:
    """Finished runs, in the order they finished."""
    done = [run for run in runs if run.state in FINISHED_RUN_STATES]
    return sorted(done, key=lambda run: (run.ended_at or run.created_at, run.created_at))


def open_run(runs: list[StepRun]) -> StepRun | None:
    """The instance's open run, if any (there is at most one)."""
    return next((run for run in runs if run.state in OPEN_RUN_STATES), None)


# --- The staff inbox -----------------------------------------------------------------------

INBOX_VIEWS = ("all", "mine", "group", "offered")
INBOX_SORTS = {
    "due": (F("due_at").asc(nulls_last=True), "started_at"),
    "waited": ("started_at",),
    "case": ("instance_id",),
}


def inbox_tasks(
    user, *, view: str = "all", sort: str = "due", workflow: str | None = None, limit: int = 200
) -> list[StepRun]:
    """Waiting tasks `user` may see: mine, my groups' unclaimed ones, escalations offered to me."""
    group_ids = list(user.groups.values_list("pk", flat=True))
    mine = Q(assignee_user=user) | Q(claimed_by=user)
    group = Q(assignee_group__in=group_ids, claimed_by__isnull=True)
    wanted = {
        "mine": mine,
        "group": group & Q(escalation_level=0),
        "offered": group & Q(escalation_level__gt=0),
    }.get(view, mine | group)
    tasks = StepRun.objects.filter(wanted, state=RunState.WAITING).select_related(
        "instance", "instance__definition", "assignee_group", "assignee_user", "claimed_by"
    )
    if workflow:
        tasks = tasks.filter(instance__definition__key=workflow)
    return list(tasks.order_by(*INBOX_SORTS.get(sort, INBOX_SORTS["due"]))[:limit])


def task_for_page(run_id) -> StepRun | None:
    """One task with what its page shows; None for an unknown or malformed id."""
    try:
        key = run_id if isinstance(run_id, UUID) else UUID(str(run_id))
    except ValueError:
        return None
    related = ("instance", "instance__definition", "assignee_group", "assignee_user", "claimed_by")
    return StepRun.objects.select_related(*related).filter(pk=key).first()
