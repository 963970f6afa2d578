"""Python steps after a start or a decision run in the caller's process (HMS_INLINE_PYTHON_STEPS).

The site's default, and the suite's: no queue hop for in-process steps, as Camunda and viewflow
do it, while HTTP steps, retries and redeliveries still go to the workers. Here the caller path
is proven on its own: what the caller sees, failures, recovery after a kill, statement counts.
"""

import os
import signal
import subprocess
from datetime import timedelta
from unittest.mock import patch

from django.core import mail
from django.db import OperationalError, connection
from django.test import TestCase, override_settings
from django.test.utils import CaptureQueriesContext

from tests.factories import (
    make_definition,
    make_seed_services,
    make_service,
    make_token,
    simple_workflow,
)
from tests.integration_helpers import (
    MANAGE,
    PROJECT,
    StandInQueue,
    file_database,
    running_cluster,
    wait_until,
)
from tests.test_query_budget import THREE_PYTHON_STEPS, data_statements
from workflows_app import runtime
from workflows_app.models import Event, RunState, Status, StepRun, WorkflowInstance
from workflows_app.runtime import execution
from workflows_app.runtime import steps as runs_module

RUN_STEP = StandInQueue.RUN_STEP

_calls = {"flaky": 0}


def flaky(instance, step):
    """Raises on its first call, answers `ok` after: a service that needs one retry."""
    _calls["flaky"] += 1
    if _calls["flaky"] == 1:
        raise ConnectionError("the register is down")
    return {"result": "ok", "data": {"call": _calls["flaky"]}}


