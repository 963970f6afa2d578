"""Escalating overdue tasks: one ladder rule, applied set-wise or to a single task.

`next_level` reads the ladder (the step's `escalateTo`, or the service's backup group, then the
supervisors when it runs out) and passes over any person who may not decide the application
(separation of duties). Most escalations hand a group's task to another group: those need no
per-person check, so `escalate_due` locks, updates and records a batch of them with a handful
of statements. A level that names a person goes through `escalate_task`, one task at a time,
from the sweep.
"""

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F

from .. import engine
from ..definitions import StepSpec
from ..models import (
    Event,
    RunState,
    ServiceKind,
    Status,
    StepRun,
    WorkflowInstance,
    username_key,
)
from ..queries import catalog
from . import notifications
from .assignment import hand_over, next_task_wake
from .guards import add_event, due_time
from .permissions import conflicted_usernames

BATCH = 200


@dataclass(frozen=True, slots=True)
class Level:
    """Where an overdue task goes: the ladder's next rung, and who was passed over on the way."""

    action: engine.TimeoutAction
    assignee: str
    passed_over: tuple[str, ...] = ()

    @property
    def detail(self) -> dict:
        """The `escalated` event's details."""
        return {
            "level": self.action.level,
            "to": self.assignee,
            "exhausted": self.action.exhausted,
            "passed_over": list(self.passed_over),
        }


def next_level(step: StepSpec, level: int, *, conflicted: Collection[str] = ()) -> Level:
    """The next rung after `level`, skipping persons in `conflicted` (usernames)."""
    backup = catalog.get_service(step.service).backup_group

    def rung(at: int) -> engine.TimeoutAction:
        kind = ServiceKind.HUMAN
        return engine.on_timeout(step, service_kind=kind, backup_group=backup, level=at)

    action, skipped = rung(level), []
    while action.assignee and _is_one_of(action.assignee, conflicted):
        skipped.append(action.assignee)
        action = rung(action.level)
    assignee = action.assignee or f"group:{settings.HMS_SUPERVISORS_GROUP}"
    return Level(action, assignee, tuple(skipped))


def _is_one_of(assignee: str, usernames: Collection[str]) -> bool:
    """Whether a `user:` rung names one of `usernames` (username keys)."""
    return (
        assignee.startswith("user:") and username_key(assignee.removeprefix("user:")) in usernames
    )


def escalate_task(run: StepRun, instance: WorkflowInstance, step: StepSpec, *, now) -> None:
    """Hand one overdue task to the next rung (the sweep's per-task way)."""
    to = next_level(step, run.escalation_level, conflicted=conflicted_usernames(run))
    before = holders(run)
    hand_over(
        run,
        to.assignee,
        now=now,
        escalation_level=to.action.level,
        escalation_exhausted=to.action.exhausted,
        due_at=_new_deadline(step, to, now),
    )
    add_event(instance, run, Event.Type.ESCALATED, **to.detail, **before)
    notifications.task_assigned(run, kind="escalated")
    notifications.applicant_update(instance, kind="escalated")


def holders(run: StepRun) -> dict:
    """Who has a task before it is escalated away (the `from` and `claimed_by` of the
    `escalated` event), so they keep a read-only trace of it (docs/inbox.md); one query."""
    names = StepRun.objects.filter(pk=run.pk).values_list(
        "assignee_group__name", "assignee_user__username", "claimed_by__username"
    )
    return had_it(*(names.first() or (None, None, None)))


def had_it(group: str | None, user: str | None, claimant: str | None) -> dict:
    """The `escalated` event's details on who had the task: its assignee, its claimant."""
    found = {"from": f"user:{user}" if user else f"group:{group}" if group else ""}
    return {**found, "claimed_by": claimant} if claimant else found


def _new_deadline(step: StepSpec, to: Level, now: datetime) -> datetime | None:
    """A new deadline of the same length, except for the supervisors at the end of the ladder."""
    return None if to.action.exhausted else due_time(step.timeout, now)


def escalate_due(*, now: datetime, limit: int = BATCH) -> int:
    """Escalate due tasks whose next rung is a group, set-wise; how many were escalated."""
    rows = (
        StepRun.objects.filter(state=RunState.WAITING, wake_at__lte=now, due_at__lte=now)
        .exclude(assignee_group=None, assignee_user=None)
        .order_by("wake_at")
        .values_list("pk", "instance_id", "instance__definition_id", "step_id", "escalation_level")
    )
    batches: dict[tuple[int, str, int], list[tuple]] = defaultdict(list)
    for run_id, instance_id, definition_id, step_id, level in rows[:limit]:
        batches[(definition_id, step_id, level)].append((run_id, instance_id))
    escalated = 0
    for (definition_id, step_id, level), due in batches.items():
        step = catalog.spec_of(catalog.get_definition(definition_id)).step(step_id)
        to = next_level(step, level)
        if to.action.kind == "escalate" and to.assignee.startswith("group:"):
            escalated += _escalate_batch(due, step, to, now=now)
    return escalated


def _escalate_batch(due, step: StepSpec, to: Level, *, now) -> int:
    """One transaction: lock the instances, move the tasks still as expected, record each."""
    group_id, _ = catalog.resolve_assignee(to.assignee)
    due_at = _new_deadline(step, to, now)
    wake_at = next_task_wake(StepRun(due_at=due_at), window_start=now)
    with transaction.atomic():
        locked = WorkflowInstance.objects.select_for_update(skip_locked=True).filter(
            pk__in=[instance_id for _, instance_id in due], status=Status.RUNNING
        )
        moving = list(
            StepRun.objects.filter(
                pk__in=[run_id for run_id, _ in due],
                instance__in=list(locked.values_list("pk", flat=True)),
                state=RunState.WAITING,
                escalation_level=to.action.level - 1,
                due_at__lte=now,
            ).values_list(
                "pk",
                "instance_id",
                "instance__payload__email",
                "assignee_group__name",
                "assignee_user__username",
                "claimed_by__username",
            )
        )
        if not moving:
            return 0
        # Their instances first (lock order, guards.touch): their ETags change.
        WorkflowInstance.objects.filter(pk__in={row[1] for row in moving}).update(
            revision=F("revision") + 1
        )
        StepRun.objects.filter(pk__in=[row[0] for row in moving]).update(
            assignee_group_id=group_id,
            assignee_user_id=None,
            escalation_level=to.action.level,
            escalation_exhausted=to.action.exhausted,
            due_at=due_at,
            claimed_by_id=None,
            claimed_at=None,
            reminders_sent=0,
            wake_at=wake_at,
        )
        Event.objects.bulk_create(_events(moving, step, to))
        for run_id, instance_id, email, *_ in moving:
            notifications.task_assigned(StepRun(pk=run_id), kind="escalated")
            if email:
                notifications.applicant_update(
                    WorkflowInstance(pk=instance_id, payload={"email": email}), kind="escalated"
                )
    return len(moving)


def _events(moving, step: StepSpec, to: Level) -> list[Event]:
    """The `timed_out` and `escalated` events of each task, as the per-task way writes them."""
    timeout = step.timeout.text if step.timeout else ""
    return [
        event
        for run_id, instance_id, _, group, user, claimant in moving
        for event in (
            Event(
                instance_id=instance_id,
                run_id=run_id,
                type=Event.Type.TIMED_OUT,
                step=step.id,
                detail={"action": "escalate", "timeout": timeout},
            ),
            Event(
                instance_id=instance_id,
                run_id=run_id,
                type=Event.Type.ESCALATED,
                step=step.id,
                detail={**to.detail, **had_it(group, user, claimant)},
            ),
        )
    ]
