"""The staff's work lists: tasks waiting for a person, and one task with what its page shows."""

from uuid import UUID

from django.db.models import F, Q

from ..models import RunState, StepRun
from .progress import public_id

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


def task_for_page(run_id: str | UUID) -> StepRun | None:
    """One task with what its page shows; None for an unknown or malformed id."""
    key = public_id(run_id)
    if key is None:
        return None
    related = ("instance", "instance__definition", "assignee_group", "assignee_user", "claimed_by")
    return StepRun.objects.select_related(*related).filter(pk=key).first()
