"""The only writers of instances and step runs: lock or guard, apply the engine, record, enqueue.

Every change of an instance is one transaction together with its history: the step-run row
(a finished run is the history entry of that step) or an Event row. Writes are guarded by the
state they expect (`UPDATE … WHERE state = …`), so a duplicate message, a late callback or a
racing sweep changes nothing twice. Jobs are enqueued only after commit (queue.py).
"""

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from . import engine, notifications, queue, specs, working_time
from .definitions import Duration
from .dispatch import Outcome
from .engine import TransitionNotAllowed
from .models import (
    OPEN_RUN_STATES,
    Delegation,
    Event,
    Heartbeat,
    RunState,
    ServiceKind,
    Status,
    StepRun,
    WorkflowDefinition,
    WorkflowInstance,
)

log = logging.getLogger(__name__)

__all__ = ["TransitionNotAllowed", "InvalidPayload", "IdempotencyConflict"]


class InvalidPayload(Exception):
    """The payload does not satisfy the workflow's `input` schema (API: 422)."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


class IdempotencyConflict(Exception):
    """The same Idempotency-Key came with another body (API: 422)."""


@dataclass(frozen=True, slots=True)
class Claimed:
    """A step run this worker holds, with what executing it needs."""

    run: StepRun
    instance: WorkflowInstance


# --- Starting ------------------------------------------------------------------------------


def start_instance(
    *,
    definition: WorkflowDefinition,
    payload: Mapping[str, Any],
    idempotency_key: str | None = None,
    started_by: str = "",
) -> tuple[WorkflowInstance, bool]:
    """Start an instance on `definition`; with a known idempotency key, return the earlier one."""
    digest = _request_digest(definition.key, payload)
    if idempotency_key:
        earlier = _instance_for_key(idempotency_key, digest)
        if earlier:
            return earlier, False
    _check_payload(definition, payload)
    try:
        with transaction.atomic():
            instance = _create_instance(definition, payload, idempotency_key, digest, started_by)
    except IntegrityError:
        # Two requests with one key raced: the other committed first.
        if idempotency_key and (earlier := _instance_for_key(idempotency_key, digest)):
            return earlier, False
        raise
    return instance, True


def _create_instance(definition, payload, idempotency_key, digest, started_by) -> WorkflowInstance:
    spec = definition.spec
    move = engine.start(spec)
    instance = WorkflowInstance.objects.create(
        definition=definition,
        payload=dict(payload),
        current_step=move.step,
        idempotency_key=idempotency_key or None,
        request_digest=digest,
        started_by=started_by,
    )
    _open_run(instance, move.step, now=instance.created_at)
    return instance


def _request_digest(key: str, payload: Mapping[str, Any]) -> str:
    body = json.dumps([key, payload], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def _instance_for_key(key: str, digest: str) -> WorkflowInstance | None:
    earlier = WorkflowInstance.objects.filter(idempotency_key=key).first()
    if earlier and earlier.request_digest != digest:
        raise IdempotencyConflict(
            "this Idempotency-Key was already used with a different body; use a new key"
        )
    return earlier


def _check_payload(definition: WorkflowDefinition, payload: Mapping[str, Any]) -> None:
    validator = specs.payload_validator(definition.pk)
    if validator is None:
        return
    errors = sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
    if errors:
        raise InvalidPayload([_schema_error(e) for e in errors])


def _schema_error(error) -> str:
    where = "/".join(str(part) for part in error.absolute_path)
    return f"payload/{where}: {error.message}" if where else f"payload: {error.message}"


# --- Opening a step run --------------------------------------------------------------------


def _open_run(
    instance: WorkflowInstance, step_id: str, *, now: datetime, inline: bool = False
) -> StepRun:
    """Create the run of `step_id`: a task for a person, or a dispatch (now, or inline)."""
    step = instance.spec.step(step_id)
    service = specs.get_service(step.service)
    due = due_time(step.timeout, now)
    run = StepRun(instance=instance, step_id=step_id, due_at=due, created_at=now)
    delegated = None
    if service.kind == ServiceKind.HUMAN:
        run.state, run.started_at = RunState.WAITING, now
        delegated = _assign(run, step.assignee or f"group:{service.group}", now=now)
        run.wake_at = next_task_wake(run, window_start=now)
    elif inline:
        run.state, run.attempts, run.started_at = RunState.RUNNING, 1, now
        run.wake_at = _earliest(now + _lease(service), due)
    else:
        run.state, run.wake_at = RunState.QUEUED, _earliest(now + _redelivery(), due)
        queue.enqueue_run(run.id, 0)
    run.save(force_insert=True)
    if delegated:
        _event(instance, run, Event.Type.REASSIGNED, to=delegated[1], reason="out of office",
               **{"from": delegated[0]})
    if run.state == RunState.WAITING:
        notifications.task_assigned(run, kind="assigned")
    return run


def due_time(timeout: Duration | None, now: datetime) -> datetime | None:
    """When a step with this time-out falls due, on the business calendar for working time."""
    if timeout is None:
        return None
    if timeout.working:
        return working_time.add_working_seconds(now, timeout.seconds, specs.get_calendar())
    return now + timedelta(seconds=timeout.seconds)


def _earliest(moment: datetime, due: datetime | None) -> datetime:
    return min(moment, due) if due else moment


def _lease(service) -> timedelta:
    """How long a claim holds: longer than a worker may run one task (settings explain)."""
    return timedelta(seconds=settings.HMS_STEP_LEASE_SECONDS)


def _redelivery() -> timedelta:
    return timedelta(seconds=settings.HMS_REDELIVERY_SECONDS)


# --- Running automated steps ---------------------------------------------------------------


def claim_run(*, run_id: UUID, attempts: int) -> Claimed | None:
    """Take a queued run for this worker; None when another worker has it or it moved on."""
    now = timezone.now()
    run = StepRun.objects.select_related("instance").filter(pk=run_id).first()
    if run is None:
        return None
    lease = _lease(specs.get_service(run.instance.spec.step(run.step_id).service))
    taken = StepRun.objects.filter(pk=run_id, state=RunState.QUEUED, attempts=attempts).update(
        state=RunState.RUNNING,
        attempts=F("attempts") + 1,
        started_at=run.started_at or now,
        wake_at=_earliest(now + lease, run.due_at),
    )
    if not taken:
        return None
    run.state, run.attempts = RunState.RUNNING, attempts + 1
    return Claimed(run=run, instance=run.instance)


def record_outcome(*, claimed: Claimed, outcome: Outcome, inline: bool = True) -> Claimed | None:
    """Apply one dispatch's outcome; return the next run when it should run inline here."""
    run, instance = claimed.run, claimed.instance
    now = timezone.now()
    with transaction.atomic():
        match outcome.kind:
            case "done":
                return _finish(run, instance, outcome.result, outcome.data, now=now, inline=inline)
            case "accepted":
                _guarded(run, RunState.RUNNING, state=RunState.WAITING, wake_at=run.due_at)
            case "retry":
                _schedule_retry(run, instance, outcome, now=now)
            case _:
                _fail_step(run, instance, outcome.error, now=now, expect=RunState.RUNNING)
    return None


