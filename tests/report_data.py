"""A small known data set for the supervisors' reports (tests/test_reports.py, the browser
tests): six decisions, six ended cases, four running ones, with hand-computed figures."""

from datetime import timedelta

from django.contrib.auth.models import Group
from django.utils import timezone

from tests.factories import make_definition, make_service, make_user
from workflows_app.models import RunState, StepRun, WorkflowInstance

H = timedelta(hours=1)


def report_workflows():
    make_service("okSvc")
    make_service("approvalSvc", "human")
    make_service("licenceSvc", "human", group="licence-team")
    permit = make_definition(
        {
            "id": "permit",
            "deadline": "30d",
            "steps": [{"id": "approve", "service": "approvalSvc", "timeout": "48h"}],
        }
    )
    licence = make_definition(
        {"id": "licence", "steps": [{"id": "check", "service": "licenceSvc"}]}
    )
    return permit, licence


def _case(definition, *, status, created, ended=None, deadline=None) -> WorkflowInstance:
    instance = WorkflowInstance.objects.create(
        definition=definition,
        status=status,
        current_step="" if ended else definition.source["steps"][0]["id"],
        payload={"applicant": "Test"},
    )
    WorkflowInstance.objects.filter(pk=instance.pk).update(
        created_at=created, ended_at=ended, deadline_at=deadline
    )
    return instance


def _decision(instance, step, *, group, by, took, due=None, level=0, started=None):
    run = StepRun.objects.create(
        instance=instance,
        step_id=step,
        state=RunState.SUCCEEDED,
        result="approved",
        assignee_group=Group.objects.get_or_create(name=group)[0],
        completed_by=f"user:{by}",
        escalation_level=level,
    )
    created = started
    StepRun.objects.filter(pk=run.pk).update(
        created_at=created,
        ended_at=created + took,
        due_at=created + due if due else None,
    )
    return run


def build_report_data(now=None):
    """Decisions (all ended 10 days ago, give or take their length):

    permit/approve (48h limit): rita 1h on time; rita 3h on time; sam 50h escalated to
    backup-reviewers (late).  licence/check (no limit): rita 30 min; sam 48h.
    Cases: permit #1 completed by its deadline, #2 refused after it, #3 completed without
    one; licence #4, #5 completed (no deadline); a cancelled licence case (not a decision).
    Running: permit 12 h, 3 days and 40 days old; licence 36 h old.
    """
    now = now or timezone.now()
    permit, licence = report_workflows()
    make_user("rita", "plan-reviewers", is_staff=True)
    make_user("sam", "plan-reviewers", is_staff=True)
    start = now - timedelta(days=10)
    rows = [
        (permit, "approve", "plan-reviewers", "rita", 1 * H, 48 * H, 0, "completed", 1),
        (permit, "approve", "plan-reviewers", "rita", 3 * H, 48 * H, 0, "rejected", -1),
        (permit, "approve", "backup-reviewers", "sam", 50 * H, 48 * H, 1, "completed", None),
        (licence, "check", "licence-team", "rita", H / 2, None, 0, "completed", None),
        (licence, "check", "licence-team", "sam", 48 * H, None, 0, "completed", None),
    ]
    for definition, step, group, by, took, due, level, status, deadline in rows:
        ended = start + took
        deadline_at = ended + deadline * H if deadline else None
        case = _case(
            definition, status=status, created=start - H, ended=ended, deadline=deadline_at
        )
        _decision(case, step, group=group, by=by, took=took, due=due, level=level, started=start)
    _case(licence, status="cancelled", created=start - H, ended=start)
    for age in (12 * H, timedelta(days=3), timedelta(days=40)):
        _case(permit, status="running", created=now - age)
    _case(licence, status="running", created=now - 36 * H)
    return permit, licence


def build_busy_report_data(now=None):
    """The known set, plus a year of decisions by six reviewers (for screenshots)."""
    now = now or timezone.now()
    permit, licence = build_report_data(now)
    people = ["rita", "sam", "ana", "li", "omar", "jo"]
    for name in people[2:]:
        make_user(name, "plan-reviewers", is_staff=True)
    for n in range(120):
        definition, step = (permit, "approve") if n % 3 else (licence, "check")
        start = now - timedelta(days=12 + (n * 37) % 330, hours=n % 7)
        took = H * (1 + (n * 13) % 70)
        status = "rejected" if n % 5 == 0 else "completed"
        deadline = start + timedelta(days=2 + n % 3) if definition is permit else None
        case = _case(
            definition, status=status, created=start - H, ended=start + took, deadline=deadline
        )
        group = "backup-reviewers" if took > 48 * H and definition is permit else "plan-reviewers"
        due = 48 * H if definition is permit else None
        level = 1 if group == "backup-reviewers" else 0
        by = people[n % len(people)]
        _decision(case, step, group=group, by=by, took=took, due=due, level=level, started=start)
    for hours in (2, 5, 30, 60, 100, 200, 400, 900):
        _case(permit if hours % 3 else licence, status="running", created=now - hours * H)
    return permit, licence


def make_supervisor(username: str = "sue"):
    """A member of Supervisors holding the reports permission (a flushed test database no
    longer has the group's permissions from migration 0014)."""
    from django.contrib.auth.models import Permission

    user = make_user(username, "Supervisors", is_staff=True)
    user.groups.get(name="Supervisors").permissions.add(
        Permission.objects.get(codename="view_reports", content_type__app_label="workflows_app")
    )
    return user
