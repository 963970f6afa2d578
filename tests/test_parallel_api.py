"""The status API of parallel instances and sub-workflows: currentSteps, currentTasks, branch,
childInstanceId, parentInstanceId (each answer checked against the OpenAPI document)."""

import json

from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import committed, make_definition, make_service, make_token, start
from tests.test_api import ApiCase, iso
from tests.test_query_budget import data_statements
from workflows_app import runtime
from workflows_app.models import RunState, StepRun, WorkflowInstance
from workflows_app.web import rendered

INSPECTION = {"id": "site-inspection", "steps": [{"id": "visit", "service": "approvalSvc"}]}
PERMIT = {
    "id": "permit",
    "public": True,
    "steps": [
        {"id": "validate", "service": "okSvc"},
        {
            "id": "reviews",
            "title": "Specialist reviews",
            "parallel": [
                {"id": "zoning", "steps": [{"id": "zoning-review", "service": "approvalSvc"}]},
                {
                    "id": "fire",
                    "steps": [
                        {"id": "fire-review", "service": "approvalSvc"},
                        {"id": "inspection", "workflow": "site-inspection"},
                    ],
                },
            ],
        },
        {"id": "notify", "service": "okSvc"},
    ],
}


def status_url(instance) -> str:
    return f"/api/workflows/{instance.uuid}/status"


def run_of(instance, step_id) -> StepRun:
    return StepRun.objects.filter(instance=instance, step_id=step_id).latest("created_at")


class ParallelStatusTests(ApiCase):
    def setUp(self):
        make_service("okSvc")
        make_service("approvalSvc", "human")
        make_definition(INSPECTION)
        self.definition = make_definition(PERMIT)
        self.token = make_token()
        self.instance = start(self.definition, {"applicant": "Ada"})

    def task(self, run):
        return {
            "taskId": str(run.pk),
            "step": run.step_id,
            "state": "waiting",
            "assignee": "group:plan-reviewers",
            "escalationLevel": 0,
            "dueAt": None,
            "attempts": 0,
        }

    def test_the_status_of_an_instance_with_two_open_branches(self):
        zoning, fire = run_of(self.instance, "zoning-review"), run_of(self.instance, "fire-review")
        validate, reviews = run_of(self.instance, "validate"), run_of(self.instance, "reviews")
        document = self.get(status_url(self.instance), token=self.token).json()
        print(json.dumps(document, indent=2))  # the closing note shows it (pytest -s)
        assert document["status"] == "running"
        assert document["currentStep"] == "zoning-review"
        assert document["currentSteps"] == ["zoning-review", "fire-review"]
        assert document["currentTask"] == self.task(zoning)
        assert document["currentTasks"] == [self.task(zoning), self.task(fire)]
        assert "parentInstanceId" not in document
        assert [(s["id"], s["state"], s.get("branch")) for s in document["steps"]] == [
            ("validate", "done", None),
            ("reviews", "current", None),
            ("zoning-review", "waiting", "zoning"),
            ("fire-review", "waiting", "fire"),
            ("inspection", "upcoming", "fire"),
            ("notify", "upcoming", None),
        ]
        assert document["steps"][4]["childInstanceId"] is None
        assert document["steps"][1] == {
            "id": "reviews",
            "title": "Specialist reviews",
            "state": "current",
            "startedAt": iso(reviews.started_at),
            "endedAt": None,
            "dueAt": None,
            "result": None,
        }
        assert [entry["step"] for entry in document["history"]] == ["validate"]
        assert document["history"][0]["taskId"] == str(validate.pk)

    def test_a_finished_branch_step_says_its_branch_in_the_history(self):
        zoning = run_of(self.instance, "zoning-review")
        committed(runtime.complete_task, run_id=zoning.pk, result="approved", actor="user:z")
        document = self.get(status_url(self.instance), token=self.token).json()
        assert document["history"][-1]["step"] == "zoning-review"
        assert document["history"][-1]["branch"] == "zoning"
        assert document["currentSteps"] == ["fire-review"]

    def test_a_sub_workflow_step_and_its_child_link_to_each_other(self):
        fire = run_of(self.instance, "fire-review")
        committed(runtime.complete_task, run_id=fire.pk, result="approved", actor="user:f")
        child = WorkflowInstance.objects.get(parent_run__instance=self.instance)
        document = self.get(status_url(self.instance), token=self.token).json()
        assert document["currentSteps"] == ["zoning-review", "inspection"]
        inspection = next(s for s in document["steps"] if s["id"] == "inspection")
        assert (inspection["state"], inspection["childInstanceId"]) == ("current", str(child.uuid))
        child_document = self.get(status_url(child), token=self.token).json()
        assert child_document["parentInstanceId"] == str(self.instance.uuid)
        assert child_document["currentSteps"] == ["visit"]

    def test_completing_the_parallel_step_itself_is_refused_with_409(self):
        reviews = run_of(self.instance, "reviews")
        response = self.post(
            f"/api/tasks/{reviews.pk}/complete", {"result": "ok"}, token=self.token
        )
        assert response.status_code == 409
        assert "finishes when its branches do" in response.json()["detail"]
        assert run_of(self.instance, "reviews").state == RunState.WAITING

    def test_an_anonymous_reader_sees_no_assignee_in_any_current_task(self):
        document = self.get(status_url(self.instance)).json()
        assert [sorted(task) for task in document["currentTasks"]] == [
            ["attempts", "dueAt", "escalationLevel", "state", "step", "taskId"]
        ] * 2

    def statements(self) -> list[str]:
        url = status_url(self.instance)
        self.get(url, token=self.token)  # warm caches
        rendered.clear()  # count a revision this process has not rendered yet
        with CaptureQueriesContext(connection) as queries:
            response = self.get(url, token=self.token)
        assert response.status_code == 200
        return data_statements(queries)

    def test_the_status_of_a_parallel_instance_takes_as_many_statements_as_the_seeds(self):
        zoning = run_of(self.instance, "zoning-review")
        committed(runtime.complete_task, run_id=zoning.pk, result="approved", actor="user:z")
        # The revision with the token, the instance with its runs, its events, its documents.
        assert len(self.statements()) == 4
        fire = run_of(self.instance, "fire-review")
        committed(runtime.complete_task, run_id=fire.pk, result="approved", actor="user:f")
        # Once a workflow step has run: one more, its child (for childInstanceId).
        assert len(self.statements()) == 5