def _schedule_retry(run: StepRun, instance: WorkflowInstance, outcome: Outcome, *, now) -> None:
    step = instance.spec.step(run.step_id)
    delay = engine.retry_delay(
        step.retry, run.attempts, retry_after=outcome.retry_after, jitter=specs.jitter
    )
    if delay is None:
        error = f"{outcome.error} (gave up after {run.attempts} attempts)"
        _fail_step(run, instance, error, now=now, expect=RunState.RUNNING)
        return
    wake = _earliest(now + timedelta(seconds=delay), run.due_at)
    _guarded(run, RunState.RUNNING, state=RunState.QUEUED, wake_at=wake, error=outcome.error)
    _event(instance, run, Event.Type.RETRY_SCHEDULED, attempt=run.attempts, error=outcome.error,
           retry_at=wake.isoformat(), delay_seconds=round(delay, 3))


def _seen(run: StepRun) -> dict[str, Any]:
    """What a guarded update checks is unchanged (see _guarded)."""
    return {
        "attempts": run.attempts,
        "assignee_group_id": run.assignee_group_id,
        "assignee_user_id": run.assignee_user_id,
        "escalation_level": run.escalation_level,
        "claimed_by_id": run.claimed_by_id,
    }


def _guarded(run: StepRun, expect: str, *, seen: dict[str, Any] | None = None, **changes) -> None:
    """Update `run` only if it is still as the caller saw it; else it moved on.

    "As seen" is the state and attempt, and for tasks the assignee, level and claimant, so
    a person's decision cannot land on a task escalated or reassigned away from them
    between their permission check and their write.
    """
    changed = StepRun.objects.filter(pk=run.pk, state=expect, **(seen or _seen(run))).update(
        **changes
    )
    if not changed:
        raise TransitionNotAllowed(f"step '{run.step_id}' has moved on")
    for name, value in changes.items():
        setattr(run, name, value)


