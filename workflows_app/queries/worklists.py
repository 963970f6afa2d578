"""The staff's work lists: tasks waiting for a person, and one task with what its page shows."""

from datetime import datetime, timedelta
from uuid import UUID

from django.db.models import F, Q

from ..models import Event, RunState, StepRun
from .progress import public_id

HANDED_ON = (Event.Type.ESCALATED, Event.Type.REASSIGNED)
TRACE_DAYS = 30  # how long a task passed on from someone stays in their inbox's trace
TRACE_LIMIT = 20

INBOX_VIEWS = ("all", "mine", "group", "offered")
INBOX_SORTS = {
    "due": (F("due_at").asc(nulls_last=True), "started_at"),
    "waited": ("started_at",),
    "case": ("instance__case_number",),
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


def task_for_page(run_id: str | UUID) -> StepRun | None:
    """One task with what its page shows; None for an unknown or malformed id."""
    key = public_id(run_id)
    if key is None:
        return None
    related = ("instance", "instance__definition", "assignee_group", "assignee_user", "claimed_by")
    return StepRun.objects.select_related(*related).filter(pk=key).first()


def _had_it(user, group_names) -> Q:
    """Events that passed a task on from `user`: from them, from a group of theirs, or from
    their claim (the `from` and `claimed_by` the runtime records)."""
    labels = [f"user:{user.get_username()}", *(f"group:{name}" for name in group_names)]
    return Q(detail__from__in=labels) | Q(detail__claimed_by=user.get_username())


def passed_on_from(user, *, now: datetime) -> list[Event]:
    """Tasks escalated or reassigned away from `user` in the last TRACE_DAYS, newest first,
    one event per task, leaving out open tasks that are theirs again (two queries)."""
    groups = dict(user.groups.values_list("pk", "name"))
    events = (
        Event.objects.filter(
            _had_it(user, groups.values()),
            type__in=HANDED_ON,
            created_at__gte=now - timedelta(days=TRACE_DAYS),
        )
        .select_related("run", "run__instance", "run__assignee_group", "run__assignee_user")
        .order_by("-pk")
    )
    latest: dict[UUID, Event] = {}
    for event in events[: TRACE_LIMIT * 3]:
        run = event.run
        theirs = run is not None and run.is_open and _assigned_to(run, user.pk, groups)
        if run is not None and not theirs and event.run_id not in latest:
            latest[event.run_id] = event
    return list(latest.values())[:TRACE_LIMIT]


def _assigned_to(run: StepRun, user_id: int, group_ids) -> bool:
    return run.assignee_user_id == user_id or run.assignee_group_id in group_ids


def was_passed_on_from(user, run: StepRun) -> bool:
    """Whether `run` was escalated or reassigned away from `user` (or a group of theirs)."""
    group_names = list(user.groups.values_list("name", flat=True))
    events = Event.objects.filter(run=run, type__in=HANDED_ON)
    return events.filter(_had_it(user, group_names)).exists()
