"""Who may act on a human task: assignees, group members, claimants, supervisors.

A task is a waiting StepRun with an assignee group or user. Members of the group (or the
user) may act, unless someone else has claimed it; backups become members of the assigned
group when the task is escalated to them. Separation of duties: the applicant (payload
`applicantUsername`) and whoever completed the previous step may not act on it. Usernames are
compared in one normalised form (models.username_key: NFKC, case-folded, stripped), so
" Reviewer" in a payload is the account `reviewer`.
"""

from django.contrib.auth.models import AbstractBaseUser

from ..definitions import MAIN_LANE
from ..models import RunState, StepRun, username_key
from ..queries import catalog

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
    step = catalog.spec_of(run.instance).step(run.step_id)
    return list(dict.fromkeys([*DEFAULT_RESULTS, *step.on]))


def refusal(user, run: StepRun) -> str | None:
    """Why `user` may not act on `run`, or None when they may."""
    if not run.is_task:
        return "this task is not waiting for a person"
    if run.claimed_by_id and run.claimed_by_id != user.pk:
        return f"{run.claimed_by.get_username()} has claimed this task"
    in_group = run.assignee_group_id and user.groups.filter(pk=run.assignee_group_id).exists()
    if run.assignee_user_id != user.pk and not in_group:
        return "this task is assigned to someone else"
    if username_key(user.get_username()) in conflicted_usernames(run):
        return "you may not decide on this application (separation of duties)"
    return None


def may_act(user, run: StepRun) -> bool:
    return user.is_authenticated and user.is_active and refusal(user, run) is None


def conflicted_usernames(run: StepRun) -> set[str]:
    """The applicant, and whoever completed the step before this one, of the same instance,
    as username keys (models.username_key): in a branch, the step before it in its own branch
    or before the branches began (a decision in a parallel branch is no step before this one)."""
    names = set()
    applicant = run.instance.payload.get(APPLICANT_FIELD)
    if isinstance(applicant, str) and applicant.strip():
        names.add(username_key(applicant))
    previous = (
        StepRun.objects.filter(
            instance_id=run.instance_id, state=RunState.SUCCEEDED, lane__in=_lanes_up(run)
        )
        .exclude(pk=run.pk)
        .order_by("-ended_at")
        .values_list("completed_by", flat=True)
        .first()
    )
    if previous and previous.startswith("user:"):
        names.add(username_key(previous.removeprefix("user:")))
    return names


def _lanes_up(run: StepRun) -> list[str]:
    """The run's lane and the lanes its branch sits in, up to the main lane."""
    spec, lane = catalog.spec_of(run.instance), run.lane
    lanes = [lane]
    while lane != MAIN_LANE:
        lane = spec.lane_of(spec.fork_of(lane))
        lanes.append(lane)
    return lanes
