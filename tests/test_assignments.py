"""Human tasks: who may act, claims, escalation ladders, reminders, delegation, reassignment."""

from datetime import date, timedelta

import pytest
from django.core import mail
from django.test import TestCase, override_settings
from django.utils import timezone

from tests.factories import (
    make_definition,
    make_seed_services,
    make_service,
    make_user,
    run_queued,
    start,
)
from workflows_app import runtime
from workflows_app.engine import TransitionNotAllowed
from workflows_app.models import Delegation, Event, RunState, Status, StepRun
from workflows_app.runtime import NotAllowed, permissions


class TaskTestCase(TestCase):
    steps = None

    def setUp(self):
        make_seed_services()
        self.reviewer = make_user("rita", "plan-reviewers", email="rita@example.org")
        self.other_reviewer = make_user("rob", "plan-reviewers", email="rob@example.org")
        self.backup = make_user("bea", "backup-reviewers", email="bea@example.org")
        self.outsider = make_user("olga", "cleaners")
        self.supervisor = make_user("sam", "Supervisors", email="sam@example.org")
        document = None
        if self.steps:
            document = {"id": "building-permit", "steps": self.steps}
        self.definition = make_definition(document)

    def task(self, payload=None) -> StepRun:
        instance = start(
            self.definition, payload or {"applicant": "Ada", "email": "ada@example.org"}
        )
        run_queued(instance)
        return StepRun.objects.get(instance=instance, state=RunState.WAITING)


class WhoMayActTests(TaskTestCase):
    def test_a_member_of_the_assigned_group_may_approve(self):
        task = self.task()
        instance = runtime.decide_task(
            run_id=task.pk, user=self.reviewer, result="approved", reason="Plans comply."
        )
        assert instance.current_step == "notify"
        task.refresh_from_db()
        assert (task.result, task.completed_by, task.reason) == (
            "approved",
            "user:rita",
            "Plans comply.",
        )

    def test_someone_outside_the_group_is_refused_and_nothing_changes(self):
        task = self.task()
        with pytest.raises(NotAllowed, match="assigned to someone else"):
            runtime.decide_task(run_id=task.pk, user=self.outsider, result="approved")
        task.refresh_from_db()
        assert task.state == RunState.WAITING

    def test_a_backup_may_not_act_before_the_task_is_escalated_to_them(self):
        task = self.task()
        with pytest.raises(NotAllowed):
            runtime.decide_task(run_id=task.pk, user=self.backup, result="approved")

    def test_an_outcome_the_step_does_not_allow_is_refused(self):
        task = self.task()
        with pytest.raises(NotAllowed, match="not an outcome"):
            runtime.decide_task(run_id=task.pk, user=self.reviewer, result="maybe")

    def test_allowed_outcomes_include_results_named_in_on(self):
        make_definition(
            {
                "id": "building-permit",
                "steps": [
                    {"id": "validate", "service": "validationSvc"},
                    {"id": "approve", "service": "approvalSvc", "on": {"needs-docs": "validate"}},
                ],
            }
        )
        from workflows_app.queries.catalog import latest_definition

        self.definition = latest_definition("building-permit")
        assert permissions.allowed_results(self.task()) == ["approved", "rejected", "needs-docs"]

    def test_a_second_decision_is_refused_without_a_second_transition(self):
        task = self.task()
        runtime.decide_task(run_id=task.pk, user=self.reviewer, result="approved")
        with pytest.raises(TransitionNotAllowed):
            runtime.decide_task(run_id=task.pk, user=self.other_reviewer, result="rejected")
        assert StepRun.objects.filter(instance_id=task.instance_id, step_id="notify").count() == 1