def _finish(
    run, instance, result: str, data, *, now, inline: bool, actor: str = "",
    state: str = RunState.SUCCEEDED, comment: str = "",
) -> Claimed | None:
    """Close `run` with `result`, route the instance, and open the next step's run."""
    context = {**instance.context, run.step_id: data or {}}
    move = engine.advance(
        instance.spec, run.step_id, result, payload=instance.payload, context=context
    )
    _move_instance(instance, run.step_id, move, context=context, now=now)
    _guarded(
        run, run.state, state=state, result=result, output=data or {},
        ended_at=now, wake_at=None, completed_by=actor, comment=comment,
    )
    if move.status != Status.RUNNING:
        return None
    next_inline = inline and _is_python(instance, move.step)
    next_run = _open_run(instance, move.step, now=now, inline=next_inline)
    return Claimed(run=next_run, instance=instance) if next_inline else None


def _is_python(instance: WorkflowInstance, step_id: str) -> bool:
    return specs.get_service(instance.spec.step(step_id).service).kind == ServiceKind.PYTHON


def _move_instance(instance, from_step: str, move: engine.Move, *, context=None, now) -> None:
    """Set the instance's status and step, guarded by the step it is expected to be at."""
    changes: dict[str, Any] = {"status": move.status, "current_step": move.step or "",
                               "updated_at": now}
    if context is not None:
        changes["context"] = context
    if move.status != Status.RUNNING:
        changes["ended_at"] = now
    if move.status == Status.FAILED:
        changes["error"] = {"step": from_step, "detail": move.error or "the step failed"}
    changed = WorkflowInstance.objects.filter(
        pk=instance.pk, status=Status.RUNNING, current_step=from_step
    ).update(**changes)
    if not changed:
        raise TransitionNotAllowed(f"{instance.case_number} is no longer at step '{from_step}'")
    for name, value in changes.items():
        setattr(instance, name, value)
    if move.status in notifications.APPLICANT_KINDS:
        notifications.applicant_update(instance, kind=move.status)


def _fail_step(run, instance, error: str, *, now, expect: str) -> None:
    """The step failed for good: the run and the instance become `failed`, with the error."""
    _move_instance(instance, run.step_id, engine.Move(Status.FAILED, error=error), now=now)
    _guarded(run, expect, state=RunState.FAILED, error=error, ended_at=now, wake_at=None)


def _event(
    instance, run, type_: str, *, step: str = "", actor: str = "", result: str = "", **detail
) -> Event:
    return Event.objects.create(
        instance=instance, run=run, type=type_, step=step or (run.step_id if run else ""),
        actor=actor, result=result, detail=detail,
    )


# --- Answers from people and services ------------------------------------------------------


def complete_task(
    *,
    run_id: UUID,
    result: str,
    data: Mapping[str, Any] | None = None,
    actor: str = "",
    comment: str = "",
) -> WorkflowInstance:
    """A person's or a service's answer to a waiting run (human task or HTTP 202 callback)."""
    now = timezone.now()
    run = StepRun.objects.select_related("instance").get(pk=run_id)
    instance = run.instance
    try:
        with transaction.atomic():
            if run.state not in (RunState.WAITING,):
                raise TransitionNotAllowed(_why_not_open(run))
            _finish(run, instance, result, dict(data or {}), now=now, inline=False, actor=actor,
                    comment=comment)
    except TransitionNotAllowed as refused:
        record_late_answer(run=run, result=result, actor=actor, reason=str(refused))
        raise
    return instance


