"""The timer: due runs are acted on by a thread in every worker, and steps time out.

Unit tests drive the timer's pieces with explicit times; the integration test runs a real
`manage.py qcluster` on a file database and measures when a retry reaches a real service.
"""

import threading
import time
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

import pytest
from django.contrib.auth import get_user_model
from django.test import SimpleTestCase, TestCase, override_settings
from django.utils import timezone

from tests.factories import make_service, make_user, simple_workflow
from tests.integration_helpers import (
    ACCEPTED,
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
from workflows_app import runtime
from workflows_app.models import Event, Heartbeat, RunState, Status, StepRun, WorkflowInstance
from workflows_app.queries import catalog
from workflows_app.runtime import dispatch, ticker

User = get_user_model()


class TimerLoopTests(SimpleTestCase):
    def run_loop(self, tick, *, passes: int, interval: float = 0.02) -> threading.Event:
        """Run the loop in a thread until `tick` has been called `passes` times."""
        stop = threading.Event()
        calls = []

        def counting_tick():
            calls.append(time.monotonic())
            if len(calls) >= passes:
                stop.set()
            return tick(len(calls))

        thread = threading.Thread(
            target=ticker.run_timer,
            kwargs={"interval": interval, "stop": stop, "tick": counting_tick},
        )
        thread.start()
        thread.join(timeout=5)
        assert not thread.is_alive(), "the loop did not stop when asked"
        self.calls = calls
        return stop

    def test_the_loop_polls_every_half_to_one_and_a_half_intervals(self):
        """The waits the loop asks for, not wall-clock gaps (a shared machine stretches those;
        bench/ measures how late the timers really are)."""

        class RecordingStop(threading.Event):
            waits: list[float] = []

            def wait(self, timeout=None):
                self.waits.append(timeout)
                return self.is_set()

        stop, calls = RecordingStop(), []

        def tick():
            calls.append(len(calls))
            if len(calls) >= 4:
                stop.set()
            return 0

        with patch("workflows_app.runtime.ticker.random.random", side_effect=[0.0, 1.0, 0.5, 0.0]):
            ticker.run_timer(interval=0.2, stop=stop, tick=tick)
        assert len(calls) == 4
        assert [round(w, 6) for w in stop.waits] == [0.1, 0.3, 0.2, 0.1]

    def test_the_loop_survives_a_failing_pass(self):
        def tick(n):
            if n == 1:
                raise RuntimeError("database is locked")
            return 0

        with self.assertLogs("workflows_app.runtime.ticker", "ERROR") as logs:
            self.run_loop(tick, passes=3)
        assert len(self.calls) == 3
        assert "timer pass failed" in logs.output[0]

    def test_the_thread_starts_once_per_process_from_the_post_spawn_signal(self):
        from django_q.signals import post_spawn

        with (
            patch.object(ticker, "_started", threading.Event()),
            patch("workflows_app.runtime.ticker.threading.Thread") as thread,
        ):
            post_spawn.send(sender="django_q", proc_name="Process-1")
            post_spawn.send(sender="django_q", proc_name="Process-1")
        thread.assert_called_once()
        assert thread.call_args.kwargs["target"] is ticker.run_timer
        assert thread.call_args.kwargs["daemon"] is True
        thread.return_value.start.assert_called_once_with()

    @override_settings(HMS_TIMER_INTERVAL=0)
    def test_an_interval_of_zero_turns_the_thread_off(self):
        with (
            patch.object(ticker, "_started", threading.Event()),
            patch("workflows_app.runtime.ticker.threading.Thread") as thread,
        ):
            assert ticker.start_timer_thread() is None
        thread.assert_not_called()


class TimerPassTests(LocalServerMixin, TestCase):
    def setUp(self):
        self.queue = StandInQueue(self)
        self.service = ScriptedService(self.server, replies=[Reply(503)])
        make_service("remoteSvc", "http", url=self.service.url, timeout_seconds=5)
        self.definition = simple_workflow(
            "remote",
            steps=[{"id": "call", "service": "remoteSvc", "retry": {"max": 2, "backoff": "10s"}}],
        )

    def waiting_retry(self) -> StepRun:
        instance = self.queue.start(self.definition)
        self.queue.work()
        run = StepRun.objects.get(instance=instance)
        assert run.state == RunState.QUEUED
        return run

    def test_a_pass_with_nothing_due_makes_one_query_and_no_change(self):
        run = self.waiting_retry()
        with self.assertNumQueries(1):
            assert ticker.act_on_due(now=run.wake_at - timedelta(seconds=1)) == 0
        assert self.queue.messages == []

    def test_a_pass_sends_a_due_retry_to_the_workers(self):
        run = self.waiting_retry()
        acted = self.queue.committed(ticker.act_on_due, now=run.wake_at)
        assert acted == 1
        assert self.queue.messages == [(StandInQueue.RUN_STEP, (str(run.pk), 1))]
        self.queue.work()
        assert [r.attempt for r in self.service.received] == [1, 2]

    def test_a_pass_works_off_a_backlog_in_batches_and_always_ends(self):
        runs = [self.waiting_retry() for _ in range(3)]
        later = max(run.wake_at for run in runs)
        one_at_a_time = runtime.process_due

        def process_one(*, now):
            return one_at_a_time(now=now, limit=1)

        with patch("workflows_app.runtime.ticker.process_due", side_effect=process_one):
            assert ticker.act_on_due(now=later, max_batches=2) == 2
            assert ticker.act_on_due(now=later, max_batches=2) == 1

    def test_a_run_that_cannot_be_handled_does_not_stop_the_timers_for_the_others(self):
        make_user("bob")
        make_service("humanSvc", "human", group="reviewers")
        definition = simple_workflow(
            "esc",
            steps=[
                {
                    "id": "a",
                    "service": "humanSvc",
                    "timeout": "30s",
                    "onTimeout": "escalate",
                    "escalateTo": ["user:bob"],
                }
            ],
        )
        broken = StepRun.objects.get(instance=self.queue.start(definition))
        User.objects.filter(username="bob").delete()  # the escalation target is gone
        catalog.clear()
        retry = self.waiting_retry()
        later = max(broken.due_at, retry.wake_at)
        with self.assertLogs("workflows_app.runtime.sweep", "ERROR"):
            assert self.queue.tick(later) == 1
        assert self.queue.messages == [(StandInQueue.RUN_STEP, (str(retry.pk), 1))]
        broken.refresh_from_db()
        assert broken.wake_at > later  # postponed, not retried on every pass

    def test_a_pass_records_the_timer_heartbeat(self):
        with patch("workflows_app.runtime.schedules._last_beats", {}):
            ticker.timer_pass()
        assert Heartbeat.objects.get(name="timer").last_tick > timezone.now() - timedelta(seconds=5)


class AutomatedStepTimeoutTests(LocalServerMixin, TestCase):
    """A step whose service answered 202 and then said nothing until its `timeout` passed."""

    def setUp(self):
        self.queue = StandInQueue(self)
        self.service = ScriptedService(self.server, replies=[ACCEPTED])
        make_service("asyncSvc", "http", url=self.service.url, timeout_seconds=5)

    def silent_step(self, **step) -> StepRun:
        definition = simple_workflow(
            "slow",
            steps=[
                {"id": "call", "service": "asyncSvc", "timeout": "30s", **step},
                {"id": "after", "service": "okSvc"},
            ],
        )
        instance = self.queue.start(definition)
        self.queue.work()
        run = StepRun.objects.get(instance=instance, step_id="call")
        assert run.state == RunState.WAITING and run.wake_at == run.due_at
        return run

    def time_out(self, run: StepRun) -> WorkflowInstance:
        assert self.queue.tick(run.due_at - timedelta(seconds=1)) == 0  # not yet
        assert self.queue.tick(run.due_at) == 1
        run.refresh_from_db()
        return WorkflowInstance.objects.get(pk=run.instance_id)

    def timed_out_event(self, run) -> Event:
        return Event.objects.get(run=run, type=Event.Type.TIMED_OUT)

    def test_on_timeout_fail_fails_the_instance_with_the_reason(self):
        run = self.silent_step(onTimeout="fail")
        instance = self.time_out(run)
        assert (instance.status, run.state) == (Status.FAILED, RunState.FAILED)
        assert instance.error == {"step": "call", "detail": "no answer within 30s"}
        assert self.timed_out_event(run).detail["action"] == "fail"

    def test_an_http_step_without_on_timeout_fails(self):
        instance = self.time_out(self.silent_step())
        assert instance.status == Status.FAILED

    def test_on_timeout_skip_records_the_step_skipped_and_moves_on(self):
        run = self.silent_step(onTimeout="skip")
        instance = self.time_out(run)
        assert (run.state, run.result) == (RunState.SKIPPED, "timeout")
        assert instance.current_step == "after"
        self.queue.work()
        instance.refresh_from_db()
        assert instance.status == Status.COMPLETED

    def test_on_timeout_skip_routes_on_the_timeout_result(self):
        run = self.silent_step(onTimeout="skip", on={"timeout": "reject"})
        assert self.time_out(run).status == Status.REJECTED

    def test_on_timeout_retry_calls_the_service_again_with_the_same_key(self):
        run = self.silent_step(onTimeout="retry", retry={"max": 1, "backoff": "5s"})
        self.time_out(run)
        assert run.state == RunState.QUEUED
        assert self.queue.messages == [(StandInQueue.RUN_STEP, (str(run.pk), 1))]
        self.queue.work()
        assert [(r.attempt, r.idempotency_key) for r in self.service.received] == [
            (1, str(run.pk)),
            (2, str(run.pk)),
        ]
        run.refresh_from_db()
        assert run.state == RunState.WAITING and run.due_at > run.started_at + timedelta(seconds=30)

    def test_on_timeout_retry_fails_once_the_retries_are_spent(self):
        run = self.silent_step(onTimeout="retry", retry={"max": 1, "backoff": "5s"})
        self.time_out(run)
        self.queue.work()
        run.refresh_from_db()
        instance = self.time_out(run)
        assert instance.status == Status.FAILED
        assert instance.error["detail"] == "no answer within 30s, 2 attempts made"
        assert len(self.service.received) == 2

    def test_on_timeout_escalate_makes_the_step_a_task_for_the_first_backup(self):
        run = self.silent_step(onTimeout="escalate", escalateTo=["group:ops", "group:heads"])
        instance = self.time_out(run)
        assert (run.state, run.assignee_group.name, run.escalation_level) == (
            RunState.WAITING,
            "ops",
            1,
        )
        assert instance.status == Status.RUNNING
        event = Event.objects.get(run=run, type=Event.Type.ESCALATED)
        assert event.detail["to"] == "group:ops"
        make_user("olga", "ops")
        self.queue.committed(runtime.complete_task, run_id=run.pk, result="ok", actor="user:olga")
        self.queue.work()
        instance.refresh_from_db()
        assert instance.status == Status.COMPLETED

    def test_a_deadline_passing_while_the_request_is_in_flight_ignores_its_late_answer(self):
        self.service = ScriptedService(self.server, path="/fast", replies=[OK])
        make_service("asyncSvc", "http", url=self.service.url, timeout_seconds=5)
        definition = simple_workflow(
            "slow",
            steps=[{"id": "call", "service": "asyncSvc", "timeout": "30s", "onTimeout": "fail"}],
        )
        instance = self.queue.start(definition)
        run = StepRun.objects.get(instance=instance)
        real_call = dispatch.call

        def deadline_passes_during_the_call(**kwargs):
            self.queue.tick(run.due_at + timedelta(seconds=1))
            return real_call(**kwargs)

        with patch(
            "workflows_app.runtime.dispatch.call", side_effect=deadline_passes_during_the_call
        ):
            self.queue.work()
        instance.refresh_from_db()
        assert instance.status == Status.FAILED
        late = Event.objects.get(instance=instance, type=Event.Type.LATE_CALLBACK)
        assert (late.result, late.actor) == ("ok", "worker")


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_retry_reaches_the_service_after_its_due_time_and_completes(tmp_path, django_db_blocker):
    """A real qcluster: the service answers 503, then 200; backoff 2 s (jitter: 1-2 s)."""
    with local_http_server() as server, file_database(tmp_path, django_db_blocker) as env:
        service = ScriptedService(server, replies=[Reply(503, body="warming up"), OK])
        make_service("flakySvc", "http", url=service.url, timeout_seconds=5)
        definition = simple_workflow(
            "flaky",
            steps=[{"id": "call", "service": "flakySvc", "retry": {"max": 2, "backoff": "2s"}}],
        )
        with running_cluster(env) as cluster:
            instance, _ = runtime.start_instance(definition=definition, payload={})
            wait_until(lambda: len(service.received) >= 2, timeout=30, what="the retry")
            wait_until(
                lambda: WorkflowInstance.objects.get(pk=instance.pk).is_finished,
                timeout=10,
                what="the instance to finish",
            )
        event = Event.objects.get(instance=instance, type=Event.Type.RETRY_SCHEDULED)
        due = datetime.fromisoformat(event.detail["retry_at"]).timestamp()
        first, second = (r.at for r in service.received)
        late_by = second - due
        print(
            f"\nretry: first request {_clock(first)}, retry due {_clock(due)} "
            f"(backoff {event.detail['delay_seconds']}s), second request {_clock(second)}: "
            f"{late_by:+.3f}s after its due time"
        )
        assert WorkflowInstance.objects.get(pk=instance.pk).status == Status.COMPLETED
        assert len(service.received) == 2
        # Order, not latency: the retry never goes out before its due time (how late it is on
        # a loaded machine is printed above; bench/ measures it).
        assert first < due <= second, cluster.output


def _clock(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%H:%M:%S.%f")[:-3]
