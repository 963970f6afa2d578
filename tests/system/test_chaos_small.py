"""The chaos run at CI size, and the checks it ends with.

The checks (tests/system/chaos_checks.py) are shown here to catch each broken invariant on
made-up histories; the small run itself (tests/system/chaos.py, CHAOS_SIZE=small: two
qclusters, whole clusters and single workers SIGKILLed, pollers through gunicorn) runs in both
passes of `make test`, on that pass's database.
"""

import os
import re
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta

import dj_database_url
import pytest
from django.conf import settings
from django.db import connection
from django.test import SimpleTestCase

from tests.system import chaos_webhooks, harness, stores
from tests.system.chaos_checks import Facts, counts, summarise, verify

STEPS = ["fetch", "review", "score", "notify"]
T0 = datetime(2026, 1, 1)


def run(instance: int, step: str, n: int, state: str = "succeeded", attempts: int = 1, **more):
    return {
        "instance_id": instance,
        "step_id": step,
        "state": state,
        "attempts": attempts,
        "result": more.pop("result", "ok"),
        "output": more.pop("output", None),
        "created_at": T0 + timedelta(seconds=n),
        **more,
    }


def request(key: str, attempt: int, choice: str = "ok", step: str = "fetch") -> dict:
    return {"key": key, "attempt": attempt, "step": step, "instance": "u1", "choice": choice}


def completed_history() -> Facts:
    """One instance that completed: fetch took a 503 then an answer, score one answer."""
    runs = {
        "f": run(1, "fetch", 0, attempts=2, output={"attempt": 2}),
        "r": run(1, "review", 1, attempts=0, result="approved"),
        "s": run(1, "score", 2, output={"attempt": 1}),
        "n": run(1, "notify", 3),
    }
    log = [request("f", 1, "error"), request("f", 2), request("s", 1, step="score")]
    return Facts(
        steps=STEPS,
        http_steps={"fetch": 3, "score": 3},
        started=[1],
        instances={1: {"uuid": "u1", "status": "completed", "current_step": "", "error": None}},
        runs=runs,
        redelivered=Counter(),
        event_totals=Counter(retry_scheduled=1),
        log=log,
        kills=1,
        workers_per_cluster=3,
        task_timeouts=0,
    )