@override_settings(HMS_INLINE_PYTHON_STEPS=True, HMS_NOTIFY_TASKS=False)
class CallerRunsPythonStepsTests(TestCase):
    def setUp(self):
        self.queue = StandInQueue(self)

    def sent(self, func: str = RUN_STEP) -> list[tuple]:
        return [args for name, args in self.queue.messages if name == func]

    def history(self, instance) -> list[tuple[str, str, str, int]]:
        return list(
            StepRun.objects.filter(instance=instance)
            .order_by("created_at", "step_id")
            .values_list("step_id", "state", "result", "attempts")
        )

    def test_a_start_of_python_steps_ends_before_the_call_returns_with_no_queue_message(self):
        definition = simple_workflow("three", steps=THREE_PYTHON_STEPS)
        instance = self.queue.start(definition)
        assert instance.status == Status.COMPLETED  # what the start call hands back
        instance.refresh_from_db()
        assert (instance.status, instance.current_step) == (Status.COMPLETED, "")
        assert self.history(instance) == [
            ("one", RunState.SUCCEEDED, "ok", 1),
            ("two", RunState.SUCCEEDED, "ok", 1),
            ("three", RunState.SUCCEEDED, "ok", 1),
        ]
        assert self.sent() == []

    def test_the_seed_validates_in_the_start_and_notifies_in_the_decision(self):
        make_seed_services()
        instance = self.queue.start(
            make_definition(), {"applicant": "Ada", "email": "ada@example.org"}
        )
        task = StepRun.objects.get(instance=instance, step_id="approve")
        assert task.state == RunState.WAITING  # validate is done already
        self.queue.committed(
            runtime.complete_task, run_id=task.pk, result="approved", actor="user:rev"
        )
        instance.refresh_from_db()
        assert instance.status == Status.COMPLETED
        assert [m.to for m in mail.outbox] == [["ada@example.org"]]
        assert [step for step, *_ in self.history(instance)] == ["validate", "approve", "notify"]
        assert self.sent() == []

    def test_an_http_step_still_goes_to_the_workers(self):
        make_service("remoteSvc", "http")
        definition = simple_workflow(
            "mixed",
            steps=[{"id": "local", "service": "okSvc"}, {"id": "far", "service": "remoteSvc"}],
        )
        instance = self.queue.start(definition)
        far = StepRun.objects.get(instance=instance, step_id="far")
        assert (instance.current_step, far.state) == ("far", RunState.QUEUED)
        assert self.sent() == [(str(far.pk), 0)]

    @override_settings(HMS_PYTHON_SERVICES=["workflows_app.builtin", "tests.test_inline"])
    def test_a_step_that_fails_in_the_caller_is_retried_by_a_worker_and_the_start_succeeds(self):
        _calls["flaky"] = 0
        make_service("flakySvc", callable="tests.test_inline.flaky")
        definition = simple_workflow(
            "flaky", steps=[{"id": "lookup", "service": "flakySvc", "retry": {"max": 2}}]
        )
        instance = self.queue.start(definition)
        run = StepRun.objects.get(instance=instance)
        assert (instance.status, run.state, run.attempts) == (Status.RUNNING, RunState.QUEUED, 1)
        assert "the register is down" in run.error
        self.queue.tick(run.wake_at)  # the backoff ends: the timer sends it to a worker
        assert self.sent() == [(str(run.pk), 1)]
        self.queue.work()
        instance.refresh_from_db()
        assert instance.status == Status.COMPLETED
        assert self.history(instance) == [("lookup", RunState.SUCCEEDED, "ok", 2)]
        assert _calls["flaky"] == 2

    def test_a_caller_that_dies_before_running_the_step_leaves_it_to_a_worker_once(self):
        """The run is created claimed, with a lease: if the process dies before its commit
        hook runs the step, the lease ends and the timers redeliver it to a worker."""
        definition = simple_workflow("three", steps=THREE_PYTHON_STEPS)
        with self.captureOnCommitCallbacks(execute=False):  # the process dies at the commit
            instance, _ = runtime.start_instance(definition=definition, payload={})
        run = StepRun.objects.get(instance=instance)
        assert (run.state, run.attempts) == (RunState.RUNNING, 1)
        lease = (run.wake_at - run.started_at).total_seconds()
        assert 99 <= lease <= 101  # HMS_STEP_LEASE_SECONDS
        self.queue.tick(run.wake_at)  # the lease ended: back to the queue
        self.queue.tick(run.wake_at + timedelta(seconds=61))
        self.queue.work()
        instance.refresh_from_db()
        assert instance.status == Status.COMPLETED
        assert [s for s, *_ in self.history(instance)] == ["one", "two", "three"]
        assert self.history(instance)[0][3] == 2  # the caller's attempt, then the worker's
        assert Event.objects.filter(instance=instance, type=Event.Type.REDELIVERED).count() == 1

    def test_a_database_error_in_the_step_does_not_fail_the_callers_committed_start(self):
        definition = simple_workflow("three", steps=THREE_PYTHON_STEPS)
        with patch(
            "workflows_app.runtime.execution.record_outcome", side_effect=OperationalError("locked")
        ):
            instance = self.queue.start(definition)  # does not raise
        run = StepRun.objects.get(instance=instance)
        assert (run.state, instance.status) == (RunState.RUNNING, Status.RUNNING)
        self.queue.tick(run.wake_at)  # the lease ends and a worker takes it
        self.queue.tick(run.wake_at + timedelta(seconds=61))
        self.queue.work()
        instance.refresh_from_db()
        assert instance.status == Status.COMPLETED

    def test_a_decision_whose_next_step_fails_in_the_caller_answers_what_it_committed(self):
        make_seed_services()
        instance = self.queue.start(make_definition(), {"applicant": "Ada"})
        task = StepRun.objects.get(instance=instance, step_id="approve")
        real_guarded = runs_module.guarded

        def failing_at_notify(run, *args, **kwargs):
            # After notify has moved the instance in memory, its own write fails.
            if run.step_id == "notify":
                raise OperationalError("database is locked")
            return real_guarded(run, *args, **kwargs)

        with patch("workflows_app.runtime.steps.guarded", side_effect=failing_at_notify):
            answered = self.queue.committed(
                runtime.complete_task, run_id=task.pk, result="approved", actor="user:rev"
            )
        stored = WorkflowInstance.objects.get(pk=instance.pk)
        assert (answered.status, answered.current_step) == (Status.RUNNING, "notify")
        assert (stored.status, stored.current_step) == (Status.RUNNING, "notify")

    def test_an_api_start_runs_its_python_steps_with_no_queue_message(self):
        definition = simple_workflow("three", steps=THREE_PYTHON_STEPS)
        auth = {"HTTP_AUTHORIZATION": f"Bearer {make_token()}"}
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(
                "/api/workflows/start",
                {"workflowId": definition.key, "payload": {}},
                content_type="application/json",
                **auth,
            )
        assert response.status_code == 201
        status = self.client.get(f"/api/workflows/{response.json()['instanceId']}/status", **auth)
        assert status.json()["status"] == "completed"
        assert [h["step"] for h in status.json()["history"]] == ["one", "two", "three"]
        assert self.sent() == []

    def test_the_api_start_answers_running_as_the_contract_shows_though_its_steps_ended(self):
        definition = simple_workflow("three", steps=THREE_PYTHON_STEPS)
        auth = {"HTTP_AUTHORIZATION": f"Bearer {make_token()}"}
        # As at a real commit, the steps run before the view answers (a TestCase defers
        # on_commit hooks to its own end, so they are run at once here).
        with patch(
            "workflows_app.runtime.execution.run_after_commit",
            side_effect=execution._run_for_caller,
        ):
            response = self.client.post(
                "/api/workflows/start",
                {"workflowId": definition.key, "payload": {}},
                content_type="application/json",
                **auth,
            )
        assert (response.status_code, response.json()["status"]) == (201, "running")
        instance = WorkflowInstance.objects.get(uuid=response.json()["instanceId"])
        assert instance.status == Status.COMPLETED


