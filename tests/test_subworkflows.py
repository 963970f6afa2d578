"""Sub-workflows at run time: a child instance per workflow step, linked both ways."""

from datetime import timedelta

import pytest
from django.test import TestCase

from tests.factories import committed, make_definition, make_service, run_queued, start
from workflows_app import runtime
from workflows_app.engine import TransitionNotAllowed
from workflows_app.models import Event, RunState, Status, StepRun, WorkflowInstance

INSPECTION = {
    "id": "site-inspection",
    "steps": [{"id": "inspect", "service": "approvalSvc", "on": {"rejected": "reject"}}],
}


def parent(visit=None, key="permit-visit"):
    visit = visit or {"id": "inspection", "workflow": "site-inspection"}
    return {
        "id": key,
        "steps": [
            {"id": "validate", "service": "okSvc"},
            {**visit},
            {"id": "notify", "service": "okSvc"},
        ],
    }


def child_of(instance) -> WorkflowInstance:
    return WorkflowInstance.objects.get(parent_run__instance=instance, status=Status.RUNNING)


def decide(instance, step_id, result="approved"):
    run = StepRun.objects.get(instance=instance, step_id=step_id, state=RunState.WAITING)
    reason = "The site does not match the plans." if result == "rejected" else ""
    return committed(
        runtime.complete_task, run_id=run.pk, result=result, actor="user:i", reason=reason
    )