def _why_not_open(run: StepRun) -> str:
    if run.state == RunState.SUCCEEDED:
        return f"task {run.pk} was already completed with '{run.result}'"
    if run.is_open:
        return f"task {run.pk} is not waiting for an answer (it is {run.state})"
    return f"task {run.pk} is closed ({run.state})"


def record_late_answer(*, run: StepRun, result: str, actor: str, reason: str) -> None:
    """Write down, in its own transaction, an answer that came too late or twice."""
    with transaction.atomic():
        _event(run.instance, run, Event.Type.LATE_CALLBACK, actor=actor, result=result,
               reason=reason)


# --- Operators -----------------------------------------------------------------------------


def cancel_instance(*, instance_id: int, reason: str, actor: str = "") -> WorkflowInstance:
    """End a running instance as `cancelled`, closing its open step run."""
    now = timezone.now()
    with transaction.atomic():
        instance = WorkflowInstance.objects.select_for_update().get(pk=instance_id)
        if instance.is_finished:
            raise TransitionNotAllowed(f"{instance.case_number} has already ended ({instance.status})")
        step = instance.current_step
        _move_instance(instance, step, engine.Move(Status.CANCELLED), now=now)
        StepRun.objects.filter(instance=instance, state__in=OPEN_RUN_STATES).update(
            state=RunState.CANCELLED, ended_at=now, wake_at=None
        )
        _event(instance, None, Event.Type.CANCELLED, actor=actor, reason=reason, step=step)
    return instance


def retry_instance(*, instance_id: int, actor: str = "") -> WorkflowInstance:
    """Resume a failed instance at its failed step with a fresh run."""
    now = timezone.now()
    with transaction.atomic():
        instance = WorkflowInstance.objects.select_for_update().get(pk=instance_id)
        step_id = (instance.error or {}).get("step", "")
        if instance.status != Status.FAILED or not step_id:
            raise TransitionNotAllowed(
                f"{instance.case_number} is {instance.status}; only a failed instance can be retried"
            )
        WorkflowInstance.objects.filter(pk=instance.pk).update(
            status=Status.RUNNING, current_step=step_id, error=None, ended_at=None, updated_at=now
        )
        instance.status, instance.current_step, instance.error = Status.RUNNING, step_id, None
        instance.ended_at = None
        run = _open_run(instance, step_id, now=now)
        _event(instance, run, Event.Type.RETRIED, actor=actor)
    return instance


# --- Timers: backoff over, lease expired, deadline passed ----------------------------------


def process_due(*, now: datetime | None = None, limit: int = 200) -> int:
    """Act on every open run whose wake_at has passed; returns how many were acted on.

    The timer thread of every qcluster worker, the scheduled sweep and `escalate_overdue`
    all call this. Each run is handled in its own transaction under the instance's row lock
    (skipped when another process holds it), and each change is guarded by the state it
    expects, so two sweeps racing each other or a completion act once.
    """
    now = now or timezone.now()
    due = StepRun.objects.filter(state__in=OPEN_RUN_STATES, wake_at__lte=now).order_by("wake_at")
    acted = 0
    for run_id, instance_id in due.values_list("pk", "instance_id")[:limit]:
        try:
            acted += wake_run(run_id=run_id, instance_id=instance_id, now=now)
        except TransitionNotAllowed:
            continue
    return acted


def wake_run(*, run_id: UUID, instance_id: int, now: datetime) -> bool:
    """Handle one due run: re-dispatch, recover a lost worker's run, or apply its time-out."""
    with transaction.atomic():
        locked = WorkflowInstance.objects.select_for_update(skip_locked=True).filter(pk=instance_id)
        instance = locked.first()
        run = StepRun.objects.filter(pk=run_id, state__in=OPEN_RUN_STATES).first()
        if instance is None or run is None or run.wake_at is None or run.wake_at > now:
            return False
        if run.due_at and run.due_at <= now:
            _time_out(run, instance, now=now)
        elif run.state == RunState.RUNNING:
            _guarded(run, RunState.RUNNING, state=RunState.QUEUED, wake_at=now + _redelivery())
            _event(instance, run, Event.Type.REDELIVERED, attempt=run.attempts)
            queue.enqueue_run(run.pk, run.attempts)
        elif run.state == RunState.QUEUED:
            _guarded(run, RunState.QUEUED, wake_at=_earliest(now + _redelivery(), run.due_at))
            queue.enqueue_run(run.pk, run.attempts)
        else:
            _task_timers(run, instance, now=now)
    return True