class SeparationOfDutiesTests(TaskTestCase):
    def test_the_applicant_may_not_approve_their_own_application(self):
        task = self.task({"applicant": "Rita", "applicantUsername": "rita"})
        with pytest.raises(NotAllowed, match="separation of duties"):
            runtime.decide_task(run_id=task.pk, user=self.reviewer, result="approved")
        assert not permissions.may_act(self.reviewer, task)
        assert permissions.may_act(self.other_reviewer, task)

    def test_whoever_did_the_previous_step_may_not_approve_the_next(self):
        make_service("checkSvc", "human", group="plan-reviewers")
        self.definition = make_definition(
            {
                "id": "two-eyes",
                "steps": [
                    {"id": "check", "service": "checkSvc"},
                    {"id": "approve", "service": "approvalSvc"},
                ],
            }
        )
        instance = start(self.definition, {})
        check = StepRun.objects.get(instance=instance)
        runtime.decide_task(run_id=check.pk, user=self.reviewer, result="approved")
        approve = StepRun.objects.get(instance=instance, step_id="approve")
        with pytest.raises(NotAllowed, match="separation of duties"):
            runtime.decide_task(run_id=approve.pk, user=self.reviewer, result="approved")
        runtime.decide_task(run_id=approve.pk, user=self.other_reviewer, result="approved")

    def test_escalation_passes_over_a_level_naming_the_applicant(self):
        self.steps = None
        make_definition(
            {
                "id": "building-permit",
                "steps": [
                    {"id": "validate", "service": "validationSvc"},
                    {
                        "id": "approve",
                        "service": "approvalSvc",
                        "timeout": "1h",
                        "onTimeout": "escalate",
                        "escalateTo": ["user:bea", "group:backup-reviewers"],
                    },
                    {"id": "notify", "service": "notificationSvc"},
                ],
            }
        )
        from workflows_app.queries.catalog import latest_definition

        self.definition = latest_definition("building-permit")
        task = self.task({"applicantUsername": "bea"})
        runtime.process_due(now=task.due_at + timedelta(seconds=1))
        task.refresh_from_db()
        assert (task.assignee_user, task.assignee_group.name, task.escalation_level) == (
            None,
            "backup-reviewers",
            2,
        )
        event = Event.objects.get(run=task, type=Event.Type.ESCALATED)
        assert event.detail["passed_over"] == ["user:bea"]


class ClaimTests(TaskTestCase):
    def test_a_claimed_task_is_closed_to_the_rest_of_the_group(self):
        task = self.task()
        runtime.claim_task(run_id=task.pk, user=self.reviewer)
        with pytest.raises(NotAllowed, match="rita has claimed"):
            runtime.decide_task(run_id=task.pk, user=self.other_reviewer, result="approved")
        runtime.decide_task(run_id=task.pk, user=self.reviewer, result="approved")

    def test_of_two_claims_only_the_first_wins_and_the_second_is_told_who_has_it(self):
        task = self.task()
        runtime.claim_task(run_id=task.pk, user=self.reviewer)
        with pytest.raises((TransitionNotAllowed, NotAllowed), match="rita"):
            runtime.claim_task(run_id=task.pk, user=self.other_reviewer)

    def test_only_the_claimant_can_release_and_then_anyone_in_the_group_can_act(self):
        task = self.task()
        runtime.claim_task(run_id=task.pk, user=self.reviewer)
        with pytest.raises(NotAllowed):
            runtime.release_task(run_id=task.pk, user=self.other_reviewer)
        runtime.release_task(run_id=task.pk, user=self.reviewer)
        runtime.decide_task(run_id=task.pk, user=self.other_reviewer, result="approved")

    @override_settings(HMS_CLAIM_RELEASE_SECONDS=600)
    def test_a_claim_untouched_for_too_long_goes_back_to_the_group(self):
        task = self.task()
        runtime.claim_task(run_id=task.pk, user=self.reviewer)
        task.refresh_from_db()
        assert task.wake_at == task.claimed_at + timedelta(seconds=600)
        runtime.process_due(now=task.wake_at + timedelta(seconds=1))
        task.refresh_from_db()
        assert task.claimed_by is None
        assert Event.objects.filter(run=task, type=Event.Type.RELEASED).count() == 1


