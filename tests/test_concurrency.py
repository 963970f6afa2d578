"""Races: several threads act on the same instances at the same moment, on both databases.

Each thread has its own database connection, so these are real concurrent transactions: row
locks on PostgreSQL; on SQLite the file database the worker-path tests use, where IMMEDIATE
transactions and the busy timeout make writers take turns (the shape `make run` ships, a web
server and 2 workers on one file). Every race must end in exactly one transition, each side
must have been told what happened to it (a side that crashed fails the test even when the
other reached the end state), and each race runs ROUNDS times, printing which side won how
often: every ordering that occurs must be a valid one.
"""

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test import Client, TransactionTestCase

from tests.factories import make_definition, make_seed_services, make_user, run_queued, start
from tests.integration_helpers import file_database
from workflows_app import runtime
from workflows_app.engine import TransitionNotAllowed
from workflows_app.models import Event, RunState, Status, StepRun, WorkflowInstance
from workflows_app.runtime import NotAllowed

REFUSALS = (TransitionNotAllowed, NotAllowed)
HTMX = {"HTTP_HX_REQUEST": "true"}
ROUNDS = 20


def race(*actions: Callable[[], object]) -> list[object]:
    """Run the actions in threads released together; return each one's result or exception.

    Each thread opens its own connection to the test's database (the SQLite file or the
    PostgreSQL test database), as separate processes would.
    """
    database = dict(connections["default"].settings_dict)
    wrapper = type(connections["default"])
    results: list[object] = [None] * len(actions)
    barrier = threading.Barrier(len(actions), timeout=20)

    def run(index: int, action: Callable[[], object]) -> None:
        connections["default"] = wrapper(dict(database), alias="default")
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
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a racing thread hung"
    return results


def report(name: str, orderings: Counter) -> None:
    """Which side won how often (pytest -s shows it; a failure shows it too)."""
    print(f"\n{name} on {connection.vendor}, {sum(orderings.values())} rounds: {dict(orderings)}")


