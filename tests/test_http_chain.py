"""Consecutive `http` steps run in one worker's job (docs/architecture.md, "A step's life"):
the next run is created already claimed by that worker, with no queue message between the
calls; a caller (a start, a decision) still sends its first http step to the queue, and a
job without time left for the next call within the task time-out sends it too."""

from django.test import TestCase, override_settings

from tests.factories import make_service, simple_workflow
from tests.integration_helpers import OK, LocalServerMixin, ScriptedService, StandInQueue
from workflows_app.models import RunState, Status, StepRun
from workflows_app.queries import catalog

THREE = [{"id": step, "service": "remoteSvc"} for step in ("one", "two", "three")]


class HttpChainTests(LocalServerMixin, TestCase):
    def setUp(self):
        self.queue = StandInQueue(self)
        catalog.clear()
        self.service = ScriptedService(self.server, replies=(OK, OK, OK))
        make_service("remoteSvc", "http", url=self.service.url, timeout_seconds=5)

    def test_three_http_steps_take_one_queue_message(self):
        instance = self.queue.start(simple_workflow("three-http", steps=THREE))
        assert len(self.queue.messages) == 1  # the start sends the first step to the queue
        assert self.queue.work() == 1  # one job runs all three
        instance.refresh_from_db()
        assert instance.status == Status.COMPLETED
        assert len(self.service.received) == 3
        runs = StepRun.objects.filter(instance=instance).order_by("created_at")
        assert [(r.step_id, r.state, r.attempts) for r in runs] == [
            (step, RunState.SUCCEEDED, 1) for step in ("one", "two", "three")
        ]

    @override_settings(HMS_TASK_TIMEOUT=12)
    def test_a_job_without_time_for_the_next_call_queues_it(self):
        # A 30 s read time-out (plus the margin) does not fit in a 12 s job.
        make_service("remoteSvc", "http", url=self.service.url, timeout_seconds=30)
        catalog.clear()
        instance = self.queue.start(simple_workflow("three-http", steps=THREE))
        self.queue.work(limit=1)
        runs = StepRun.objects.filter(instance=instance).order_by("created_at")
        assert [(r.step_id, r.state) for r in runs] == [
            ("one", RunState.SUCCEEDED),
            ("two", RunState.QUEUED),
        ]
