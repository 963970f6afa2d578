"""Escalating many overdue tasks at once: one transaction per (step, level), set-wise writes.

Most escalations hand a group's task to another group (the backup group, or the supervisors
when the ladder ran out). Those need no per-person check, so a batch of them is locked,
updated and recorded with a handful of statements instead of seven per task. Levels that
name a person (separation of duties, delegation) go the per-task way in timers.py.
"""

from collections import defaultdict
from datetime import datetime

from django.conf import settings
from django.db import transaction

from .. import engine, notifications, specs
from ..models import Event, RunState, ServiceKind, Status, StepRun, WorkflowInstance
from .guards import due_time
from .human import next_task_wake

BATCH = 200


def escalate_in_bulk(*, now: datetime, limit: int = BATCH) -> int:
    """Escalate due tasks whose next level is a group, set-wise; how many were escalated."""
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
        step = specs.get_definition(definition_id).spec.step(step_id)
        action = engine.on_timeout(
            step,
            service_kind=ServiceKind.HUMAN,
            backup_group=specs.get_service(step.service).backup_group,
            level=level,
        )
        assignee = action.assignee or f"group:{settings.HMS_SUPERVISORS_GROUP}"
        if action.kind == "escalate" and assignee.startswith("group:"):
            escalated += _escalate_batch(due, step, action, assignee, now=now)
    return escalated


def _escalate_batch(due, step, action: engine.TimeoutAction, assignee: str, *, now) -> int:
    """One transaction: lock the instances, move the tasks still as expected, record each."""
    group_id, _ = specs.resolve_assignee(assignee)
    due_at = None if action.exhausted else due_time(step.timeout, now)
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
                escalation_level=action.level - 1,
                due_at__lte=now,
            ).values_list("pk", "instance_id", "instance__payload__email")
        )
        if not moving:
            return 0
        StepRun.objects.filter(pk__in=[run_id for run_id, _, _ in moving]).update(
            assignee_group_id=group_id,
            assignee_user_id=None,
            escalation_level=action.level,
            escalation_exhausted=action.exhausted,
            due_at=due_at,
            claimed_by_id=None,
            claimed_at=None,
            reminders_sent=0,
            wake_at=wake_at,
        )
        Event.objects.bulk_create(_events(moving, step, action, assignee))
        for run_id, instance_id, email in moving:
            notifications.task_assigned(StepRun(pk=run_id), kind="escalated")
            if email:
                notifications.applicant_update(
                    WorkflowInstance(pk=instance_id, payload={"email": email}), kind="escalated"
                )
    return len(moving)


def _events(moving, step, action: engine.TimeoutAction, assignee: str) -> list[Event]:
    timeout = step.timeout.text if step.timeout else ""
    escalated = {"level": action.level, "to": assignee, "exhausted": action.exhausted}
    return [
        event
        for run_id, instance_id, _ in moving
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
                detail={**escalated, "passed_over": []},
            ),
        )
    ]
