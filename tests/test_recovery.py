"""Recovery: a step run whose worker died is dispatched again, with the same Idempotency-Key.

A worker claims a run with a lease (`wake_at`); if it dies, the timer (or the scheduled sweep)
finds the lease expired, puts the run back in the queue and a live worker calls the service
again with the same key. The integration test kills a real qcluster with SIGKILL while its
request is in flight.
"""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client, TestCase
from django.utils import timezone

from tests.factories import make_service, make_token, simple_workflow
from tests.integration_helpers import (
    OK,
    LocalServerMixin,
    Reply,
    ScriptedService,
    StandInQueue,
    file_database,
    local_http_server,
    running_cluster,
    wait_until,
)
from workflows_app import runtime, tasks
from workflows_app.engine import TransitionNotAllowed
from workflows_app.models import Event, RunState, Status, StepRun, WorkflowInstance
from workflows_app.runtime.dispatch import Outcome


class LostWorkerTests(LocalServerMixin, TestCase):
    def setUp(self):
        self.queue = StandInQueue(self)
        self.service = ScriptedService(self.server, replies=[OK])
        make_service("remoteSvc", "http", url=self.service.url, timeout_seconds=5)
        definition = simple_workflow(
            "remote",
            steps=[{"id": "call", "service": "remoteSvc"}, {"id": "after", "service": "okSvc"}],
        )
        self.instance = self.queue.start(definition)
        self.run = StepRun.objects.get(instance=self.instance, step_id="call")

    def worker_takes_the_run_and_dies(self):
        """Claim as a worker would, then never record an outcome."""
        self.queue.messages.clear()
        claimed = runtime.claim_run(run_id=self.run.pk, attempts=0)
        self.run.refresh_from_db()
        assert (self.run.state, self.run.attempts) == (RunState.RUNNING, 1)
        return claimed

    def history(self) -> list[str]:
        runs = StepRun.objects.filter(instance=self.instance, state=RunState.SUCCEEDED)
        return list(runs.order_by("ended_at").values_list("step_id", flat=True))

    def test_a_run_with_an_expired_lease_is_dispatched_again_with_the_same_key(self):
        self.worker_takes_the_run_and_dies()
        lease_ends = self.run.wake_at
        assert self.queue.tick(lease_ends - timedelta(seconds=1)) == 0
        assert self.queue.tick(lease_ends) == 1
        self.run.refresh_from_db()
        assert self.run.state == RunState.QUEUED
        assert self.queue.messages == [(StandInQueue.RUN_STEP, (str(self.run.pk), 1))]
        event = Event.objects.get(instance=self.instance, type=Event.Type.REDELIVERED)
        assert (event.step, event.detail) == ("call", {"attempt": 1})
        self.queue.work()
        [request] = self.service.received
        assert (request.idempotency_key, request.attempt) == (str(self.run.pk), 2)
        self.instance.refresh_from_db()
        assert self.instance.status == Status.COMPLETED
        assert self.history() == ["call", "after"]

    def test_the_scheduled_sweep_recovers_it_too(self):
        self.worker_takes_the_run_and_dies()
        StepRun.objects.filter(pk=self.run.pk).update(wake_at=timezone.now() - timedelta(seconds=1))
        assert self.queue.committed(tasks.sweep) == 1
        self.queue.work()
        assert WorkflowInstance.objects.get(pk=self.instance.pk).status == Status.COMPLETED

    def test_a_run_whose_lease_has_not_expired_is_left_alone(self):
        self.worker_takes_the_run_and_dies()
        assert self.queue.tick(timezone.now()) == 0
        assert StepRun.objects.get(pk=self.run.pk).state == RunState.RUNNING

    def test_a_stale_copy_of_the_first_message_does_nothing(self):
        self.worker_takes_the_run_and_dies()
        self.queue.tick(self.run.wake_at)
        self.queue.work()
        tasks.run_step(str(self.run.pk), 0)  # the broker redelivers the dead worker's message
        assert len(self.service.received) == 1
        assert self.history() == ["call", "after"]

    def test_the_presumed_dead_workers_late_answer_changes_nothing(self):
        claimed = self.worker_takes_the_run_and_dies()
        self.queue.tick(self.run.wake_at)
        self.queue.work()
        with self.assertRaises(TransitionNotAllowed):
            runtime.record_outcome(claimed=claimed, outcome=Outcome("done", result="ok"))
        assert self.history() == ["call", "after"]

    def test_a_message_lost_by_the_broker_is_sent_again(self):
        self.queue.messages.clear()  # e.g. Redis lost it: at-most-once delivery
        assert self.queue.tick(self.run.wake_at) == 1
        assert self.queue.messages == [(StandInQueue.RUN_STEP, (str(self.run.pk), 0))]
        self.queue.work()
        assert WorkflowInstance.objects.get(pk=self.instance.pk).status == Status.COMPLETED


