"""Parallel branches at run time: several open runs, joins, cancellations, timers, retry."""

from datetime import timedelta
from unittest.mock import patch

import pytest
from django.db import IntegrityError, transaction
from django.test import TestCase

from tests.factories import committed, make_definition, make_service, run_queued, start
from workflows_app import runtime, tasks
from workflows_app.engine import TransitionNotAllowed
from workflows_app.models import Event, RunState, Status, StepRun
from workflows_app.runtime.dispatch import Outcome


def human(step_id, **fields):
    return {"id": step_id, "service": "approvalSvc", **fields}


def branch(branch_id, *steps, **fields):
    return {"id": branch_id, "steps": list(steps), **fields}


def permit(*branches, join="all", key="permit"):
    """validate (python) -> reviews (branches; zoning and fire reviews by default) -> notify."""
    branches = branches or (
        branch("zoning", human("zoning-review", on={"rejected": "reject"}), title="Zoning"),
        branch("fire", human("fire-review", on={"rejected": "reject"}), title="Fire safety"),
    )
    return {
        "id": key,
        "steps": [
            {"id": "validate", "service": "okSvc"},
            {
                "id": "reviews",
                "title": "Specialist reviews",
                "join": join,
                "parallel": list(branches),
            },
            {"id": "notify", "service": "okSvc"},
        ],
    }


def services():
    make_service("okSvc")
    make_service("approvalSvc", "human")
    make_service("httpSvc", "http", url="http://127.0.0.1:9/")


def open_runs(instance):
    runs = StepRun.objects.filter(instance=instance, state__in=["queued", "running", "waiting"])
    return {run.lane: run.step_id for run in runs}


def task(instance, step_id):
    return StepRun.objects.get(instance=instance, step_id=step_id, state=RunState.WAITING)


def decide(instance, step_id, result="approved", data=None):
    run = task(instance, step_id)
    reason = "The escape routes are too narrow." if result == "rejected" else ""
    return committed(
        runtime.complete_task,
        run_id=run.pk,
        result=result,
        data=data,
        actor="user:r",
        reason=reason,
    )


class BranchTests(TestCase):
    def setUp(self):
        services()
        self.instance = start(make_definition(permit()))

    def test_a_parallel_step_opens_its_own_run_and_one_per_branch(self):
        assert open_runs(self.instance) == {
            "": "reviews",
            "zoning": "zoning-review",
            "fire": "fire-review",
        }
        self.instance.refresh_from_db()
        assert (self.instance.status, self.instance.current_step) == (Status.RUNNING, "reviews")
        reviews = StepRun.objects.get(instance=self.instance, step_id="reviews")
        assert (reviews.state, reviews.assignee_group_id, reviews.wake_at) == (
            RunState.WAITING,
            None,
            None,
        )

    def test_the_first_branch_to_end_leaves_the_others_open(self):
        decide(self.instance, "zoning-review")
        assert open_runs(self.instance) == {"": "reviews", "fire": "fire-review"}

    def test_the_last_branch_to_end_fires_the_join_and_the_instance_moves_on(self):
        decide(self.instance, "fire-review", data={"escape": "ok"})
        decide(self.instance, "zoning-review", data={"zone": "R2"})
        self.instance.refresh_from_db()
        assert self.instance.status == Status.COMPLETED  # notify ran in the caller
        reviews = StepRun.objects.get(instance=self.instance, step_id="reviews")
        assert (reviews.state, reviews.result) == (RunState.SUCCEEDED, "ok")
        assert self.instance.context["zoning-review"] == {"zone": "R2"}
        assert self.instance.context["fire-review"] == {"escape": "ok"}

    def test_a_refusal_in_one_branch_ends_the_instance_and_cancels_the_others(self):
        decide(self.instance, "fire-review", "rejected")
        self.instance.refresh_from_db()
        assert self.instance.status == Status.REJECTED
        assert open_runs(self.instance) == {}
        zoning = StepRun.objects.get(instance=self.instance, step_id="zoning-review")
        assert zoning.state == RunState.CANCELLED
        assert zoning.error == "the application was refused at 'Fire review'"
        cancelled = Event.objects.filter(instance=self.instance, type=Event.Type.CANCELLED)
        assert {e.step: e.detail["cause"] for e in cancelled} == {
            "reviews": "rejected",
            "zoning-review": "rejected",
        }

    def test_the_reviewer_of_a_cancelled_task_is_told_why(self):
        zoning = task(self.instance, "zoning-review")
        decide(self.instance, "fire-review", "rejected")
        with pytest.raises(
            TransitionNotAllowed, match="was cancelled: the application was refused"
        ):
            committed(runtime.complete_task, run_id=zoning.pk, result="approved")

    def test_the_parallel_steps_own_run_takes_no_answer(self):
        reviews = StepRun.objects.get(instance=self.instance, step_id="reviews")
        with pytest.raises(TransitionNotAllowed, match="finishes when its branches do"):
            runtime.complete_task(run_id=reviews.pk, result="ok")

    def test_cancelling_the_instance_cancels_every_branch(self):
        runtime.cancel_instance(instance_id=self.instance.pk, reason="withdrawn", actor="user:s")
        states = StepRun.objects.filter(instance=self.instance).values_list("step_id", "state")
        assert dict(states) == {
            "validate": RunState.SUCCEEDED,
            "reviews": RunState.CANCELLED,
            "zoning-review": RunState.CANCELLED,
            "fire-review": RunState.CANCELLED,
        }

    def test_the_database_allows_one_open_run_per_lane(self):
        with pytest.raises(IntegrityError), transaction.atomic():
            StepRun.objects.create(
                instance=self.instance, step_id="fire-review", lane="fire", state="queued"
            )
        StepRun.objects.filter(instance=self.instance, lane="fire").update(state="succeeded")
        StepRun.objects.create(instance=self.instance, step_id="fire-review", lane="fire")