class EscalationLadderTests(TaskTestCase):
    steps = [
        {"id": "validate", "service": "validationSvc"},
        {
            "id": "approve",
            "service": "approvalSvc",
            "timeout": "48h",
            "onTimeout": "escalate",
            "escalateTo": ["group:backup-reviewers", "user:sam"],
        },
        {"id": "notify", "service": "notificationSvc"},
    ]

    def overdue(self, task):
        task.refresh_from_db()
        runtime.process_due(now=task.due_at + timedelta(seconds=1))
        task.refresh_from_db()
        return task

    def test_the_backup_accepts_the_escalated_task_and_approves_it(self):
        task = self.overdue(self.task())
        assert (task.escalation_level, task.assignee_group.name) == (1, "backup-reviewers")
        assert not permissions.may_act(self.reviewer, task)
        runtime.claim_task(run_id=task.pk, user=self.backup)
        instance = runtime.decide_task(run_id=task.pk, user=self.backup, result="approved")
        assert instance.current_step == "notify"

    def test_each_level_gets_a_new_deadline_of_the_same_length_and_is_recorded(self):
        task = self.task()
        first_due = task.due_at
        task = self.overdue(task)
        assert task.due_at - first_due == timedelta(hours=48, seconds=1)
        task = self.overdue(task)
        assert (task.escalation_level, task.assignee_user.username) == (2, "sam")
        levels = Event.objects.filter(run=task, type=Event.Type.ESCALATED).values_list(
            "detail__level", flat=True
        )
        assert list(levels) == [1, 2]

    def test_when_the_ladder_runs_out_the_supervisors_get_it_and_it_is_flagged(self):
        task = self.overdue(self.overdue(self.task()))
        task = self.overdue(task)
        assert task.escalation_exhausted and task.assignee_group.name == "Supervisors"
        assert task.due_at is None and task.state == RunState.WAITING

    def test_the_new_assignees_and_the_applicant_are_emailed_on_escalation(self):
        task = self.task()
        mail.outbox.clear()
        with self.captureOnCommitCallbacks(execute=True):
            self.overdue(task)
        from workflows_app.runtime import notifications

        run = StepRun.objects.get(pk=task.pk)
        assert notifications.send_task_email(str(run.pk), "escalated") == 1
        assert notifications.send_applicant_email(run.instance_id, "escalated") == 1
        assert mail.outbox[-2].to == ["bea@example.org"] and "Escalated" in mail.outbox[-2].subject
        assert mail.outbox[-1].to == ["ada@example.org"]


class ReminderTests(TaskTestCase):
    def test_reminders_go_out_at_half_and_nine_tenths_of_the_time_allowed(self):
        task = self.task()
        start_ = task.started_at
        assert task.wake_at == start_ + timedelta(hours=24)
        runtime.process_due(now=start_ + timedelta(hours=24, seconds=1))
        task.refresh_from_db()
        assert task.reminders_sent == 1
        assert task.wake_at == start_ + timedelta(hours=48) * 0.9
        runtime.process_due(now=task.wake_at)
        task.refresh_from_db()
        assert (task.reminders_sent, task.wake_at, task.escalation_level) == (2, task.due_at, 0)
        assert Event.objects.filter(run=task, type=Event.Type.REMINDED).count() == 2


class DelegationTests(TaskTestCase):
    steps = [
        {"id": "validate", "service": "validationSvc"},
        {"id": "approve", "service": "approvalSvc", "assignee": "user:rita"},
    ]

    def test_a_new_task_for_someone_out_of_office_goes_to_their_deputy(self):
        today = timezone.localdate()
        Delegation.objects.create(
            user=self.reviewer,
            deputy=self.other_reviewer,
            starts_on=today,
            ends_on=today + timedelta(days=3),
        )
        task = self.task()
        assert task.assignee_user == self.other_reviewer
        event = Event.objects.get(run=task, type=Event.Type.REASSIGNED)
        assert (event.detail["from"], event.detail["to"]) == ("user:rita", "user:rob")

    def test_a_delegation_outside_its_dates_changes_nothing(self):
        Delegation.objects.create(
            user=self.reviewer,
            deputy=self.other_reviewer,
            starts_on=date(2020, 1, 1),
            ends_on=date(2020, 1, 2),
        )
        assert self.task().assignee_user == self.reviewer


