"""Staff and public pages with parallel branches: the inbox names a task's branch, a task that
another branch's refusal cancelled says why, the board counts branch steps, the tracker nests
branches and links a sub-workflow both ways, the deadline stays paused while any request to
the applicant waits."""

from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import committed, make_definition, make_service, make_user, start
from tests.requests_to_applicant import SITE_PLAN_FORM
from workflows_app import runtime
from workflows_app.models import RunState, StepRun, WorkflowInstance
from workflows_app.queries import stats

PERMIT = {
    "id": "permit",
    "name": "Building permit",
    "public": True,
    "steps": [
        {"id": "validate", "service": "okSvc"},
        {
            "id": "reviews",
            "title": "Specialist reviews",
            "parallel": [
                {
                    "id": "zoning",
                    "title": "Zoning",
                    "steps": [
                        {
                            "id": "zoning-review",
                            "service": "approvalSvc",
                            "title": "A planner checks the zoning rules",
                        }
                    ],
                },
                {
                    "id": "fire",
                    "title": "Fire safety",
                    "steps": [
                        {
                            "id": "fire-review",
                            "service": "approvalSvc",
                            "title": "A fire officer checks the escape routes",
                        }
                    ],
                },
            ],
        },
        {"id": "notify", "service": "okSvc", "title": "We send you the decision"},
    ],
}


def task(instance, step_id) -> StepRun:
    return StepRun.objects.get(instance=instance, step_id=step_id, state=RunState.WAITING)


class PagesTestCase(TestCase):
    def setUp(self):
        make_service("okSvc")
        make_service("approvalSvc", "human")
        self.definition = make_definition(PERMIT)
        self.reviewer = make_user("rita", "plan-reviewers")
        self.instance = start(self.definition, {"applicant": "Ada"})


class InboxTests(PagesTestCase):
    def test_the_inbox_says_which_branch_each_task_belongs_to(self):
        self.client.force_login(self.reviewer)
        page = self.client.get("/tasks/").content.decode()
        assert "A planner checks the zoning rules" in page
        assert "Branch: Zoning (Specialist reviews)" in page
        assert "Branch: Fire safety (Specialist reviews)" in page

    def test_a_task_cancelled_by_a_refusal_in_another_branch_leaves_the_inbox_and_says_why(self):
        zoning = task(self.instance, "zoning-review")
        committed(
            runtime.complete_task,
            run_id=task(self.instance, "fire-review").pk,
            result="rejected",
            reason="The escape routes are too narrow.",
            actor="user:fire",
        )
        self.client.force_login(self.reviewer)
        inbox = self.client.get("/tasks/")
        assert self.instance.case_number not in inbox.content.decode()
        page = self.client.get(f"/tasks/{zoning.pk}/").content.decode()
        assert "This task is closed: cancelled" in page
        expected = "It is no longer needed: the application was refused at &#x27;A fire officer"
        assert expected in page


class BoardTests(PagesTestCase):
    def test_the_board_counts_the_steps_of_each_branch_not_the_parallel_step(self):
        start(self.definition, {"applicant": "Bo"})
        committed(
            runtime.complete_task,
            run_id=task(self.instance, "zoning-review").pk,
            result="approved",
            actor="user:z",
        )
        stats.clear()
        (workflow,) = [w for w in stats.board(now=timezone.now()) if w.key == "permit"]
        waiting = {step.title: step.waiting for step in workflow.steps}
        assert waiting == {
            "Validate": 0,
            "A planner checks the zoning rules": 1,
            "A fire officer checks the escape routes": 2,
            "We send you the decision": 0,
        }


