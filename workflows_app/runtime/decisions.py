"""What people do to human tasks: claim, release, decide, reassign; each checked, then written.

Each change is a guarded update in one transaction with its Event; a decision goes through
answers.complete_task like every other answer.
"""

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..engine import TransitionNotAllowed
from ..models import RunState, StepRun, WorkflowInstance
from ..queries import catalog
from . import assignment, notifications
from .answers import complete_task
from .permissions import NotAllowed, actor_of, allowed_results, is_supervisor, refusal


def _task(run_id) -> StepRun:
    return StepRun.objects.select_related("instance", "claimed_by").get(pk=run_id)


def _check(user, run: StepRun) -> None:
    if not user.is_authenticated:
        raise NotAllowed("log in to act on tasks")
    if not user.is_active:
        raise NotAllowed(f"the account {user.get_username()} is not active")
    if why := refusal(user, run):
        raise NotAllowed(why)


def claim_task(*, run_id, user) -> StepRun:
    """Take a group task for yourself; exactly one of two racing claims wins."""
    run = _task(run_id)
    if run.claimed_by_id == user.pk and run.state == RunState.WAITING:
        return run
    if run.claimed_by_id and run.state == RunState.WAITING:
        raise TransitionNotAllowed(
            f"this task was already taken by {run.claimed_by.get_username()}"
        )
    _check(user, run)
    with transaction.atomic():
        assignment.claim(run, user=user, now=timezone.now())
    return run


def release_task(*, run_id, user) -> StepRun:
    """Give a claimed task back to its group."""
    run = _task(run_id)
    if run.claimed_by_id != user.pk:
        raise NotAllowed("only the person who claimed this task can release it")
    with transaction.atomic():
        assignment.release_claim(run, actor=actor_of(user), now=timezone.now())
    return run


def decide_task(
    *,
    run_id,
    user,
    result: str,
    reason: str = "",
    note: str = "",
    data: Mapping[str, Any] | None = None,
) -> WorkflowInstance:
    """A person's decision on a task: checked, then completed like any other answer.

    `reason` is shown to the applicant (required to refuse), `note` only to staff.
    """
    run = _open_task(run_id)
    _check(user, run)
    _check_outcome(run, result)
    return complete_task(
        run_id=run.pk,
        result=result,
        data=data,
        actor=actor_of(user),
        reason=reason,
        note=note,
        seen=run,
    )


def decide_task_as(
    *, run_id, actor: str, result: str, data: Mapping[str, Any], reason: str = "", note: str = ""
) -> WorkflowInstance:
    """A decision by a system that checks its people itself (an API token acting for no
    one): only the step's outcomes are checked."""
    run = _task(run_id)
    if run.state == RunState.WAITING:
        _check_outcome(run, result)
    # A closed task is refused (409) and the late answer recorded by complete_task.
    return complete_task(
        run_id=run.pk, result=result, data=data, actor=actor, reason=reason, note=note, seen=run
    )


def _open_task(run_id) -> StepRun:
    """The task, while it waits for a decision; TransitionNotAllowed (409) once it is closed."""
    run = _task(run_id)
    if run.state == RunState.SUCCEEDED:
        by = run.completed_by.removeprefix("user:") or "someone"
        raise TransitionNotAllowed(f"this task was already completed ('{run.result}' by {by})")
    if run.state != RunState.WAITING:
        raise TransitionNotAllowed(f"this task is closed ({run.get_state_display().lower()})")
    return run


def _check_outcome(run: StepRun, result: str) -> None:
    if result not in allowed_results(run):
        raise NotAllowed(
            f"'{result}' is not an outcome of this step; use one of "
            + ", ".join(allowed_results(run))
        )


def reassign_task(*, run_id, to: str, reason: str, actor) -> StepRun:
    """A supervisor hands the task to another group or person, with a reason."""
    if not is_supervisor(actor):
        raise NotAllowed("only supervisors can reassign tasks")
    if not reason or not reason.strip():
        raise ValueError("give a reason for the reassignment")
    kind, _, name = to.partition(":")
    if kind not in ("group", "user") or not name:
        raise ValueError("reassign to 'group:NAME' or 'user:USERNAME'")
    try:
        catalog.resolve_assignee(to)
    except LookupError as exc:
        raise ValueError(str(exc)) from None
    run = _task(run_id)
    if not run.is_task:
        # The guarded write below keeps the state it read: a closed task must stop here.
        state = run.get_state_display().lower()
        raise TransitionNotAllowed(f"this task is not open (it is {state}); nothing to reassign")
    with transaction.atomic():
        assignment.reassign(
            run, to=to, reason=reason.strip(), actor=actor_of(actor), now=timezone.now()
        )
    notifications.task_assigned(run, kind="reassigned")
    return run