class ChaosChecksTests(SimpleTestCase):
    def test_a_whole_history_matching_the_log_has_no_problem(self):
        facts = completed_history()
        assert verify(facts) == []
        assert summarise(facts)["requests"] == 3 and summarise(facts)["retries"] == 1

    def test_a_lost_instance_is_reported(self):
        facts = completed_history()
        facts.started.append(2)
        assert verify(facts) == ["lost instances [2], unknown ones []"]

    def test_an_instance_still_running_is_reported(self):
        facts = completed_history()
        facts.instances[1].update(status="running", current_step="notify")
        facts.runs["n"]["state"] = "queued"
        assert verify(facts) == ["instance 1 is still running at notify (queued)"]

    def test_a_step_that_ran_twice_is_reported(self):
        facts = completed_history()
        facts.runs["s2"] = run(1, "score", 2.5, output={"attempt": 1})
        assert "is not ['fetch', 'review', 'score', 'notify'] in order" in verify(facts)[0]

    def test_a_gap_in_the_history_is_reported(self):
        facts = completed_history()
        del facts.runs["r"]
        assert "history ['fetch', 'score', 'notify']" in verify(facts)[0]

    def test_an_open_run_on_an_ended_instance_is_an_orphaned_task(self):
        facts = completed_history()
        facts.instances[1]["status"] = "rejected"
        facts.runs["r"].update(state="waiting", result="rejected")
        del facts.runs["s"], facts.runs["n"]
        facts.log.pop()
        assert verify(facts)[0] == (
            "instance 1 ended rejected with open runs ['review'] (orphaned task)"
        )

    def test_more_requests_than_the_retry_bound_are_reported(self):
        facts = completed_history()
        facts.http_steps["fetch"] = 0  # no retries allowed: one request at most
        assert verify(facts) == ["run f (fetch): 2 requests, 2 attempts, bound 1"]

    def test_a_redelivery_after_a_kill_allows_one_more_request(self):
        facts = completed_history()
        facts.http_steps["fetch"] = 0
        facts.redelivered["f"] = 1
        assert verify(facts) == []

    def test_two_requests_with_one_attempt_number_mean_two_workers_held_one_claim(self):
        facts = completed_history()
        facts.log[0]["attempt"] = 2
        assert "attempt numbers repeated [2, 2]" in verify(facts)[0]

    def test_an_answer_lost_without_a_redelivery_is_reported(self):
        facts = completed_history()
        facts.log[0]["choice"] = "ok"
        assert verify(facts) == ["run f (fetch): answers [1, 2] lost without a redelivery"]

    def test_a_success_the_service_never_answered_is_reported(self):
        facts = completed_history()
        facts.runs["s"]["output"] = {"attempt": 7}
        assert "succeeded with attempt 7; the service answered {1}" in verify(facts)[0]

    def test_more_redeliveries_than_kills_can_explain_are_reported(self):
        facts = completed_history()
        facts.redelivered.update({"f": 1, "s": 1})
        facts.workers_per_cluster = 1
        assert verify(facts) == [
            "2 redeliveries for 1 kills of 1-worker clusters and 0 task time-outs"
        ]
        facts.problems.clear()
        facts.task_timeouts = 1  # django-q2 killed an overrunning task: its lease was lost too
        assert verify(facts) == []

    def test_a_success_on_an_answer_that_came_late_but_within_the_time_out_fits(self):
        facts = completed_history()
        facts.log[1]["choice"] = "slow"  # 0.5-2 s late: this one came before the time-out
        assert verify(facts) == []

    def test_a_task_escalated_twice_to_one_level_is_reported_but_up_a_ladder_is_fine(self):
        facts = completed_history()
        facts.escalated.update({("r", 1): 1, ("r", 2): 1})  # backup group, then supervisors
        assert verify(facts) == []
        facts.escalated[("r", 1)] += 1
        assert verify(facts) == ["run r escalated 2 times to level 1"]

    def test_a_request_cut_short_by_its_callers_death_names_nothing_and_loses_nothing(self):
        facts = completed_history()
        facts.redelivered["f"] = 1
        cut = {"key": "f", "attempt": None, "step": None, "instance": None, "choice": "ok"}
        facts.log.insert(1, {**cut, "truncated": True})
        facts.runs["f"]["attempts"] = 3
        assert verify(facts) == []

    def test_the_pass_counts_name_lost_stuck_and_duplicated(self):
        facts = completed_history()
        facts.started.append(2)
        facts.runs["s2"] = run(1, "score", 2.5, output={"attempt": 1})
        verify(facts)
        assert counts(facts) == {"lost": 1, "stuck": 0, "duplicates": 1}

    def test_instances_of_several_workflows_are_checked_against_their_own_steps(self):
        facts = completed_history()
        facts.workflow_lanes = {"other": {"": ["fetch", "send"]}}
        facts.instances[1]["workflow"] = "other"
        assert "is not ['fetch', 'send'] in order" in verify(facts)[0]


LANES = {"": ["fetch", "checks", "notify"], "by-person": ["review"], "by-service": ["score"]}


def parallel_history(status: str = "completed", **runs) -> Facts:
    """One instance of the parallel chaos shape (docs/parallel.md): review and score in
    branches of `checks`; `runs` replaces or adds runs by key."""
    facts = completed_history()
    facts.steps, facts.lanes = LANES[""], LANES
    facts.runs = {
        "f": run(1, "fetch", 0, attempts=2, output={"attempt": 2}),
        "c": run(1, "checks", 1, attempts=0),
        "r": run(1, "review", 2, attempts=0, result="approved", lane="by-person"),
        "s": run(1, "score", 2, output={"attempt": 1}, lane="by-service"),
        "n": run(1, "notify", 4),
        **runs,
    }
    facts.runs = {key: value for key, value in facts.runs.items() if value}
    facts.instances[1]["status"] = status
    return facts


