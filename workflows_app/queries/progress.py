"""How an instance stands, for the API, the tracker and the admin: its runs, events and steps.

Each function builds what it shows in a fixed number of queries.
"""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from .. import engine
from ..models import OPEN_RUN_STATES, CaseDocument, Event, RunState, StepRun, WorkflowInstance
from . import catalog, revisions
from .prepared import Prepared

FINISHED_RUN_STATES = (RunState.SUCCEEDED, RunState.FAILED, RunState.SKIPPED)


def public_id(value: str | UUID) -> UUID | None:
    """An instance's public id from a URL or a form; None when it is malformed."""
    try:
        return value if isinstance(value, UUID) else UUID(str(value))
    except ValueError:
        return None


def instance_by_uuid(value: str | UUID) -> WorkflowInstance | None:
    """The instance with this public id; None for an unknown or malformed id."""
    key = public_id(value)
    if key is None:
        return None
    return WorkflowInstance.objects.filter(uuid=key).first()


def instance_with_runs(
    value: str | UUID, *, token_hash: str | None = None
) -> tuple[WorkflowInstance | None, list[StepRun]]:
    """The instance with this public id and its runs, oldest first: one query.

    One join costs half of two look-ups (most of a query's cost is compiling it; see
    docs/BENCHMARKS.md), and the join is compiled once per process (queries/prepared.py).
    Every instance has a run from its start, so an empty answer means an unknown id; only
    then is the instance looked up on its own. With `token_hash` the caller's token row is
    read in the same statement (revisions.token_columns): each run then carries it
    (`revisions.token_from(runs[0])`).
    """
    key = public_id(value)
    if key is None:
        return None, []
    if token_hash is None:
        runs = _RUNS_WITH_INSTANCE(key)
    else:
        rows = _runs_with_instance(key).annotate(**revisions.token_columns(token_hash))
        runs = list(rows)
    if not runs:
        return instance_by_uuid(key), []
    instance = runs[0].instance
    for run in runs:
        run.instance = instance  # one object for all, as a caller may change it
    return instance, runs


def run_with_instance(run_id: UUID | str) -> StepRun | None:
    """The step run with this id, with its instance (one query, compiled once per process:
    every step a worker claims and every answer to a task starts here)."""
    found = _RUN_WITH_INSTANCE(run_id)
    return found[0] if found else None


def _runs_with_instance(key: UUID):
    return (
        StepRun.objects.filter(instance__uuid=key)
        .select_related("instance", "assignee_group", "assignee_user")
        .order_by("created_at", "pk")
    )


def _uuid_parameter(connection, key: UUID) -> list:
    return [WorkflowInstance._meta.get_field("uuid").get_db_prep_value(key, connection)]


def _pk_parameter(connection, instance: WorkflowInstance) -> list:
    return [instance.pk]


_RUN_WITH_INSTANCE = Prepared(
    lambda run_id: StepRun.objects.select_related("instance").filter(pk=run_id),
    prepare=lambda connection, run_id: [StepRun._meta.pk.get_db_prep_value(run_id, connection)],
    sample=(UUID(int=1),),
)
_RUNS_WITH_INSTANCE = Prepared(_runs_with_instance, prepare=_uuid_parameter, sample=(UUID(int=1),))


@dataclass(frozen=True, slots=True)
class StepView:
    """One step of the definition as it stands for one instance."""

    id: str
    title: str
    description: str
    state: str  # done, current, waiting, escalated, failed, skipped, upcoming
    branch: str  # the branch the step belongs to, "" for the workflow's own steps
    kind: str  # service, parallel or workflow
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
    """Every event of the instance, oldest first (one query, compiled once per process)."""
    return _EVENTS(instance)


_EVENTS = Prepared(
    lambda instance: Event.objects.filter(instance=instance).order_by("pk"),
    prepare=_pk_parameter,
    sample=(WorkflowInstance(pk=1),),
)


