"""Races on PostgreSQL: several threads act on the same instances at the same moment.

Each thread has its own database connection, so these are real concurrent transactions
with row locks. Every race must end in exactly one transition.
"""

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test import TransactionTestCase

from tests.factories import make_definition, make_seed_services, make_user, run_queued, start
from workflows_app import runtime
from workflows_app.engine import TransitionNotAllowed
from workflows_app.models import Event, RunState, Status, StepRun, WorkflowInstance
from workflows_app.runtime import NotAllowed

pytestmark = pytest.mark.postgres

REFUSALS = (TransitionNotAllowed, NotAllowed)


def race(*actions: Callable[[], object], rounds: int = 1) -> list[object]:
    """Run the actions in threads released together; return each one's result or exception."""
    results: list[object] = [None] * len(actions)
    barrier = threading.Barrier(len(actions), timeout=20)

    def run(index: int, action: Callable[[], object]) -> None:
        try:
            barrier.wait()
            results[index] = action()
        except Exception as exc:  # noqa: BLE001 - the caller inspects what each thread got
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a racing thread hung"
    return results


class RaceTestCase(TransactionTestCase):
    def setUp(self):
        if connection.vendor != "postgresql":
            pytest.skip("race tests need PostgreSQL row locks: run with DATABASE_URL=postgres://…")
        make_seed_services()
        self.backup_a = make_user("bea", "backup-reviewers")
        self.backup_b = make_user("bob", "backup-reviewers")
        self.reviewer = make_user("rita", "plan-reviewers")
        self.definition = make_definition()

    def waiting_task(self) -> StepRun:
        instance = start(self.definition, {"applicant": "Ada"})
        run_queued(instance)
        return StepRun.objects.get(instance=instance, state=RunState.WAITING)

    def escalated_task(self) -> StepRun:
        task = self.waiting_task()
        runtime.process_due(now=task.due_at + timedelta(seconds=1))
        return StepRun.objects.get(pk=task.pk)


class RaceTests(RaceTestCase):
    def test_two_backups_accepting_at_once_exactly_one_wins(self):
        for _ in range(5):
            task = self.escalated_task()
            results = race(
                lambda task=task: runtime.claim_task(run_id=task.pk, user=self.backup_a),
                lambda task=task: runtime.claim_task(run_id=task.pk, user=self.backup_b),
            )
            winners = [r for r in results if isinstance(r, StepRun)]
            losers = [r for r in results if isinstance(r, REFUSALS)]
            assert (len(winners), len(losers)) == (1, 1), results
            assert "already taken" in str(losers[0]) or "has claimed" in str(losers[0])
            assert Event.objects.filter(run=task, type=Event.Type.CLAIMED).count() == 1

    def test_two_sweeps_escalate_each_overdue_task_once(self):
        tasks = [self.waiting_task() for _ in range(12)]
        later = max(t.due_at for t in tasks) + timedelta(seconds=1)
        race(*[lambda: runtime.process_due(now=later) for _ in range(3)])
        for task in tasks:
            assert Event.objects.filter(run=task, type=Event.Type.ESCALATED).count() == 1
            assert StepRun.objects.get(pk=task.pk).escalation_level == 1

    def test_completion_racing_the_sweep_makes_one_transition(self):
        for _ in range(5):
            task = self.waiting_task()
            later = task.due_at + timedelta(seconds=1)
            race(
                lambda task=task: runtime.decide_task(
                    run_id=task.pk, user=self.reviewer, result="approved"
                ),
                lambda later=later: runtime.process_due(now=later),
            )
            task.refresh_from_db()
            instance = WorkflowInstance.objects.get(pk=task.instance_id)
            escalated = Event.objects.filter(run=task, type=Event.Type.ESCALATED).count()
            if task.state == RunState.SUCCEEDED:
                # notify ran in the decider's process right after its commit
                assert escalated == 0 and instance.status == "completed"
            else:
                assert escalated == 1 and instance.current_step == "approve"

    def test_complete_cancel_and_escalate_together_leave_one_outcome(self):
        for _ in range(5):
            task = self.waiting_task()
            results = race(
                lambda task=task: runtime.complete_task(run_id=task.pk, result="approved"),
                lambda task=task: runtime.cancel_instance(
                    instance_id=task.instance_id, reason="race"
                ),
                lambda task=task: runtime.process_due(now=task.due_at + timedelta(seconds=1)),
            )
            assert not [
                r for r in results if isinstance(r, Exception) and not isinstance(r, REFUSALS)
            ], results
            instance = WorkflowInstance.objects.get(pk=task.instance_id)
            notify_runs = StepRun.objects.filter(instance=instance, step_id="notify").count()
            if instance.status == Status.CANCELLED:
                assert not StepRun.objects.filter(
                    instance=instance, state__in=["queued", "running", "waiting"]
                ).exists()
            else:
                assert (
                    StepRun.objects.get(pk=task.pk).state == RunState.SUCCEEDED and notify_runs == 1
                )

    def test_retry_racing_itself_resumes_a_failed_instance_once(self):
        instance = start(self.definition, {})
        run_queued(instance)
        runtime.cancel_instance(instance_id=instance.pk, reason="setup")
        WorkflowInstance.objects.filter(pk=instance.pk).update(
            status=Status.FAILED, current_step="", error={"step": "approve", "detail": "x"}
        )
        results = race(*[lambda: runtime.retry_instance(instance_id=instance.pk) for _ in range(3)])
        assert sum(isinstance(r, WorkflowInstance) for r in results) == 1, results
        assert StepRun.objects.filter(instance=instance, state=RunState.WAITING).count() == 1
        assert Event.objects.filter(instance=instance, type=Event.Type.RETRIED).count() == 1