class ReassignTests(TaskTestCase):
    def test_a_supervisor_reassigns_with_a_reason_and_the_history_says_who_from_whom_to_whom_why(
        self,
    ):
        task = self.task()
        runtime.reassign_task(
            run_id=task.pk, to="user:bea", reason="Rita is ill", actor=self.supervisor
        )
        task.refresh_from_db()
        assert task.assignee_user == self.backup and task.assignee_group is None
        event = Event.objects.get(run=task, type=Event.Type.REASSIGNED)
        assert (event.actor, event.detail) == (
            "user:sam",
            {"from": "group:plan-reviewers", "to": "user:bea", "reason": "Rita is ill"},
        )
        runtime.decide_task(run_id=task.pk, user=self.backup, result="approved")

    def test_a_reviewer_may_not_reassign(self):
        task = self.task()
        with pytest.raises(NotAllowed, match="only supervisors"):
            runtime.reassign_task(run_id=task.pk, to="user:rob", reason="x", actor=self.reviewer)

    def test_a_reassignment_needs_a_reason_and_an_existing_target(self):
        task = self.task()
        with pytest.raises(ValueError, match="reason"):
            runtime.reassign_task(run_id=task.pk, to="user:rob", reason=" ", actor=self.supervisor)
        with pytest.raises(ValueError, match="does not exist"):
            runtime.reassign_task(
                run_id=task.pk, to="user:nobody", reason="x", actor=self.supervisor
            )


class WorkingTimeDeadlineTests(TaskTestCase):
    steps = [
        {"id": "validate", "service": "validationSvc"},
        {"id": "approve", "service": "approvalSvc", "timeout": "2 working days"},
    ]

    def test_a_working_time_deadline_skips_the_weekend(self):
        from datetime import datetime
        from zoneinfo import ZoneInfo

        from workflows_app.definitions import parse_duration
        from workflows_app.runtime.guards import due_time

        friday_3pm = datetime(2026, 11, 27, 15, 0, tzinfo=ZoneInfo("Europe/Brussels"))
        due = due_time(parse_duration("2 working days"), friday_3pm)
        assert due == datetime(2026, 12, 1, 15, 0, tzinfo=ZoneInfo("Europe/Brussels"))


class SweepScheduleTests(TestCase):
    def test_exactly_one_sweep_schedule_exists_however_often_it_is_ensured(self):
        from django_q.models import Schedule

        from workflows_app.runtime.schedules import SWEEP, ensure_schedules

        Schedule.objects.create(name=SWEEP, func="x")  # a duplicate left by an old deploy
        for _ in range(3):
            ensure_schedules()
        rows = Schedule.objects.filter(name=SWEEP)
        assert rows.count() == 1 and rows.get().func == "workflows_app.tasks.sweep"


def test_status_reads_escalated_for_an_escalated_task(db):
    make_seed_services()
    instance = start(make_definition(), {})
    run_queued(instance)
    task = StepRun.objects.get(instance=instance, state=RunState.WAITING)
    runtime.process_due(now=task.due_at + timedelta(seconds=1))
    from workflows_app.web.serializers import instance_status

    steps = {s["id"]: s["state"] for s in instance_status(instance)["steps"]}
    assert steps == {"validate": "done", "approve": "escalated", "notify": "upcoming"}
    assert instance_status(instance)["status"] == Status.RUNNING


class BulkEscalationTests(TaskTestCase):
    def test_many_overdue_group_tasks_are_each_escalated_once_with_their_history(self):
        from workflows_app.runtime.escalation import escalate_due as escalate_in_bulk

        tasks = [self.task() for _ in range(7)]
        later = max(t.due_at for t in tasks) + timedelta(seconds=1)
        assert escalate_in_bulk(now=later, limit=3) == 3  # one set-wise batch
        runtime.process_due(now=later)
        runtime.process_due(now=later)
        for task in tasks:
            task.refresh_from_db()
            assert (task.escalation_level, task.assignee_group.name) == (1, "backup-reviewers")
            types = list(Event.objects.filter(run=task).values_list("type", flat=True))
            assert types == [Event.Type.TIMED_OUT, Event.Type.ESCALATED]

    def test_a_task_completed_meanwhile_is_left_alone(self):
        from workflows_app.runtime.escalation import escalate_due as escalate_in_bulk

        done, waiting = self.task(), self.task()
        runtime.decide_task(run_id=done.pk, user=self.reviewer, result="approved")
        later = max(done.due_at, waiting.due_at) + timedelta(seconds=1)
        assert escalate_in_bulk(now=later) == 1
        done.refresh_from_db()
        assert done.state == RunState.SUCCEEDED and done.escalation_level == 0
        assert not Event.objects.filter(run=done, type=Event.Type.ESCALATED).exists()