class SubWorkflowTests(TestCase):
    def setUp(self):
        make_service("okSvc")
        make_service("approvalSvc", "human")
        make_definition(INSPECTION)
        self.definition = make_definition(parent())
        self.parent = start(self.definition, {"applicant": "Ada", "address": "1 Main St"})

    def test_the_step_starts_a_child_with_its_own_case_number_and_the_parents_payload(self):
        child = child_of(self.parent)
        run = StepRun.objects.get(instance=self.parent, step_id="inspection")
        assert run.state == RunState.WAITING
        assert (child.parent_run_id, child.root_id) == (run.pk, self.parent.pk)
        assert child.case_number.startswith("SI-") and child.case_number != self.parent.case_number
        assert child.payload == {"applicant": "Ada", "address": "1 Main St"}
        assert child.definition.key == "site-inspection"
        started = Event.objects.get(instance=self.parent, type=Event.Type.CHILD_STARTED)
        assert started.detail == {"child": child.case_number}

    def test_a_completed_child_finishes_the_step_with_ok_and_the_parent_goes_on(self):
        child = child_of(self.parent)
        decide(child, "inspect")
        self.parent.refresh_from_db()
        assert self.parent.status == Status.COMPLETED
        run = StepRun.objects.get(instance=self.parent, step_id="inspection")
        assert (run.state, run.result) == (RunState.SUCCEEDED, "ok")
        assert run.output == {
            "instanceId": str(child.uuid),
            "caseNumber": child.case_number,
            "status": "completed",
        }

    def test_a_refused_child_is_result_rejected_for_the_parent(self):
        definition = make_definition(
            parent(
                {"id": "inspection", "workflow": "site-inspection", "on": {"rejected": "reject"}}
            )
        )
        instance = start(definition)
        decide(child_of(instance), "inspect", "rejected")
        instance.refresh_from_db()
        assert instance.status == Status.REJECTED
        run = StepRun.objects.get(instance=instance, step_id="inspection")
        assert run.result == "rejected"

    def test_a_cancelled_child_fails_the_parents_step(self):
        child = child_of(self.parent)
        runtime.cancel_instance(instance_id=child.pk, reason="inspector ill")
        self.parent.refresh_from_db()
        assert self.parent.status == Status.FAILED
        assert self.parent.error == {
            "step": "inspection",
            "detail": f"the sub-workflow {child.case_number} ended cancelled",
        }

    def test_cancelling_the_parent_cancels_the_running_child(self):
        child = child_of(self.parent)
        runtime.cancel_instance(instance_id=self.parent.pk, reason="withdrawn")
        child.refresh_from_db()
        assert child.status == Status.CANCELLED
        inspect = StepRun.objects.get(instance=child, step_id="inspect")
        assert inspect.state == RunState.CANCELLED
        event = Event.objects.get(instance=child, type=Event.Type.CANCELLED)
        assert event.detail["reason"] == f"its parent {self.parent.case_number} was cancelled"

    def test_a_failed_child_is_retried_through_its_parent_which_starts_a_new_one(self):
        first = child_of(self.parent)
        runtime.cancel_instance(instance_id=first.pk, reason="x")
        WorkflowInstance.objects.filter(pk=first.pk).update(
            status=Status.FAILED, error={"step": "inspect", "detail": "x"}
        )
        with pytest.raises(TransitionNotAllowed, match="retry its parent"):
            runtime.retry_instance(instance_id=first.pk)
        committed(runtime.retry_instance, instance_id=self.parent.pk)
        run_queued(self.parent)  # a retried step goes to the workers, as any retry
        second = child_of(self.parent)
        assert second.pk != first.pk
        decide(second, "inspect")
        self.parent.refresh_from_db()
        assert self.parent.status == Status.COMPLETED

    def test_a_payload_the_child_refuses_fails_the_step_with_the_reasons(self):
        make_definition({**INSPECTION, "input": {"type": "object", "required": ["parcel"]}})
        instance = start(self.definition, {"applicant": "Ada"})
        instance.refresh_from_db()
        assert instance.status == Status.FAILED
        assert instance.error["detail"] == (
            "the sub-workflow site-inspection cannot start: payload: 'parcel' is a required "
            "property"
        )
        assert not WorkflowInstance.objects.filter(parent_run__instance=instance).exists()

    def test_a_child_in_a_branch_ends_its_branch(self):
        branches = {
            "id": "reviews",
            "parallel": [
                {"id": "site", "steps": [{"id": "inspection", "workflow": "site-inspection"}]},
                {"id": "desk", "steps": [{"id": "desk-review", "service": "approvalSvc"}]},
            ],
        }
        instance = start(make_definition(parent(branches, key="permit-branches")))
        decide(child_of(instance), "inspect")
        decide(instance, "desk-review")
        instance.refresh_from_db()
        assert instance.status == Status.COMPLETED

    def test_a_time_out_inside_the_child_works_and_its_end_moves_the_parent(self):
        make_definition(
            {
                "id": "timed-check",
                "steps": [
                    {"id": "look", "service": "approvalSvc", "timeout": "1h", "onTimeout": "skip"}
                ],
            }
        )
        instance = start(make_definition(parent({"id": "inspection", "workflow": "timed-check"})))
        look = StepRun.objects.get(instance=child_of(instance), step_id="look")
        committed(runtime.process_due, now=look.due_at + timedelta(seconds=1))
        run_queued(instance)  # a step after a timer's skip goes through the queue
        instance.refresh_from_db()
        assert instance.status == Status.COMPLETED
        look.refresh_from_db()
        assert (look.state, look.result) == (RunState.SKIPPED, "timeout")

    def test_a_child_of_python_steps_completes_within_the_start(self):
        make_definition({"id": "quick-check", "steps": [{"id": "look", "service": "okSvc"}]})
        definition = make_definition(
            parent({"id": "inspection", "workflow": "quick-check"}, key="quick")
        )
        instance = start(definition)
        instance.refresh_from_db()
        assert instance.status == Status.COMPLETED


@pytest.mark.worker_path
class WorkerPathTests(TestCase):
    def test_a_worker_starts_the_child_and_runs_it(self):
        make_service("okSvc")
        make_definition({"id": "quick-check", "steps": [{"id": "look", "service": "okSvc"}]})
        instance = start(make_definition(parent({"id": "inspection", "workflow": "quick-check"})))
        run_queued(instance)
        child = WorkflowInstance.objects.get(parent_run__instance=instance)
        run_queued(child)
        run_queued(instance)
        instance.refresh_from_db()
        child.refresh_from_db()
        assert (child.status, instance.status) == (Status.COMPLETED, Status.COMPLETED)
