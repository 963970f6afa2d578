"""The guarded writes of human tasks: assignment (with delegation), claims and releases,
reminders and stale claims, reassignment and hand-over (escalation uses it too)."""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from ..engine import TransitionNotAllowed
from ..models import Delegation, Event, RunState, StepRun, WorkflowInstance
from ..queries import catalog
from . import notifications
from .guards import add_event, guarded, snapshot


def assign(run: StepRun, assignee: str, *, now: datetime) -> tuple[str, str] | None:
    """Point `run` at `assignee`; a person out of office is replaced by their deputy.

    Returns (from, to) when a delegation applied.
    """
    group_id, user_id = catalog.resolve_assignee(assignee)
    delegated = None
    if user_id:
        deputy = _deputy(user_id, now)
        if deputy:
            delegated = (assignee, f"user:{deputy.get_username()}")
            user_id = deputy.pk
    run.assignee_group_id, run.assignee_user_id = group_id, user_id
    return delegated


def _deputy(user_id: int, now: datetime):
    today = timezone.localdate(now)
    delegation = (
        Delegation.objects.select_related("deputy")
        .filter(user_id=user_id, starts_on__lte=today, ends_on__gte=today)
        .first()
    )
    return delegation.deputy if delegation else None


def next_task_wake(run: StepRun, *, window_start: datetime) -> datetime | None:
    """The next moment a waiting task needs attention: a reminder, a stale claim, its deadline."""
    moments = [run.due_at]
    if run.claimed_at:
        moments.append(run.claimed_at + timedelta(seconds=settings.HMS_CLAIM_RELEASE_SECONDS))
    fractions = settings.HMS_REMINDER_FRACTIONS
    if run.due_at and run.reminders_sent < len(fractions):
        moments.append(window_start + (run.due_at - window_start) * fractions[run.reminders_sent])
    moments = [m for m in moments if m]
    return min(moments) if moments else None


def deadline_window_start(run: StepRun) -> datetime:
    """When the task's current deadline started: its last escalation or reassignment, or its start."""
    latest = (
        Event.objects.filter(run=run, type__in=[Event.Type.ESCALATED, Event.Type.REASSIGNED])
        .order_by("-pk")
        .values_list("created_at", flat=True)
        .first()
    )
    return latest or run.started_at or run.created_at


def task_timers(run: StepRun, instance: WorkflowInstance, *, now: datetime) -> None:
    """A waiting task's wake-up before its deadline: release a stale claim, send a reminder."""
    start = deadline_window_start(run)
    stale = timedelta(seconds=settings.HMS_CLAIM_RELEASE_SECONDS)
    if run.claimed_at and run.claimed_at + stale <= now:
        release_claim(run, actor="system", now=now, reason="claim untouched for too long")
        return
    fractions = settings.HMS_REMINDER_FRACTIONS
    if run.due_at and run.reminders_sent < len(fractions):
        moment = start + (run.due_at - start) * fractions[run.reminders_sent]
        if moment <= now:
            run.reminders_sent += 1
            guarded(
                run,
                run.state,
                reminders_sent=run.reminders_sent,
                wake_at=next_task_wake(run, window_start=start),
            )
            add_event(instance, run, Event.Type.REMINDED, due_at=run.due_at.isoformat())
            notifications.task_assigned(run, kind="reminder")
            return
    guarded(run, run.state, wake_at=next_task_wake(run, window_start=start))


def claim(run: StepRun, *, user, now: datetime) -> None:
    """Take an unclaimed waiting task for `user`; TransitionNotAllowed names who has it."""
    seen = snapshot(run)
    run.claimed_by_id, run.claimed_at = user.pk, now
    try:
        guarded(
            run,
            RunState.WAITING,
            seen={**seen, "claimed_by_id": None},
            claimed_by_id=user.pk,
            claimed_at=now,
            wake_at=next_task_wake(run, window_start=deadline_window_start(run)),
        )
    except TransitionNotAllowed:
        holder = StepRun.objects.filter(pk=run.pk).values_list("claimed_by__username", flat=True)
        if name := holder.first():
            raise TransitionNotAllowed(f"this task was already taken by {name}") from None
        raise
    run.claimed_by = user
    add_event(run.instance, run, Event.Type.CLAIMED, actor=f"user:{user.get_username()}")


def release_claim(run: StepRun, *, actor: str, now: datetime, reason: str = "") -> None:
    """Give a claimed task back to its group."""
    seen = snapshot(run)
    run.claimed_by_id, run.claimed_at = None, None
    guarded(
        run,
        RunState.WAITING,
        seen=seen,
        claimed_by_id=None,
        claimed_at=None,
        wake_at=next_task_wake(run, window_start=deadline_window_start(run)),
    )
    add_event(run.instance, run, Event.Type.RELEASED, actor=actor, reason=reason)


def reassign(run: StepRun, *, to: str, reason: str, actor: str, now: datetime) -> None:
    """Point a waiting task at another group or person, recording who, from whom, to whom, why."""
    before = _assignee_label(run)
    hand_over(run, to, now=now)
    add_event(
        run.instance,
        run,
        Event.Type.REASSIGNED,
        actor=actor,
        to=to,
        reason=reason,
        **{"from": before},
    )


def hand_over(run: StepRun, assignee: str, *, now: datetime, **changes) -> None:
    """Give a task to `assignee` afresh: unclaimed, no reminders sent, its wake-up recomputed.

    `changes` are further fields set in the same guarded write (escalation level, deadline).
    """
    seen, expect = snapshot(run), run.state
    for name, value in changes.items():
        setattr(run, name, value)
    assign(run, assignee, now=now)
    run.claimed_by_id, run.claimed_at, run.reminders_sent = None, None, 0
    guarded(
        run,
        expect,
        seen=seen,
        state=RunState.WAITING,
        assignee_group_id=run.assignee_group_id,
        assignee_user_id=run.assignee_user_id,
        claimed_by_id=None,
        claimed_at=None,
        reminders_sent=0,
        wake_at=next_task_wake(run, window_start=now),
        **changes,
    )


def _assignee_label(run: StepRun) -> str:
    if run.assignee_user_id:
        return "user:" + run.assignee_user.get_username()
    if run.assignee_group_id:
        return "group:" + run.assignee_group.name
    return ""
