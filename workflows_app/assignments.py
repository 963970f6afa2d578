"""Human tasks: who may act, claiming, deciding and reassigning.

A task is a waiting StepRun with an assignee group or user. Members of the group (or the
user) may act, unless someone else has claimed it; backups become members of the assigned
group when the task is escalated to them. Separation of duties: the applicant (payload
`applicantUsername`) and whoever completed the previous step may not act on it.
Each change is a guarded update in one transaction with its Event; completing goes through
services.complete_task like every other answer.
"""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from . import notifications, services, specs
from .engine import TransitionNotAllowed
from .models import Event, RunState, StepRun, WorkflowInstance

APPLICANT_FIELD = "applicantUsername"
DEFAULT_RESULTS = ("approved", "rejected")


class NotAllowed(Exception):
    """This person may not do this to this task (views answer 403 with the message)."""


def actor_of(user: AbstractBaseUser) -> str:
    return f"user:{user.get_username()}"


def is_supervisor(user) -> bool:
    """Supervisors reassign tasks: whoever has the permission (the Supervisors group has it)."""
    return user.is_active and user.has_perm("workflows_app.reassign_task")


def allowed_results(run: StepRun) -> list[str]:
    """The outcomes a person may choose: approved, rejected, and every result named in `on`."""
    step = run.instance.spec.step(run.step_id)
    return list(dict.fromkeys([*DEFAULT_RESULTS, *step.on]))


def refusal(user, run: StepRun) -> str | None:
    """Why `user` may not act on `run`, or None when they may."""
    if run.state != RunState.WAITING or not (run.assignee_group_id or run.assignee_user_id):
        return "this task is not waiting for a person"
    if run.claimed_by_id and run.claimed_by_id != user.pk:
        return f"{run.claimed_by.get_username()} has claimed this task"
    in_group = run.assignee_group_id and user.groups.filter(pk=run.assignee_group_id).exists()
    if run.assignee_user_id != user.pk and not in_group:
        return "this task is assigned to someone else"
    if user.get_username() in conflicted_usernames(run):
        return "you may not decide on this application (separation of duties)"
    return None


def may_act(user, run: StepRun) -> bool:
    return user.is_authenticated and user.is_active and refusal(user, run) is None


def conflicted_usernames(run: StepRun) -> set[str]:
    """The applicant, and whoever completed the step before this one, of the same instance."""
    names = set()
    applicant = run.instance.payload.get(APPLICANT_FIELD)
    if isinstance(applicant, str) and applicant:
        names.add(applicant)
    previous = (
        StepRun.objects.filter(instance_id=run.instance_id, state=RunState.SUCCEEDED)
        .exclude(pk=run.pk)
        .order_by("-ended_at")
        .values_list("completed_by", flat=True)
        .first()
    )
    if previous and previous.startswith("user:"):
        names.add(previous.removeprefix("user:"))
    return names


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
    now = timezone.now()
    with transaction.atomic():
        taken = StepRun.objects.filter(
            pk=run.pk, state=RunState.WAITING, claimed_by__isnull=True
        ).update(claimed_by=user, claimed_at=now)
        if not taken:
            holder = StepRun.objects.filter(pk=run.pk).values_list(
                "claimed_by__username", flat=True
            )
            raise TransitionNotAllowed(
                f"this task was already taken by {holder.first() or 'someone'}"
            )
        run.claimed_by, run.claimed_at = user, now
        services.reschedule_task(run, now=now)
        Event.objects.create(
            instance_id=run.instance_id,
            run=run,
            type=Event.Type.CLAIMED,
            step=run.step_id,
            actor=actor_of(user),
        )
    return run


def release_task(*, run_id, user) -> StepRun:
    """Give a claimed task back to its group."""
    run = _task(run_id)
    if run.claimed_by_id != user.pk:
        raise NotAllowed("only the person who claimed this task can release it")
    with transaction.atomic():
        services.release_claim(run, actor=actor_of(user), now=timezone.now())
    return run


def decide_task(*, run_id, user, result: str, comment: str = "") -> WorkflowInstance:
    """A person's decision on a task: checked, then completed like any other answer."""
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
    data = {"comment": comment} if comment else {}
    return services.complete_task(
        run_id=run.pk, result=result, data=data, actor=actor_of(user), comment=comment, seen=run
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
        specs.resolve_assignee(to)
    except LookupError as exc:
        raise ValueError(str(exc)) from None
    run = _task(run_id)
    with transaction.atomic():
        services.reassign(
            run, to=to, reason=reason.strip(), actor=actor_of(actor), now=timezone.now()
        )
    notifications.task_assigned(run, kind="reassigned")
    return run