LEASE_SECONDS = 8
HOLD_SECONDS = 3.0


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_a_worker_killed_mid_request_is_recovered_and_the_step_runs_once(
    tmp_path, django_db_blocker
):
    """SIGKILL a real qcluster while its request is in flight; a new cluster finishes the job."""
    with local_http_server() as server, file_database(tmp_path, django_db_blocker) as env:
        env |= {"HMS_STEP_LEASE_SECONDS": str(LEASE_SECONDS), "HMS_REDELIVERY_SECONDS": "5"}
        slow = Reply(200, {"result": "ok", "data": {"checked": True}}, delay=HOLD_SECONDS)
        service = ScriptedService(server, replies=[slow])
        make_service("slowSvc", "http", url=service.url, timeout_seconds=10)
        definition = simple_workflow(
            "slow",
            steps=[{"id": "call", "service": "slowSvc"}, {"id": "after", "service": "okSvc"}],
        )
        token = make_token("ops")
        started = time.time()
        with running_cluster(env) as first:
            instance, _ = runtime.start_instance(definition=definition, payload={})
            wait_until(lambda: service.received, timeout=30, what="the first request")
            time.sleep(0.5)  # the request is in flight: the service holds it for 3 s
            run = StepRun.objects.get(instance=instance, step_id="call")
            assert run.state == RunState.RUNNING
            first.kill()
            killed = time.time()
        lease_ends = run.wake_at.timestamp()
        with running_cluster(env) as second:
            restarted = time.time()
            wait_until(
                lambda: WorkflowInstance.objects.get(pk=instance.pk).is_finished,
                timeout=60,
                what="the instance to finish after the restart",
            )
        document = (
            Client()
            .get(
                f"/api/workflows/{instance.uuid}/status",
                headers={"Authorization": f"Bearer {token}"},
            )
            .json()
        )
        _report(started, service, killed, lease_ends, restarted, document)
        assert document["status"] == "completed", second.output
        assert [entry["step"] for entry in document["history"]] == ["call", "after"]
        assert [(r.idempotency_key, r.attempt) for r in service.received] == [
            (str(run.pk), 1),
            (str(run.pk), 2),
        ]
        assert [e["type"] for e in document["events"]].count("redelivered") == 1
        # Order, not latency: the second attempt waits for the dead worker's lease to end
        # (how long after is printed above; bench/ measures it).
        retry_at = service.received[1].at
        assert service.received[0].at < killed and lease_ends <= retry_at, second.output


def _report(started, service, killed, lease_ends, restarted, document) -> None:
    def at(moment: float) -> str:
        return f"{moment - started:6.2f}s"

    first, second = service.received
    print("\n--- SIGKILL while a request is in flight ---")
    print(f"{at(first.at)}  request 1 arrives  Idempotency-Key {first.idempotency_key} attempt 1")
    print(f"{at(killed)}  SIGKILL to the whole qcluster process group (request still held)")
    print(f"{at(restarted)}  a new qcluster is running")
    print(f"{at(lease_ends)}  the dead worker's lease ends ({LEASE_SECONDS}s after the claim)")
    print(
        f"{at(second.at)}  request 2 arrives  Idempotency-Key {second.idempotency_key} "
        f"attempt {second.attempt}"
    )
    print(f"status: {document['status']}")
    for entry in document["history"]:
        when = datetime.fromisoformat(entry["time"]).astimezone(UTC).strftime("%H:%M:%S.%f")[:-3]
        print(
            f"history: {entry['step']:<6} {entry['result']:<4} attempts={entry['attempts']} "
            f"at {when}"
        )
    for event in document["events"]:
        print(f"event:   {event['type']} {event['step']} {event.get('attempt', '')}")
