"""Guarded writes shared by the runtime: a change lands only on the row as the caller saw it."""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from .. import engine
from ..definitions import Duration
from ..engine import TransitionNotAllowed
from ..models import (
    Event,
    Status,
    StepRun,
    WorkflowInstance,
)
from ..queries import catalog, outcomes
from . import clock, notifications, statements, webhooks


@dataclass(frozen=True, slots=True)
class Claimed:
    """A step run this worker holds, with what executing it needs."""

    run: StepRun
    instance: WorkflowInstance


def snapshot(run: StepRun) -> dict[str, Any]:
    """What a guarded update checks is unchanged (see guarded)."""
    return {
        "attempts": run.attempts,
        "assignee_group_id": run.assignee_group_id,
        "assignee_user_id": run.assignee_user_id,
        "escalation_level": run.escalation_level,
        "claimed_by_id": run.claimed_by_id,
    }


def touch(instance_id: int) -> None:
    """Bump the instance's `revision` (its ETag, docs/api.md): something shown changed.

    Inside a transaction call it before writing the run (the instance row is locked first,
    as everywhere); outside one, after (a reader then never caches a new revision with the
    old content)."""
    statements.update(WorkflowInstance, {"pk": instance_id}, {"revision": statements.Add(1)})


def guarded(
    run: StepRun,
    expect: str,
    *,
    seen: dict[str, Any] | None = None,
    touched: bool = False,
    **changes,
) -> None:
    """Update `run` only if it is still as the caller saw it; else it moved on.

    "As seen" is the state and attempt, and for tasks the assignee, level and claimant, so
    a person's decision cannot land on a task escalated or reassigned away from them
    between their permission check and their write. `touched`: the caller moved the
    instance in this transaction already (move_instance bumped its revision).
    """
    atomic = transaction.get_connection().in_atomic_block
    if not touched and atomic:
        touch(run.instance_id)
    where = {"pk": run.pk, "state": expect, **(seen or snapshot(run))}
    changed = statements.update(StepRun, where, changes)
    if not changed:
        raise TransitionNotAllowed(f"step '{run.step_id}' has moved on")
    if not touched and not atomic:
        touch(run.instance_id)
    for name, value in changes.items():
        setattr(run, name, value)


def move_instance(
    instance,
    from_step: str,
    move: engine.Move,
    *,
    context=None,
    decision=None,
    outcome=None,
    now,
    locked: bool = False,
    still_asking: bool = False,
    current_steps: list[str] | None = None,
) -> None:
    """Set the instance's status and step, guarded by the step it is expected to be at, with
    the `decision` just made; an ending records its `outcome` (for a failure or a
    cancellation, one without a decision). `locked`: the caller holds the row's lock and
    read it afresh (branches.py), so only its running is checked; `still_asking`: a request
    to the applicant stays open in another branch, so the deadline stays paused;
    `current_steps`: every step open after the move (branches), for status webhooks."""
    changes: dict[str, Any] = {
        "status": move.status,
        "current_step": move.step or "",
        "updated_at": now,
    }
    bump = {"revision": statements.Add(1)}  # folded into this UPDATE: no statement of its own
    if context is not None:
        changes["context"] = context
    if decision is not None:
        changes["decision"] = decision
    if move.status != Status.RUNNING:
        changes["ended_at"] = now
        changes["outcome"] = outcome or outcomes.ending_outcome(move.status, from_step, at=now)
    if move.status == Status.FAILED:
        changes["error"] = {"step": from_step, "detail": move.error or "the step failed"}
    if not still_asking:
        changes |= clock.resumed_fields(instance, now)  # leaving a wait for the applicant
    at_step = {} if locked else {"current_step": from_step}
    where = {"pk": instance.pk, "status": Status.RUNNING, **at_step}
    changed = statements.update(WorkflowInstance, where, {**changes, **bump})
    if not changed:
        raise TransitionNotAllowed(f"{instance.case_number} is no longer at step '{from_step}'")
    instance.__dict__.pop("revision", None)  # read afresh if asked: never saved back stale
    for name, value in changes.items():
        setattr(instance, name, value)
    if move.status in notifications.APPLICANT_KINDS:
        notifications.applicant_update(instance, kind=move.status)
    # The one seam for status webhooks after a start: every move of an instance passes here.
    webhooks.record_change(instance, now=now, current_steps=current_steps)


def add_event(
    instance, run, type_: str, *, step: str = "", actor: str = "", result: str = "", **detail
) -> Event:
    event = Event(
        instance=instance,
        run=run,
        type=type_,
        step=step or (run.step_id if run else ""),
        actor=actor,
        result=result,
        detail=detail,
    )
    statements.insert(event)
    return event


def due_time(timeout: Duration | None, now: datetime) -> datetime | None:
    """When a step with this time-out falls due, on the business calendar for working time."""
    calendar = catalog.get_calendar() if timeout and timeout.working else None
    return engine.due_time(timeout, now, calendar)


def jitter() -> float:
    """A random fraction for retry backoff (tests replace it to get exact delays)."""
    return random.random()


def lease() -> timedelta:
    """How long a claim holds: longer than a worker may run one task (settings explain)."""
    return timedelta(seconds=settings.HMS_STEP_LEASE_SECONDS)


def redelivery() -> timedelta:
    return timedelta(seconds=settings.HMS_REDELIVERY_SECONDS)