class JoinAnyTests(TestCase):
    def test_the_first_branch_to_end_cancels_the_other_and_its_reviewer_sees_why(self):
        services()
        instance = start(make_definition(permit(join="any")))
        zoning = task(instance, "zoning-review")
        decide(instance, "fire-review")
        instance.refresh_from_db()
        assert instance.status == Status.COMPLETED
        zoning.refresh_from_db()
        assert (zoning.state, zoning.error) == (
            RunState.CANCELLED,
            "branch 'Fire safety' finished first",
        )
        with pytest.raises(TransitionNotAllowed, match="finished first"):
            committed(runtime.complete_task, run_id=zoning.pk, result="approved")


class TimerTests(TestCase):
    def setUp(self):
        services()

    def test_a_task_in_a_branch_escalates_like_any_task(self):
        zoning = branch("zoning", human("zoning-review", timeout="1h"))
        instance = start(make_definition(permit(zoning, branch("fire", human("fire-review")))))
        run = task(instance, "zoning-review")
        runtime.process_due(now=run.due_at + timedelta(seconds=1))
        run.refresh_from_db()
        assert (run.state, run.escalation_level) == (RunState.WAITING, 1)
        assert open_runs(instance)["fire"] == "fire-review"

    def test_a_time_out_that_skips_routes_the_branch_on(self):
        zoning = branch("zoning", human("zoning-review", timeout="1h", onTimeout="skip"))
        instance = start(make_definition(permit(zoning, branch("fire", human("fire-review")))))
        run = task(instance, "zoning-review")
        committed(runtime.process_due, now=run.due_at + timedelta(seconds=1))
        assert open_runs(instance) == {"": "reviews", "fire": "fire-review"}

    def test_a_time_out_that_fails_fails_the_instance_and_retry_reopens_every_branch(self):
        zoning = branch("zoning", human("zoning-review", timeout="1h", onTimeout="fail"))
        instance = start(make_definition(permit(zoning, branch("fire", human("fire-review")))))
        run = task(instance, "zoning-review")
        committed(runtime.process_due, now=run.due_at + timedelta(seconds=1))
        instance.refresh_from_db()
        assert (instance.status, instance.error["step"]) == (Status.FAILED, "zoning-review")
        assert open_runs(instance) == {}
        runtime.retry_instance(instance_id=instance.pk, actor="user:s")
        instance.refresh_from_db()
        assert (instance.status, instance.current_step) == (Status.RUNNING, "reviews")
        assert open_runs(instance) == {
            "": "reviews",
            "zoning": "zoning-review",
            "fire": "fire-review",
        }

    def test_a_branch_that_ended_before_the_failure_stays_ended_after_retry(self):
        zoning = branch("zoning", human("zoning-review", timeout="1h", onTimeout="fail"))
        instance = start(make_definition(permit(zoning, branch("fire", human("fire-review")))))
        decide(instance, "fire-review")
        run = task(instance, "zoning-review")
        committed(runtime.process_due, now=run.due_at + timedelta(seconds=1))
        runtime.retry_instance(instance_id=instance.pk)
        assert open_runs(instance) == {"": "reviews", "zoning": "zoning-review"}
        decide(instance, "zoning-review")
        instance.refresh_from_db()
        assert instance.status == Status.COMPLETED


