"""Escalation after an outage: while no worker runs, several reviewers' deadlines pass; when
the workers come back, each overdue task is escalated exactly once (one `escalated` history
event, one email to the backup reviewer), however many sweeps and timer threads find it at
once.

Three shapes: the sweep run twice in a row (StandInQueue, the test's clock passed as `now`),
two sweeps in two threads with their own connections (the SQLite file or PostgreSQL), and a
real qcluster of two workers started after the deadlines have passed (SQLite file).
"""

import re
import threading
from collections import Counter
from datetime import timedelta
from unittest.mock import patch

import pytest
from django.core import mail
from django.test import TestCase
from django.utils import timezone

from tests.factories import make_definition, make_seed_services, make_user, run_queued, start
from tests.integration_helpers import StandInQueue, file_database, running_cluster, wait_until
from tests.test_concurrency import RaceTestCase, race
from workflows_app import runtime
from workflows_app.models import Event, RunState, StepRun

TASKS = 4


def escalations(task) -> int:
    return Event.objects.filter(run=task, type=Event.Type.ESCALATED).count()


class EscalationAfterOutageTests(TestCase):
    def setUp(self):
        make_seed_services()
        make_user("rita", "plan-reviewers", email="rita@example.org")
        make_user("bea", "backup-reviewers", email="bea@example.org")
        self.queue = StandInQueue(self)
        self.definition = make_definition()

    def overdue_tasks(self) -> list[StepRun]:
        """TASKS applications waiting for a reviewer; nobody works on them."""
        tasks = []
        for number in range(TASKS):
            instance = self.queue.start(self.definition, {"applicant": f"Ada {number}"})
            self.queue.work()  # validation, then the approval task (and its email)
            tasks.append(StepRun.objects.get(instance=instance, state=RunState.WAITING))
        return tasks

    def test_each_overdue_task_escalates_once_when_the_sweep_runs_twice_after_the_outage(self):
        tasks = self.overdue_tasks()
        mail.outbox.clear()
        # The workers were down for three days: every 48-hour deadline passed meanwhile.
        back = max(task.due_at for task in tasks) + timedelta(days=1)
        first, second = self.queue.tick(back), self.queue.tick(back)
        self.queue.work()  # the emails the escalations queued
        assert first >= TASKS and second == 0
        for task in tasks:
            task.refresh_from_db()
            assert escalations(task) == 1
            assert (task.escalation_level, task.assignee_group.name) == (1, "backup-reviewers")
            assert task.due_at == back + timedelta(hours=48)  # a new deadline from now
        subjects = Counter(m.subject for m in mail.outbox if m.to == ["bea@example.org"])
        assert len(subjects) == TASKS and set(subjects.values()) == {1}, subjects
        assert all(s.startswith("Escalated to you: ") for s in subjects)
        # A later sweep, before the new deadline, changes nothing.
        assert self.queue.tick(back + timedelta(hours=1)) == 0


class ConcurrentSweepsAfterOutageTests(RaceTestCase):
    def test_two_workers_sweeping_at_once_escalate_and_notify_each_task_once(self):
        make_user("cy", "backup-reviewers", email="cy@example.org")
        tasks = [self.waiting_task() for _ in range(TASKS)]
        back = max(task.due_at for task in tasks) + timedelta(days=1)
        sent, lock = [], threading.Lock()

        def enqueue(func, *args, **options):
            with lock:
                sent.append((func, args))

        with patch("workflows_app.runtime.queue.async_task", side_effect=enqueue):
            results = race(*[lambda: runtime.process_due(now=back)] * 2)
        assert all(type(r) is int for r in results), results  # neither sweep crashed
        emails = Counter(
            args[0]
            for func, args in sent
            if func.endswith("send_task_email") and args[1] == "escalated"
        )
        for task in tasks:
            assert escalations(task) == 1
            assert StepRun.objects.get(pk=task.pk).escalation_level == 1
            assert emails[str(task.pk)] == 1, emails


@pytest.mark.integration
def test_a_cluster_restarted_after_the_deadlines_passed_escalates_each_task_once(
    tmp_path, django_db_blocker
):
    """Two workers' timer threads and the scheduled sweep all find the overdue tasks."""
    with file_database(tmp_path, django_db_blocker) as env:
        make_seed_services()
        make_user("bea", "backup-reviewers", email="bea@example.org")
        definition = make_definition()
        tasks = []
        for number in range(TASKS):
            instance = start(definition, {"applicant": f"Ada {number}"})
            run_queued(instance)
            tasks.append(StepRun.objects.get(instance=instance, state=RunState.WAITING))
        # The cluster was stopped while the deadlines passed: they lie in the past now.
        passed = timezone.now() - timedelta(hours=1)
        StepRun.objects.filter(pk__in=[t.pk for t in tasks]).update(due_at=passed, wake_at=passed)
        with running_cluster(env | {"HMS_WORKERS": "2"}) as cluster:
            wait_until(
                lambda: all(escalations(t) for t in tasks), timeout=60, what="the escalations"
            )
            subject = re.compile(r"Subject: Escalated to you: .* for (\S+)")
            wait_until(
                lambda: len(subject.findall(cluster.output)) >= TASKS,
                timeout=60,
                what="the escalation emails",
            )
            # The timers went on passing while the emails went out; one more sweep now finds
            # nothing to do either.
            runtime.process_due()
        for task in tasks:
            assert escalations(task) == 1, cluster.output
            task.refresh_from_db()
            assert task.escalation_level == 1 and task.due_at > timezone.now()
        cases = Counter(subject.findall(cluster.output))
        assert len(cases) == TASKS and set(cases.values()) == {1}, cases
