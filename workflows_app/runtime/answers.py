"""Answers to a waiting run: a person's decision or a service's callback (HTTP 202)."""

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..engine import REFUSAL, TransitionNotAllowed
from ..models import RunState, ServiceKind, StepRun, WorkflowInstance
from ..queries import catalog, progress
from . import branches
from .execution import run_after_commit
from .steps import finish_run, plan_move, record_late_answer

DECISION_TEXT_MAX = 2000  # characters of a reason or a note


class InvalidDecision(ValueError):
    """A decision's `reason` or `note` is missing or too long (API: 400; the inbox: on the field)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def check_decision(run: StepRun, result: str, *, reason: str, note: str) -> None:
    """A person's refusal needs a reason (the applicant is told it); neither text may be huge."""
    for name, text in (("reason", reason), ("note", note)):
        if len(text) > DECISION_TEXT_MAX:
            raise InvalidDecision(name, f"the {name} is longer than {DECISION_TEXT_MAX} characters")
    if result == REFUSAL and run.is_for_a_person and not reason.strip():
        raise InvalidDecision(
            "reason", "give a reason for the refusal: the applicant is told why it was refused"
        )


def complete_task(
    *,
    run_id: UUID,
    result: str,
    data: Mapping[str, Any] | None = None,
    actor: str = "",
    reason: str = "",
    note: str = "",
    seen: StepRun | None = None,
) -> WorkflowInstance:
    """A person's or a service's answer to a waiting run (human task or HTTP 202 callback).

    A person's decision carries `reason` (shown to the applicant; required with `rejected`)
    and `note` (staff only). `seen` is the run as the caller checked it (assignee, level,
    claimant): the answer lands only if the run is still so, never on a task escalated or
    reassigned in between.
    """
    now = timezone.now()
    run = seen or progress.run_with_instance(run_id)
    if run is None:
        raise StepRun.DoesNotExist(f"no step run {run_id}")
    reason, note = reason.strip(), note.strip()
    check_decision(run, result, reason=reason, note=note)
    instance = run.instance
    data = dict(data or {})
    # Routing (its CEL conditions) is worked out before the transaction takes any lock.
    # A branch's run is routed under its tree's lock (the other branches change the context).
    plans = run.is_open and not branches.in_lane(instance, run)
    planned = plan_move(instance, run.step_id, result, data) if plans else None
    try:
        with transaction.atomic():
            if why := _refusal(run):
                raise TransitionNotAllowed(why)
            claimed_runs = finish_run(
                run,
                instance,
                result,
                data,
                now=now,
                inline=settings.HMS_INLINE_PYTHON_STEPS,
                actor=actor,
                reason=reason,
                note=note,
                planned=planned,
            )
            for claimed in claimed_runs:
                run_after_commit(claimed)
    except TransitionNotAllowed as refused:
        record_late_answer(run=run, result=result, actor=actor, reason=str(refused))
        raise
    return instance


def _refusal(run: StepRun) -> str | None:
    """Why `run` takes no answer now, or None when it does."""
    kind = catalog.spec_of(run.instance).step(run.step_id).kind
    if kind == "parallel":
        return f"step '{run.step_id}' finishes when its branches do, not by an answer"
    if kind == "workflow":
        return f"step '{run.step_id}' finishes when its sub-workflow does, not by an answer"
    return None if _awaits_answer(run) else _why_not_open(run)


def _awaits_answer(run: StepRun) -> bool:
    """A task or a 202 callback is due; an HTTP run whose 202 is not recorded yet counts too."""
    if run.state == RunState.WAITING:
        return True
    service = catalog.service_of_step(catalog.spec_of(run.instance), run.step_id)
    is_http = service.kind == ServiceKind.HTTP
    return run.state == RunState.RUNNING and is_http


def _why_not_open(run: StepRun) -> str:
    if run.state == RunState.SUCCEEDED:
        return f"task {run.pk} was already completed with '{run.result}'"
    if run.is_open:
        return f"task {run.pk} is not waiting for an answer (it is {run.state})"
    if run.state == RunState.CANCELLED and run.error:
        return f"task {run.pk} was cancelled: {run.error}"
    return f"task {run.pk} is closed ({run.state})"