@pytest.mark.worker_path
class AutomatedStepTests(TestCase):
    def setUp(self):
        services()
        fire = branch("fire", {"id": "fire-check", "service": "httpSvc", "retry": {"max": 1}})
        self.instance = start(
            make_definition(permit(branch("zoning", human("zoning-review")), fire))
        )
        validate = StepRun.objects.get(instance=self.instance, step_id="validate")
        committed(tasks.run_step, str(validate.pk), validate.attempts)  # as a worker would

    def record(self, outcome):
        run = StepRun.objects.get(instance=self.instance, step_id="fire-check")
        claimed = runtime.claim_run(run_id=run.pk, attempts=run.attempts)
        return committed(runtime.record_outcome, claimed=claimed, outcome=outcome)

    def test_an_http_step_in_a_branch_waits_for_its_callback_and_the_callback_ends_the_branch(self):
        self.record(Outcome("accepted"))
        run = StepRun.objects.get(instance=self.instance, step_id="fire-check")
        assert run.state == RunState.WAITING
        committed(runtime.complete_task, run_id=run.pk, result="ok", actor="service:httpSvc")
        assert open_runs(self.instance) == {"": "reviews", "zoning": "zoning-review"}

    def test_a_step_that_fails_for_good_in_a_branch_fails_the_instance_and_cancels_the_rest(self):
        self.record(Outcome("failed", error="HTTP 400"))
        self.instance.refresh_from_db()
        assert (self.instance.status, self.instance.error) == (
            Status.FAILED,
            {"step": "fire-check", "detail": "HTTP 400"},
        )
        zoning = StepRun.objects.get(instance=self.instance, step_id="zoning-review")
        assert (zoning.state, zoning.error) == (RunState.CANCELLED, "'Fire check' failed")

    def test_retries_in_a_branch_are_scheduled_on_its_own_run(self):
        with patch("workflows_app.runtime.steps.jitter", return_value=0.5):
            self.record(Outcome("retry", error="HTTP 503"))
        run = StepRun.objects.get(instance=self.instance, step_id="fire-check")
        assert run.state == RunState.QUEUED and run.lane == "fire"


class NestedTests(TestCase):
    def test_an_inner_join_moves_its_branch_on_then_the_outer_join_fires(self):
        services()
        inner = {
            "id": "checks",
            "parallel": [branch("a", human("a1")), branch("b", human("b1"))],
        }
        outer = permit(branch("x", inner, human("x2")), branch("y", human("y1")))
        instance = start(make_definition(outer))
        assert open_runs(instance) == {
            "": "reviews",
            "x": "checks",
            "a": "a1",
            "b": "b1",
            "y": "y1",
        }
        decide(instance, "a1")
        decide(instance, "b1")
        assert open_runs(instance) == {"": "reviews", "x": "x2", "y": "y1"}
        decide(instance, "y1")
        decide(instance, "x2")
        instance.refresh_from_db()
        assert instance.status == Status.COMPLETED
        joined = StepRun.objects.filter(instance=instance, step_id__in=["checks", "reviews"])
        assert sorted(joined.values_list("step_id", "state")) == [
            ("checks", RunState.SUCCEEDED),
            ("reviews", RunState.SUCCEEDED),
        ]


class QueuedBranchesTests(TestCase):
    def test_python_steps_of_several_branches_all_run_after_the_start(self):
        services()
        python = (
            branch("x", {"id": "x1", "service": "okSvc"}),
            branch("y", {"id": "y1", "service": "okSvc"}),
        )
        instance = start(make_definition(permit(*python)))
        run_queued(instance)
        instance.refresh_from_db()
        assert instance.status == Status.COMPLETED
