"""Writers: one transaction per change, guarded transitions, enqueue after commit."""

import re
from datetime import timedelta
from unittest.mock import patch

import pytest
from django.core import mail
from django.db import IntegrityError, transaction
from django.test import TestCase
from django.utils import timezone

from tests.factories import (
    make_definition,
    make_seed_services,
    make_service,
    run_queued,
    simple_workflow,
    start,
)
from workflows_app import runtime, tasks
from workflows_app.engine import TransitionNotAllowed
from workflows_app.models import Event, RunState, Status, StepRun, WorkflowInstance


class StartInstanceTests(TestCase):
    def test_start_creates_the_instance_and_queues_an_http_first_step_after_commit(self):
        make_service("httpSvc", "http")
        definition = simple_workflow(steps=[{"id": "one", "service": "httpSvc"}])
        with patch("workflows_app.runtime.queue.async_task") as enqueue:
            with self.captureOnCommitCallbacks(execute=False) as callbacks:
                instance, _ = runtime.start_instance(definition=definition, payload={})
            enqueue.assert_not_called()  # nothing is sent before commit
            for callback in callbacks:
                callback()
        run = StepRun.objects.get(instance=instance)
        assert (instance.status, instance.current_step) == (Status.RUNNING, "one")
        assert run.state == RunState.QUEUED
        enqueue.assert_called_once_with("workflows_app.tasks.run_step", str(run.pk), 0, save=False)

    def test_case_numbers_use_the_workflow_prefix_year_and_a_random_code(self):
        instance = start(simple_workflow("building-permit"))
        year = timezone.localdate().year
        assert re.fullmatch(rf"BP-{year}-[0-9ABCDEFGHJKMNPQRSTVWXYZ]{{6}}", instance.case_number)
        instance.refresh_from_db()  # stored, not computed
        assert instance.case_number.startswith(f"BP-{year}-")

    def test_the_same_idempotency_key_returns_the_same_instance(self):
        definition = simple_workflow()
        first, created = runtime.start_instance(
            definition=definition, payload={"a": 1}, idempotency_key="k"
        )
        again, created_again = runtime.start_instance(
            definition=definition, payload={"a": 1}, idempotency_key="k"
        )
        assert (created, created_again, again.pk) == (True, False, first.pk)
        assert WorkflowInstance.objects.count() == 1

    def test_the_same_idempotency_key_with_another_body_is_refused(self):
        definition = simple_workflow()
        start(definition, {"a": 1}, idempotency_key="k")
        with pytest.raises(runtime.IdempotencyConflict):
            start(definition, {"a": 2}, idempotency_key="k")

    def test_a_payload_breaking_the_input_schema_is_refused_with_every_error(self):
        schema = {
            "type": "object",
            "required": ["applicant", "address"],
            "properties": {"applicant": {"type": "string"}},
        }
        definition = simple_workflow(input=schema)
        with pytest.raises(runtime.InvalidPayload) as refused:
            start(definition, {"applicant": 5})
        assert len(refused.value.errors) == 2
        assert any("address" in e for e in refused.value.errors)
        assert any(e.startswith("payload/applicant") for e in refused.value.errors)
        assert WorkflowInstance.objects.count() == 0

    def test_the_database_refuses_two_open_runs_for_one_instance(self):
        make_service("httpSvc", "http")
        instance = start(simple_workflow(steps=[{"id": "one", "service": "httpSvc"}]))
        with pytest.raises(IntegrityError), transaction.atomic():
            StepRun.objects.create(instance=instance, step_id="two", state=RunState.QUEUED)


class RunningAutomatedStepsTests(TestCase):
    def test_python_steps_run_back_to_back_in_one_worker_to_completion(self):
        instance = start(
            simple_workflow(
                steps=[
                    {"id": "one", "service": "okSvc"},
                    {"id": "two", "service": "okSvc"},
                    {"id": "three", "service": "okSvc"},
                ]
            )
        )
        with (
            patch("workflows_app.runtime.queue.async_task") as enqueue,
            self.captureOnCommitCallbacks(execute=True),
        ):
            run_queued(instance)
        instance.refresh_from_db()
        assert instance.status == Status.COMPLETED and instance.current_step == ""
        runs = list(StepRun.objects.filter(instance=instance).order_by("created_at"))
        assert [(r.step_id, r.state, r.result, r.attempts) for r in runs] == [
            ("one", "succeeded", "ok", 1),
            ("two", "succeeded", "ok", 1),
            ("three", "succeeded", "ok", 1),
        ]
        enqueue.assert_not_called()  # no queue hop between python steps

    @pytest.mark.worker_path
    def test_a_duplicate_message_does_not_run_a_step_twice(self):
        instance = start(simple_workflow())
        run = StepRun.objects.get(instance=instance)
        tasks.run_step(str(run.pk), 0)
        tasks.run_step(str(run.pk), 0)  # the same message delivered again
        assert StepRun.objects.filter(instance=instance, step_id="one").count() == 1
        assert StepRun.objects.get(pk=run.pk).attempts == 1

    def test_a_refusal_ends_the_instance_rejected_with_or_without_an_on_entry(self):
        make_service("checkSvc", callable="workflows_app.builtin.check_required_fields")
        for on in ({"rejected": "reject"}, {}):
            definition = make_definition(
                {
                    "id": "chk",
                    "steps": [
                        {"id": "check", "service": "checkSvc", "on": on},
                        {"id": "after", "service": "checkSvc"},
                    ],
                }
            )
            instance = start(definition, {"applicant": "Ada"})
            run_queued(instance)
            instance.refresh_from_db()
            assert instance.status == Status.REJECTED
            assert instance.context["check"] == {"reasons": ["the address of the site is missing"]}
            assert not StepRun.objects.filter(instance=instance, step_id="after").exists()

    def test_a_python_service_that_raises_is_retried_then_fails_visibly(self):
        make_service("boomSvc", callable="workflows_app.builtin.does_not_exist_either")
        instance = start(simple_workflow(steps=[{"id": "one", "service": "boomSvc"}]))
        run_queued(instance)
        instance.refresh_from_db()
        assert instance.status == Status.FAILED
        assert (
            instance.error["step"] == "one" and "does_not_exist_either" in instance.error["detail"]
        )