def _time_out(run: StepRun, instance: WorkflowInstance, *, now: datetime) -> None:
    """The step's time-out passed with the step still open: apply its `onTimeout`."""
    step = instance.spec.step(run.step_id)
    service = specs.get_service(step.service)
    is_task = run.state == RunState.WAITING and (run.assignee_group_id or run.assignee_user_id)
    action = engine.on_timeout(
        step,
        service_kind=ServiceKind.HUMAN if is_task else service.kind,
        backup_group=service.backup_group,
        level=run.escalation_level,
    )
    limit = step.timeout.text if step.timeout else ""
    _event(instance, run, Event.Type.TIMED_OUT, action=action.kind, timeout=limit)
    match action.kind:
        case "fail":
            _fail_step(run, instance, f"no answer within {limit}", now=now, expect=run.state)
        case "skip":
            _finish(run, instance, "timeout", {}, now=now, inline=False, state=RunState.SKIPPED)
        case "retry":
            _retry_after_timeout(run, instance, step, is_task=bool(is_task), now=now)
        case "escalate":
            _escalate(run, instance, step, action, now=now)


def _retry_after_timeout(run, instance, step, *, is_task: bool, now: datetime) -> None:
    due = due_time(step.timeout, now)
    if is_task:
        _guarded(run, run.state, due_at=due, wake_at=due)
        _event(instance, run, Event.Type.REMINDED, due_at=due.isoformat() if due else None)
        return
    if engine.retry_delay(step.retry, run.attempts) is None:
        error = f"no answer within {step.timeout.text}, {run.attempts} attempts made"
        _fail_step(run, instance, error, now=now, expect=run.state)
        return
    _guarded(run, run.state, state=RunState.QUEUED, due_at=due, wake_at=now + _redelivery())
    queue.enqueue_run(run.pk, run.attempts)


def _escalate(run, instance, step, action: engine.TimeoutAction, *, now: datetime) -> None:
    """Hand the task to the next level of the ladder, or to the supervisors when it ran out.

    A level naming a person who may not decide (the applicant, or who did the previous
    step) is passed over: separation of duties holds through escalation too.
    """
    service = specs.get_service(step.service)
    seen = _seen(run)
    skipped = []
    while action.assignee and _conflicts(run, action.assignee):
        skipped.append(action.assignee)
        action = engine.on_timeout(step, service_kind=ServiceKind.HUMAN,
                                   backup_group=service.backup_group, level=action.level)
    assignee = action.assignee or f"group:{settings.HMS_SUPERVISORS_GROUP}"
    run.due_at = None if action.exhausted else due_time(step.timeout, now)
    run.escalation_level, run.escalation_exhausted = action.level, action.exhausted
    _assign(run, assignee, now=now)
    run.claimed_by_id, run.claimed_at, run.reminders_sent = None, None, 0
    _guarded(
        run, run.state, seen=seen, state=RunState.WAITING, assignee_group_id=run.assignee_group_id,
        assignee_user_id=run.assignee_user_id, escalation_level=action.level,
        escalation_exhausted=action.exhausted, due_at=run.due_at, claimed_by_id=None,
        claimed_at=None, reminders_sent=0, wake_at=next_task_wake(run, window_start=now),
    )
    _event(instance, run, Event.Type.ESCALATED, level=action.level, to=assignee,
           exhausted=action.exhausted, passed_over=skipped)
    notifications.task_assigned(run, kind="escalated")
    notifications.applicant_update(instance, kind="escalated")


def _conflicts(run: StepRun, assignee: str) -> bool:
    from .assignments import conflicted_usernames

    return assignee.startswith("user:") and assignee[5:] in conflicted_usernames(run)