class ParallelChaosChecksTests(SimpleTestCase):
    def test_a_whole_parallel_history_has_no_problem(self):
        assert verify(parallel_history()) == []

    def test_a_refusal_in_one_branch_with_the_other_cancelled_fits(self):
        refused = run(1, "review", 2, attempts=0, result="rejected", lane="by-person")
        cancelled = run(1, "score", 2, state="cancelled", attempts=0, lane="by-service")
        gone = run(1, "checks", 1, state="cancelled", attempts=0)
        facts = parallel_history("rejected", r=refused, c=gone, n=None)
        facts.runs["s"] = cancelled
        facts.log = [request("f", 1, "error"), request("f", 2)]
        assert verify(facts) == []

    def test_an_answer_to_a_run_another_branch_cancelled_is_not_lost(self):
        refused = run(1, "review", 2, attempts=0, result="rejected", lane="by-person")
        cancelled = run(1, "score", 2, state="cancelled", lane="by-service")
        gone = run(1, "checks", 1, state="cancelled", attempts=0)
        facts = parallel_history("rejected", r=refused, c=gone, n=None)
        facts.runs["s"] = cancelled  # its request was answered after the cancellation
        assert verify(facts) == []
        facts.runs["s"]["state"] = "succeeded"
        assert "lost without a redelivery" in " ".join(verify(facts))

    def test_a_branch_step_run_twice_is_reported(self):
        again = run(1, "review", 3, attempts=0, result="approved", lane="by-person")
        problems = verify(parallel_history(r2=again))
        assert problems == [
            "instance 1 history ['review', 'review'] is not ['review'] in order (gap or repeat)"
        ]

    def test_a_completed_instance_without_its_join_is_reported(self):
        problems = verify(parallel_history(c=None))
        assert problems == [
            "instance 1 history ['fetch', 'notify'] is not ['fetch', 'checks', 'notify'] in "
            "order (gap or repeat)"
        ]


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_small_chaos_run_under_polling_load_keeps_every_invariant(tmp_path):
    """The CI size of `make chaos` on the pass's own database: SQLite + the ORM broker in the
    SQLite pass, PostgreSQL + Redis (a database of its own, "<test db>_chaos") in the other."""
    env = {**os.environ, "CHAOS_SIZE": "small", "CHAOS_WORKDIR": str(tmp_path)}
    if connection.vendor == "postgresql" and settings.REDIS_URL:
        database_url = os.environ.get("DATABASE_URL") or os.environ["TEST_DATABASE_URL"]
        name = dj_database_url.parse(database_url)["NAME"]
        chaos_url = stores.with_database_name(database_url, f"{name}_chaos")
        env |= {"CHAOS_DB": "postgres", "CHAOS_DATABASE_URL": chaos_url}
        env |= {"CHAOS_REDIS_URL": settings.REDIS_URL}
    else:
        env["CHAOS_DB"] = "sqlite"
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    process = subprocess.Popen(
        [sys.executable, "tests/system/chaos.py"],
        cwd=harness.ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        stdout, stderr = process.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        process.terminate()  # SIGTERM: the run stops its servers before it exits
        stdout, stderr = process.communicate(timeout=60)
    print(stdout)
    assert process.returncode == 0, stdout[-4000:] + stderr[-4000:]
    assert "chaos: OK" in stdout
    assert "lost 0, stuck 0, duplicates 0, API 5xx 0" in stdout
    # The flaky service is also a status-webhook subscriber (issue 17): all delivered, in order.
    assert re.search(r"webhooks [1-9][0-9]* sent in order, 0 undelivered", stdout)
    assert "/healthz at the end of the run: ok" in stdout


class WebhookCheckTests(SimpleTestCase):
    """tests/system/chaos_webhooks.check: the receiver's log against the outbox."""

    outbox = [
        {"message_id": "m1", "instance": "i1", "state": "delivered", "body": {"status": "running"}},
        {
            "message_id": "m2",
            "instance": "i1",
            "state": "delivered",
            "body": {"status": "completed"},
        },
    ]

    def test_messages_received_in_order_with_the_final_status_pass(self):
        received = [
            {"key": "m1", "choice": "error"},
            {"key": "m1", "choice": "ok"},
            {"key": "m2", "choice": "drop"},
            {"key": "m2", "choice": "slow"},
            {"key": "m2", "choice": "ok"},  # again after a lost answer: at least once
        ]
        assert chaos_webhooks.check(self.outbox, received, {"i1": "completed"}) == []

    def test_out_of_order_missing_undelivered_and_wrong_final_status_are_each_reported(self):
        received = [{"key": "m2", "choice": "ok"}, {"key": "m1", "choice": "ok"}]
        assert chaos_webhooks.check(self.outbox, received, {"i1": "completed"}) == [
            "webhooks of i1 were received out of order"
        ]
        only_errors = [{"key": "m1", "choice": "ok"}, {"key": "m2", "choice": "error"}]
        assert chaos_webhooks.check(self.outbox, only_errors, {"i1": "completed"}) == [
            "webhook m2 delivered but never received"
        ]
        pending = [self.outbox[0], {**self.outbox[1], "state": "pending"}]
        assert "webhook m2 is pending" in chaos_webhooks.check(
            pending, [{"key": "m1", "choice": "ok"}], {"i1": "completed", "i2": "failed"}
        )
        assert chaos_webhooks.check(
            self.outbox,
            [{"key": "m1", "choice": "ok"}, {"key": "m2", "choice": "ok"}],
            {"i1": "rejected", "i2": "failed"},
        ) == [
            "the last webhook of i1 says completed, the instance is rejected",
            "1 instances sent no status webhook at all",
        ]