class HumanStepTests(TestCase):
    def setUp(self):
        make_seed_services()
        self.definition = make_definition()

    def reach_approve(self, payload=None):
        instance = start(
            self.definition, payload or {"applicant": "Ada", "email": "ada@example.org"}
        )
        run_queued(instance)
        return StepRun.objects.get(instance=instance, step_id="approve")

    def test_the_seed_waits_for_a_person_then_completes_and_notifies(self):
        task = self.reach_approve()
        assert task.state == RunState.WAITING and task.assignee_group.name == "plan-reviewers"
        assert task.due_at - task.started_at == timedelta(hours=48)
        with (
            patch("workflows_app.runtime.queue.async_task") as q,
            self.captureOnCommitCallbacks(execute=True),
        ):
            runtime.complete_task(run_id=task.pk, result="approved", actor="user:rev")
        q.assert_not_called()  # notify runs right after the decision's commit, no queue hop
        instance = WorkflowInstance.objects.get(pk=task.instance_id)
        notify = StepRun.objects.get(instance=instance, step_id="notify")
        assert (notify.state, instance.status) == (RunState.SUCCEEDED, Status.COMPLETED)
        assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ada@example.org"]

    def test_a_second_completion_is_refused_and_recorded(self):
        task = self.reach_approve()
        runtime.complete_task(run_id=task.pk, result="approved")
        with pytest.raises(TransitionNotAllowed):
            runtime.complete_task(run_id=task.pk, result="rejected", reason="Too late.")
        assert StepRun.objects.filter(instance_id=task.instance_id, step_id="notify").count() == 1
        late = Event.objects.get(instance_id=task.instance_id, type=Event.Type.LATE_CALLBACK)
        assert late.result == "rejected"

    def test_the_sweep_escalates_an_overdue_task_to_the_backup_group(self):
        task = self.reach_approve()
        later = task.due_at + timedelta(seconds=1)
        assert runtime.process_due(now=later) == 1
        task.refresh_from_db()
        assert (task.state, task.assignee_group.name, task.escalation_level) == (
            RunState.WAITING,
            "backup-reviewers",
            1,
        )
        assert task.due_at == later + timedelta(hours=48)
        assert Event.objects.filter(run=task, type=Event.Type.ESCALATED).count() == 1
        assert runtime.process_due(now=later) == 0  # a second sweep acts on nothing


class OperatorTests(TestCase):
    def test_cancel_ends_a_running_instance_and_closes_its_step(self):
        make_seed_services()
        instance = start(make_definition())  # validated, now waiting at approve
        runtime.cancel_instance(instance_id=instance.pk, reason="duplicate", actor="ops")
        instance.refresh_from_db()
        assert (instance.status, instance.current_step) == (Status.CANCELLED, "")
        assert StepRun.objects.get(instance=instance, step_id="approve").state == "cancelled"
        event = Event.objects.get(instance=instance, type=Event.Type.CANCELLED)
        assert (event.detail["reason"], event.step) == ("duplicate", "approve")

    def test_cancelling_an_ended_instance_is_refused(self):
        make_service("httpSvc", "http")
        instance = start(simple_workflow(steps=[{"id": "one", "service": "httpSvc"}]))
        runtime.cancel_instance(instance_id=instance.pk, reason="x")
        with pytest.raises(TransitionNotAllowed):
            runtime.cancel_instance(instance_id=instance.pk, reason="again")

    def test_retry_resumes_a_failed_instance_at_its_failed_step(self):
        make_service("flaky", callable="workflows_app.builtin.nope")
        instance = start(
            simple_workflow(
                steps=[{"id": "one", "service": "flaky"}, {"id": "two", "service": "okSvc"}]
            )
        )
        run_queued(instance)
        instance.refresh_from_db()
        assert instance.status == Status.FAILED
        make_service("flaky", callable="workflows_app.builtin.accept")
        from workflows_app.queries import catalog

        catalog.clear()
        runtime.retry_instance(instance_id=instance.pk, actor="ops")
        run_queued(instance)
        instance.refresh_from_db()
        assert instance.status == Status.COMPLETED
        assert Event.objects.filter(instance=instance, type=Event.Type.RETRIED).count() == 1

    def test_retrying_a_running_instance_is_refused(self):
        instance = start(simple_workflow())
        with pytest.raises(TransitionNotAllowed):
            runtime.retry_instance(instance_id=instance.pk)
