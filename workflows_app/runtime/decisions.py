"""What people do to human tasks: claim, release, decide, reassign; each checked, then written.

Each change is a guarded update in one transaction with its Event; a decision goes through
answers.complete_task like every other answer.
"""

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
    if not (user.is_authenticated and user.is_active):
        raise NotAllowed("log in to act on tasks")
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


def decide_task(*, run_id, user, result: str, reason: str = "", note: str = "") -> WorkflowInstance:
    """A person's decision on a task: checked, then completed like any other answer.

    `reason` is shown to the applicant (required to refuse), `note` only to staff.
    """
    run = _task(run_id)
    if run.state == RunState.SUCCEEDED:
        by = run.completed_by.removeprefix("user:") or "someone"
        raise TransitionNotAllowed(f"this task was already completed ('{run.result}' by {by})")
    if run.state != RunState.WAITING:
        raise TransitionNotAllowed(f"this task is closed ({run.get_state_display().lower()})")
    _check(user, run)
    if result not in allowed_results(run):
        raise NotAllowed(
            f"'{result}' is not an outcome of this step; use one of "
            + ", ".join(allowed_results(run))
        )
    return complete_task(
        run_id=run.pk, result=result, actor=actor_of(user), reason=reason, note=note, seen=run
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