def step_views(instance: WorkflowInstance, runs: list[StepRun]) -> list[StepView]:
    """Each step of the pinned definition with its state, from the latest run of that step."""
    latest: dict[str, StepRun] = {}
    for run in runs:
        if run.state != RunState.CANCELLED or run.step_id not in latest:
            latest[run.step_id] = run
    views = []
    spec = catalog.spec_of(instance)
    for step in spec.all_steps:
        run = latest.get(step.id)
        if run is not None and run.state == RunState.CANCELLED:
            run = None  # a step whose only run was cancelled never happened, for the reader
        views.append(
            StepView(
                id=step.id,
                title=step.display_title,
                description=step.display_description,
                state=step_state(run, kind=step.kind),
                branch=spec.lane_of(step.id),
                kind=step.kind,
                started_at=run.started_at if run else None,
                ended_at=run.ended_at if run else None,
                due_at=run.due_at if run and run.is_open else None,
                result=run.result if run else "",
                run=run,
            )
        )
    return views


def step_state(run: StepRun | None, *, kind: str = "service") -> str:
    """The state word the status API uses for a step whose latest run is `run`; a parallel
    step waiting for its branches, or a workflow step for its child, is `current`."""
    if run is None or run.state == RunState.CANCELLED:
        return "upcoming"
    if kind != "service" and run.state in OPEN_RUN_STATES:
        return "current"
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
    """The instance's first open run where work happens, in definition order, if any."""
    return next(iter(working_runs(runs)), None)


def working_runs(runs: list[StepRun]) -> list[StepRun]:
    """The open runs where work happens (not parallel steps waiting for their branches), in
    definition order: one for a single-lane instance, one per open branch otherwise."""
    found = [run for run in runs if run.state in OPEN_RUN_STATES]
    if not found:
        return []
    spec = catalog.spec_of(found[0].instance)
    found = [run for run in found if spec.step(run.step_id).kind != "parallel"]
    return sorted(found, key=lambda run: spec.order_of(run.step_id))


def children_of(runs: list[StepRun]) -> dict:
    """The child instance of each workflow step's run, by run id (one query, none when the
    instance has no workflow step)."""
    if not runs:
        return {}
    spec = catalog.spec_of(runs[0].instance)
    asked = [run.pk for run in runs if spec.step(run.step_id).kind == "workflow"]
    if not asked:
        return {}
    return {
        child.parent_run_id: child
        for child in WorkflowInstance.objects.filter(parent_run__in=asked)
    }


def parent_of(instance: WorkflowInstance) -> WorkflowInstance | None:
    """The instance whose workflow step started this one (one query), or None."""
    if not instance.parent_run_id:
        return None
    return WorkflowInstance.objects.filter(runs__pk=instance.parent_run_id).first()


def deadline_of(instance: WorkflowInstance, *, now: datetime) -> engine.DeadlineState | None:
    """Where the instance's statutory deadline stands; None when its workflow has none.

    No query, except the business calendar for a working-time deadline while it is paused.
    """
    if instance.deadline_at is None:
        return None
    paused = instance.awaiting_applicant_since
    deadline = catalog.spec_of(instance).deadline
    working = bool(paused and deadline and deadline.working)
    return engine.deadline_state(
        instance.deadline_at,
        paused_at=paused,
        ended_at=instance.ended_at,
        now=now,
        working=working,
        calendar=catalog.get_calendar() if working else None,
    )


def documents_of(instance: WorkflowInstance) -> list[CaseDocument]:
    """Every document of the instance, oldest first (one query, compiled once per process)."""
    return _DOCUMENTS(instance)


_DOCUMENTS = Prepared(
    lambda instance: CaseDocument.objects.filter(instance=instance).order_by("created_at", "pk"),
    prepare=_pk_parameter,
    sample=(WorkflowInstance(pk=1),),
)


def document_by_id(value: str | UUID) -> CaseDocument | None:
    """The document with this id, with its instance; None for an unknown or malformed id."""
    key = public_id(value)
    if key is None:
        return None
    return CaseDocument.objects.select_related("instance").filter(pk=key).first()