@override_settings(HMS_INLINE_PYTHON_STEPS=True, HMS_NOTIFY_TASKS=False)
class InlineStatementBudgetTests(TestCase):
    """Data statements per instance on the default path (no claim, no queue message)."""

    def count(self, call) -> int:
        with (
            patch("workflows_app.runtime.queue.async_task") as enqueue,
            CaptureQueriesContext(connection) as queries,
            self.captureOnCommitCallbacks(execute=True),
        ):
            call()
        enqueue.assert_not_called()
        return len(data_statements(queries))

    def seed_life(self, definition) -> dict[str, int]:
        holder = {}

        def begin():
            holder["instance"], _ = runtime.start_instance(
                definition=definition, payload={"applicant": "Ada"}
            )

        phases = {"start + validate": self.count(begin)}
        task = StepRun.objects.get(instance=holder["instance"], step_id="approve")
        phases["approve + notify"] = self.count(
            lambda: runtime.complete_task(run_id=task.pk, result="approved", actor="user:rev")
        )
        assert StepRun.objects.get(instance=task.instance_id, step_id="notify").state == (
            RunState.SUCCEEDED
        )
        return phases

    def test_the_seed_shape_takes_eleven_data_statements(self):
        make_seed_services()
        definition = make_definition()
        self.seed_life(definition)  # warm the process caches
        phases = self.seed_life(definition)
        # start: instance + run; validate: route, close, open the task; decision: read the
        # task, route, close, open notify; notify: route, close.
        assert phases == {"start + validate": 5, "approve + notify": 6}

    def test_three_python_steps_take_ten_data_statements(self):
        definition = simple_workflow("three", steps=THREE_PYTHON_STEPS)
        start = lambda: runtime.start_instance(definition=definition, payload={})  # noqa: E731
        self.count(start)
        assert self.count(start) == 10

    def test_the_api_start_of_the_seed_takes_six_data_statements(self):
        make_seed_services()
        make_definition()
        auth = {"HTTP_AUTHORIZATION": f"Bearer {make_token()}"}
        body = {"workflowId": "building-permit", "payload": {"applicant": "Ada"}}

        def start():
            return self.client.post(
                "/api/workflows/start", body, content_type="application/json", **auth
            )

        self.count(start)  # warm the process caches
        # The newest definition with the token's row (one query), the instance, the validate
        # run (created claimed); then validate in the request: route the instance, close the
        # run, open the task.
        assert self.count(start) == 6


CALLER_LEASE_SECONDS = 4


def test_a_caller_killed_inside_its_python_step_leaves_it_to_a_worker_once(
    tmp_path, django_db_blocker
):
    """SIGKILL a real process while the python step it runs after its start is in progress;
    when the lease ends the cluster's timer redelivers the step to a worker, which runs it."""
    marker = tmp_path / "first-call"
    with file_database(tmp_path, django_db_blocker) as env:
        env |= {
            "HMS_STEP_LEASE_SECONDS": str(CALLER_LEASE_SECONDS),
            "HMS_REDELIVERY_SECONDS": "5",
            "HMS_PYTHON_SERVICES": "workflows_app.builtin,tests.held_services",
            "HMS_TEST_MARKER": str(marker),
        }
        make_service("heldSvc", callable="tests.held_services.hold_first_call")
        simple_workflow(
            "held",
            steps=[{"id": "hold", "service": "heldSvc"}, {"id": "after", "service": "okSvc"}],
        )
        start = (
            "from workflows_app import runtime; from workflows_app.queries import catalog; "
            "runtime.start_instance(definition=catalog.latest_definition('held'), payload={})"
        )
        with running_cluster(env) as cluster:
            caller = subprocess.Popen(
                [*MANAGE, "shell", "-c", start], cwd=PROJECT, env=env, start_new_session=True
            )
            try:
                wait_until(marker.exists, timeout=30, what="the caller to enter the step")
                assert int(marker.read_text()) == caller.pid  # the caller runs it, not a worker
                os.killpg(caller.pid, signal.SIGKILL)
            finally:
                caller.wait(timeout=10)
            instance = WorkflowInstance.objects.get()
            run = StepRun.objects.get(instance=instance, step_id="hold")
            assert (run.state, run.attempts) == (RunState.RUNNING, 1)
            wait_until(
                lambda: WorkflowInstance.objects.get(pk=instance.pk).is_finished,
                timeout=60,
                what="a worker to finish the step after the lease",
            )
            output = cluster.output
        instance.refresh_from_db()
        assert instance.status == Status.COMPLETED, output
        runs = StepRun.objects.filter(instance=instance).order_by("created_at")
        assert [(r.step_id, r.state, r.attempts) for r in runs] == [
            ("hold", RunState.SUCCEEDED, 2),
            ("after", RunState.SUCCEEDED, 1),
        ]
        assert runs[0].output["pid"] != caller.pid  # a worker of the cluster ran it
        assert Event.objects.filter(instance=instance, type=Event.Type.REDELIVERED).count() == 1