class TrackerTests(PagesTestCase):
    def test_the_tracker_nests_the_branches_under_the_parallel_step(self):
        page = self.client.get(self.instance.tracker_url).content.decode()
        page = page[page.index('class="steps-title"') :]
        assert page.index("Specialist reviews") < page.index('id="branch-zoning"')
        assert page.index('id="branch-zoning"') < page.index("A planner checks the zoning rules")
        assert page.index('id="branch-fire"') < page.index("A fire officer checks the escape")
        assert page.index("A fire officer checks the escape") < page.index("We send you the")

    def test_the_tracker_of_a_parallel_instance_takes_a_fixed_number_of_queries(self):
        other = start(self.definition, {"applicant": "Bo"})
        committed(
            runtime.complete_task,
            run_id=task(other, "zoning-review").pk,
            result="approved",
            actor="user:z",
        )
        counts = []
        for instance in (self.instance, other):  # two open branches; one
            self.client.get(instance.tracker_url)  # warm the caches (typical durations)
            with CaptureQueriesContext(connection) as queries:
                self.client.get(instance.tracker_url)
            counts.append(len(queries))
        # The instance with its runs (one join); the children of workflow steps only when
        # the workflow has one (this one has not).
        assert counts == [1, 1]


class SubWorkflowTrackerTests(TestCase):
    def test_the_parent_links_to_the_child_and_the_child_back(self):
        make_service("okSvc")
        make_service("approvalSvc", "human")
        make_definition(
            {
                "id": "site-inspection",
                "name": "Site inspection",
                "steps": [{"id": "visit", "service": "approvalSvc"}],
            }
        )
        definition = make_definition(
            {
                "id": "permit-visit",
                "steps": [
                    {"id": "inspection", "workflow": "site-inspection"},
                    {"id": "notify", "service": "okSvc"},
                ],
            }
        )
        parent = start(definition)
        child = WorkflowInstance.objects.get(parent_run__instance=parent)
        page = self.client.get(parent.tracker_url).content.decode()
        assert f'href="{child.tracker_url}"' in page
        assert f"Follow this part of your application: {child.case_number}" in page
        child_page = self.client.get(child.tracker_url).content.decode()
        assert f'href="{parent.tracker_url}"' in child_page
        assert f"application {parent.case_number}" in child_page


class DeadlineTests(TestCase):
    def test_the_deadline_stays_paused_while_a_request_waits_in_any_branch(self):
        make_service("okSvc")
        make_service("reviewSvc", "human")
        make_service("sitePlanSvc", "applicant", form=SITE_PLAN_FORM)
        definition = make_definition(
            {
                "id": "permit-paused",
                "deadline": "30d",
                "steps": [
                    {"id": "check", "service": "okSvc"},
                    {
                        "id": "both",
                        "parallel": [
                            {"id": "plan", "steps": [{"id": "upload", "service": "sitePlanSvc"}]},
                            {"id": "desk", "steps": [{"id": "review", "service": "reviewSvc"}]},
                        ],
                    },
                ],
            }
        )
        instance = start(definition, {"email": "ada@example.org"})
        instance.refresh_from_db()
        paused_at, due = instance.awaiting_applicant_since, instance.deadline_at
        assert paused_at is not None
        committed(
            runtime.complete_task,
            run_id=task(instance, "review").pk,
            result="approved",
            actor="user:r",
        )
        instance.refresh_from_db()
        assert (instance.awaiting_applicant_since, instance.deadline_at) == (paused_at, due)
        committed(runtime.complete_task, run_id=task(instance, "upload").pk, result="submitted")
        instance.refresh_from_db()
        assert instance.awaiting_applicant_since is None
        assert instance.deadline_at > due  # moved later by the time waited
        assert instance.status == "completed"


class SeparationOfDutiesTests(PagesTestCase):
    def test_one_reviewer_may_decide_both_parallel_reviews(self):
        both = make_user("bea", "plan-reviewers")
        zoning, fire = task(self.instance, "zoning-review"), task(self.instance, "fire-review")
        committed(runtime.decide_task, run_id=zoning.pk, user=both, result="approved")
        # fire-review comes after validate, not after the zoning branch's decision.
        committed(runtime.decide_task, run_id=fire.pk, user=both, result="approved")
        self.instance.refresh_from_db()
        assert self.instance.status == "completed"
