"""What the chaos run under polling load found (issue 13, part 2), each replayed on its own.

1. An attempt whose call got a 2xx, lost with its worker before the commit (SIGKILL, then a
   redelivery), was counted as a failed attempt: the step "gave up after 6 attempts" although
   the service had answered 200 once. A lost attempt is not a failed one (docs/queue.md).
2. A run stayed `queued` with `attempts: 2` for minutes after the kills stopped: a worker
   SIGKILLed while it waited for work held its cluster's queue lock, and every other worker
   of that cluster waited for it forever (runtime/watchdog.py, docs/queue.md).
"""

import os
import re
import signal
import time
from pathlib import Path

import pytest
from django.test import TestCase

from tests.factories import make_service, simple_workflow
from tests.integration_helpers import (
    OK,
    LocalServerMixin,
    Reply,
    ScriptedService,
    StandInQueue,
    file_database,
    local_http_server,
)
from tests.system.harness import running_cluster, wait_until
from workflows_app import runtime
from workflows_app.models import Event, RunState, Status, StepRun, WorkflowInstance
from workflows_app.queries import catalog
from workflows_app.runtime import dispatch


class LostAnswerTests(LocalServerMixin, TestCase):
    def start(self, *replies: Reply) -> None:
        self.queue = StandInQueue(self)
        self.service = ScriptedService(self.server, replies=replies)
        make_service("flakySvc", "http", url=self.service.url, timeout_seconds=5)
        steps = [{"id": "call", "service": "flakySvc", "retry": {"max": 2, "backoff": "1s"}}]
        self.instance = self.queue.start(simple_workflow("flaky", steps=steps))
        self.run = StepRun.objects.get(instance=self.instance)

    def wait_and_work(self) -> None:
        self.run.refresh_from_db()
        self.queue.tick(self.run.wake_at)
        self.queue.work()

    def a_worker_gets_a_200_and_is_killed_before_its_commit(self) -> None:
        self.run.refresh_from_db()
        self.queue.tick(self.run.wake_at)  # the retry is due: its message is sent
        self.queue.messages.clear()  # ... and taken by the worker about to die
        claimed = runtime.claim_run(run_id=self.run.pk, attempts=self.run.attempts)
        step = catalog.spec_of(claimed.instance).step("call")
        service = catalog.get_service("flakySvc")
        answer = dispatch.call(
            service=service, instance=claimed.instance, run=claimed.run, step=step
        )
        assert answer.kind == "done"  # the service answered 200; nothing is recorded

    def test_an_attempt_answered_200_and_lost_with_its_worker_is_not_a_failed_attempt(self):
        self.start(Reply(500), OK, Reply(500), OK)
        self.queue.work()  # attempt 1: 500, a retry
        self.a_worker_gets_a_200_and_is_killed_before_its_commit()  # attempt 2
        self.wait_and_work()  # the lease ends: redelivered, attempt 3: 500, still a retry
        self.wait_and_work()  # attempt 4: 200
        self.instance.refresh_from_db()
        assert self.instance.status == Status.COMPLETED
        assert [r.attempt for r in self.service.received] == [1, 2, 3, 4]
        retries = Event.objects.filter(run=self.run, type=Event.Type.RETRY_SCHEDULED)
        assert [e.detail["attempt"] for e in retries.order_by("pk")] == [1, 3]

    def test_failed_attempts_beyond_retry_max_still_fail_the_step_and_say_what_was_lost(self):
        self.start(Reply(500), OK, Reply(500), Reply(500), OK)
        self.queue.work()  # attempt 1: 500, a retry
        self.a_worker_gets_a_200_and_is_killed_before_its_commit()  # attempt 2
        self.wait_and_work()  # the lease ends: redelivered, attempt 3: 500
        self.run.refresh_from_db()
        # Two failed attempts (1 and 3) of retry.max 2: one more is allowed.
        assert (self.run.state, self.run.attempts) == (RunState.QUEUED, 3)
        self.wait_and_work()  # attempt 4: 500, the third failed attempt: retry.max spent
        self.run.refresh_from_db()
        self.instance.refresh_from_db()
        assert [r.attempt for r in self.service.received] == [1, 2, 3, 4]
        assert self.instance.status == Status.FAILED
        assert self.instance.error["detail"] == (
            "service 'flakySvc' answered 500 (gave up after 3 attempts, and 1 lost with a "
            "stopped worker)"
        )
        assert Event.objects.filter(run=self.run, type=Event.Type.REDELIVERED).count() == 1


def _queue_reader(output: str) -> int | None:
    """The worker of the cluster waiting in the queue's pipe, holding its read lock."""
    for pid in re.findall(r"ready for work at (\d+)", output):
        try:
            if "pipe" in Path(f"/proc/{pid}/wchan").read_text():
                return int(pid)
        except OSError:
            continue
    return None


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_a_cluster_whose_idle_worker_was_killed_holding_the_queue_lock_still_runs_steps(
    tmp_path, django_db_blocker
):
    with local_http_server() as server, file_database(tmp_path, django_db_blocker) as env:
        service = ScriptedService(server, replies=[OK])
        make_service("remoteSvc", "http", url=service.url, timeout_seconds=5)
        definition = simple_workflow("remote", steps=[{"id": "call", "service": "remoteSvc"}])
        with running_cluster(env | {"HMS_WORKERS": "2", "HMS_WEDGE_SECONDS": "1"}) as cluster:
            holder = wait_until(
                lambda: _queue_reader(cluster.output), timeout=30, what="an idle worker"
            )
            time.sleep(3)  # an idle cluster: a live worker holds the lock, nothing is freed
            assert "released the task queue's read lock" not in cluster.output
            os.kill(holder, signal.SIGKILL)  # it held the lock: the other worker waits for it
            instance, _ = runtime.start_instance(definition=definition, payload={})
            wait_until(
                lambda: WorkflowInstance.objects.get(pk=instance.pk).is_finished,
                timeout=60,
                what="the step to run on the wedged cluster",
            )
            assert WorkflowInstance.objects.get(pk=instance.pk).status == Status.COMPLETED
            assert "released the task queue's read lock" in cluster.output, cluster.output
        assert len(service.received) == 1