def _assign(run: StepRun, assignee: str, *, now: datetime) -> tuple[str, str] | None:
    """Point `run` at `assignee`; a person out of office is replaced by their deputy.

    Returns (from, to) when a delegation applied.
    """
    group_id, user_id = specs.resolve_assignee(assignee)
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


# --- Task timers: reminders and claims -----------------------------------------------------


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


def _window_start(run: StepRun) -> datetime:
    """When the task's current deadline started: its last escalation or reassignment, or its start."""
    latest = (
        Event.objects.filter(run=run, type__in=[Event.Type.ESCALATED, Event.Type.REASSIGNED])
        .order_by("-pk")
        .values_list("created_at", flat=True)
        .first()
    )
    return latest or run.started_at or run.created_at


def _task_timers(run: StepRun, instance: WorkflowInstance, *, now: datetime) -> None:
    """A waiting task's wake-up before its deadline: release a stale claim, send a reminder."""
    start = _window_start(run)
    stale = timedelta(seconds=settings.HMS_CLAIM_RELEASE_SECONDS)
    if run.claimed_at and run.claimed_at + stale <= now:
        release_claim(run, actor="system", now=now, reason="claim untouched for too long")
        return
    fractions = settings.HMS_REMINDER_FRACTIONS
    if run.due_at and run.reminders_sent < len(fractions):
        moment = start + (run.due_at - start) * fractions[run.reminders_sent]
        if moment <= now:
            run.reminders_sent += 1
            _guarded(run, run.state, reminders_sent=run.reminders_sent,
                     wake_at=next_task_wake(run, window_start=start))
            _event(instance, run, Event.Type.REMINDED, due_at=run.due_at.isoformat())
            notifications.task_assigned(run, kind="reminder")
            return
    _guarded(run, run.state, wake_at=next_task_wake(run, window_start=start))


def reschedule_task(run: StepRun, *, now: datetime) -> None:
    """Recompute a waiting task's wake-up after a claim (its stale-claim moment may be sooner)."""
    _guarded(run, run.state, wake_at=next_task_wake(run, window_start=_window_start(run)))


def release_claim(run: StepRun, *, actor: str, now: datetime, reason: str = "") -> None:
    """Give a claimed task back to its group."""
    seen = _seen(run)
    run.claimed_by_id, run.claimed_at = None, None
    _guarded(run, RunState.WAITING, seen=seen, claimed_by_id=None, claimed_at=None,
             wake_at=next_task_wake(run, window_start=_window_start(run)))
    _event(run.instance, run, Event.Type.RELEASED, actor=actor, reason=reason)


def reassign(run: StepRun, *, to: str, reason: str, actor: str, now: datetime) -> None:
    """Point a waiting task at another group or person, recording who, from whom, to whom, why."""
    before, seen = _assignee_label(run), _seen(run)
    _assign(run, to, now=now)
    run.claimed_by_id, run.claimed_at, run.reminders_sent = None, None, 0
    _guarded(
        run, RunState.WAITING, seen=seen, assignee_group_id=run.assignee_group_id,
        assignee_user_id=run.assignee_user_id, claimed_by_id=None, claimed_at=None,
        reminders_sent=0, wake_at=next_task_wake(run, window_start=now),
    )
    _event(run.instance, run, Event.Type.REASSIGNED, actor=actor, to=to, reason=reason,
           **{"from": before})


def _assignee_label(run: StepRun) -> str:
    if run.assignee_user_id:
        return "user:" + run.assignee_user.get_username()
    if run.assignee_group_id:
        return "group:" + run.assignee_group.name
    return ""


# --- Heartbeats ----------------------------------------------------------------------------

_last_beats: dict[str, float] = {}


def beat(name: str, *, every: float = 10.0) -> None:
    """Record that periodic job `name` is alive (at most once per `every` seconds per process)."""
    now = time.monotonic()
    if now - _last_beats.get(name, float("-inf")) < every:
        return
    _last_beats[name] = now
    Heartbeat.objects.update_or_create(name=name, defaults={"last_tick": timezone.now()})