class RaceTestCase(TransactionTestCase):
    @pytest.fixture(autouse=True)
    def _shared_database(self, tmp_path, django_db_blocker):
        """SQLite: a file every thread can open (the suite's in-memory database is one
        connection's); PostgreSQL: the test database as it is."""
        if connection.vendor == "sqlite":
            with file_database(tmp_path, django_db_blocker):
                yield
        else:
            yield

    def setUp(self):
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
        orderings: Counter = Counter()
        for _ in range(ROUNDS):
            task = self.escalated_task()
            a, b = race(
                lambda task=task: runtime.claim_task(run_id=task.pk, user=self.backup_a),
                lambda task=task: runtime.claim_task(run_id=task.pk, user=self.backup_b),
            )
            # Each side was told: one has the task, the other that it is taken.
            match (a, b):
                case (StepRun(), TransitionNotAllowed() | NotAllowed() as refused):
                    winner, loser = self.backup_a, refused
                case (TransitionNotAllowed() | NotAllowed() as refused, StepRun()):
                    winner, loser = self.backup_b, refused
                case _:
                    raise AssertionError(f"not one winner and one refusal: {a!r}, {b!r}")
            assert "already taken" in str(loser) or "has claimed" in str(loser), loser
            assert StepRun.objects.get(pk=task.pk).claimed_by == winner
            assert Event.objects.filter(run=task, type=Event.Type.CLAIMED).count() == 1
            orderings[winner.username] += 1
        report("claim vs claim", orderings)

    def test_two_reviewers_claiming_in_the_inbox_at_once_one_wins_the_other_hears_who(self):
        """Both pages were loaded before either claim; the two POSTs arrive together."""
        colleague = make_user("carl", "plan-reviewers")
        clients = {}
        for user in (self.reviewer, colleague):
            clients[user.username] = Client()
            clients[user.username].force_login(user)
        orderings: Counter = Counter()
        for _ in range(ROUNDS):
            task = self.waiting_task()
            url = f"/tasks/{task.pk}/claim"
            answers = dict(
                zip(
                    clients,
                    race(*[lambda c=c, url=url: c.post(url, **HTMX) for c in clients.values()]),
                    strict=True,
                )
            )
            statuses = {name: getattr(a, "status_code", a) for name, a in answers.items()}
            assert sorted(statuses.values()) == [200, 409], statuses
            winner = next(name for name, status in statuses.items() if status == 200)
            loser = next(name for name in answers if name != winner)
            assert "You claimed this task" in answers[winner].text
            assert f"already taken by {winner}" in answers[loser].text
            assert StepRun.objects.get(pk=task.pk).claimed_by.username == winner
            orderings[winner] += 1
        report("inbox claim vs claim", orderings)

    def test_two_sweeps_escalate_each_overdue_task_once(self):
        orderings: Counter = Counter()
        for _ in range(ROUNDS):
            tasks = [self.waiting_task() for _ in range(3)]
            later = max(t.due_at for t in tasks) + timedelta(seconds=1)
            results = race(*[lambda later=later: runtime.process_due(now=later) for _ in range(2)])
            # Each sweep returned a count (neither crashed); together they escalated each once.
            assert all(type(r) is int for r in results), results
            for task in tasks:
                assert Event.objects.filter(run=task, type=Event.Type.ESCALATED).count() == 1
                assert StepRun.objects.get(pk=task.pk).escalation_level == 1
            orderings["split" if all(results) else "one sweep did all"] += 1
        report("sweep vs sweep", orderings)

    def test_completion_racing_the_sweep_makes_one_transition(self):
        orderings: Counter = Counter()
        for _ in range(ROUNDS):
            task = self.waiting_task()
            later = task.due_at + timedelta(seconds=1)
            decided, swept = race(
                lambda task=task: runtime.decide_task(
                    run_id=task.pk, user=self.reviewer, result="approved"
                ),
                lambda later=later: runtime.process_due(now=later),
            )
            assert type(swept) is int, swept  # the sweep never crashes, whoever was first
            task.refresh_from_db()
            instance = WorkflowInstance.objects.get(pk=task.instance_id)
            escalated = Event.objects.filter(run=task, type=Event.Type.ESCALATED).count()
            if isinstance(decided, WorkflowInstance):  # the decision came first
                # notify ran in the decider's process right after its commit
                assert task.state == RunState.SUCCEEDED and escalated == 0
                ordering = "decision first"
                if instance.status == Status.RUNNING:
                    # The sweep ran at `later`, 48 h ahead, so the notify run the decider had
                    # just claimed looked like a lost worker's lease: it was redelivered and
                    # the decider's answer recorded as late. A worker then finishes it.
                    redelivered = Event.objects.filter(
                        instance=instance, type=Event.Type.REDELIVERED
                    )
                    assert redelivered.exists(), instance
                    run_queued(instance)
                    instance.refresh_from_db()
                    ordering += ", notify redelivered"
                assert instance.status == Status.COMPLETED
                orderings[ordering] += 1
            else:  # the sweep escalated first: the reviewer is told the task left them
                assert isinstance(decided, REFUSALS), decided
                assert task.state == RunState.WAITING and escalated == 1
                assert instance.current_step == "approve"
                orderings["escalation first"] += 1
        report("decision vs sweep", orderings)

    def test_complete_cancel_and_escalate_together_leave_one_outcome(self):
        orderings: Counter = Counter()
        for _ in range(ROUNDS):
            task = self.waiting_task()
            completed, cancelled, swept = race(
                lambda task=task: runtime.complete_task(run_id=task.pk, result="approved"),
                lambda task=task: runtime.cancel_instance(
                    instance_id=task.instance_id, reason="race"
                ),
                lambda task=task: runtime.process_due(now=task.due_at + timedelta(seconds=1)),
            )
            assert type(swept) is int, swept
            instance = WorkflowInstance.objects.get(pk=task.instance_id)
            notify_runs = StepRun.objects.filter(instance=instance, step_id="notify").count()
            if instance.status == Status.CANCELLED:
                # The cancel won; the completion was refused unless it came first and the
                # cancel ended the instance while notify ran.
                assert isinstance(cancelled, WorkflowInstance), cancelled
                assert isinstance(completed, (WorkflowInstance, *REFUSALS)), completed
                assert not StepRun.objects.filter(
                    instance=instance, state__in=["queued", "running", "waiting"]
                ).exists()
                orderings["cancel"] += 1
            else:
                assert isinstance(completed, WorkflowInstance), completed
                assert isinstance(cancelled, REFUSALS), cancelled  # it had already ended
                assert StepRun.objects.get(pk=task.pk).state == RunState.SUCCEEDED
                assert notify_runs == 1
                orderings["completion"] += 1
        report("complete vs cancel vs sweep", orderings)

    def test_retry_racing_itself_resumes_a_failed_instance_once(self):
        instance = start(self.definition, {})
        run_queued(instance)
        runtime.cancel_instance(instance_id=instance.pk, reason="setup")
        WorkflowInstance.objects.filter(pk=instance.pk).update(
            status=Status.FAILED, current_step="", error={"step": "approve", "detail": "x"}
        )
        results = race(*[lambda: runtime.retry_instance(instance_id=instance.pk) for _ in range(3)])
        assert sum(isinstance(r, WorkflowInstance) for r in results) == 1, results
        assert sum(isinstance(r, TransitionNotAllowed) for r in results) == 2, results
        assert StepRun.objects.filter(instance=instance, state=RunState.WAITING).count() == 1
        assert Event.objects.filter(instance=instance, type=Event.Type.RETRIED).count() == 1
