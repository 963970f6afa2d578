"""The pure routing rules: start, results, conditions, outcomes, terminals, time-outs, backoff."""

from django.test import SimpleTestCase

from workflows_app import engine
from workflows_app.definitions import Duration, RetryPolicy, parse_definition
from workflows_app.engine import Move, TimeoutAction
from workflows_app.models import Status


def make_spec(steps, **extra):
    return parse_definition({"id": "wf", "steps": steps, **extra}, source="<test>")


def advance(spec, step, result, payload=None, context=None):
    return engine.advance(spec, step, result, payload=payload or {}, context=context or {})


LINEAR = [{"id": "a", "service": "s"}, {"id": "b", "service": "s"}, {"id": "c", "service": "s"}]


class StartTests(SimpleTestCase):
    def test_an_instance_starts_at_the_first_step(self):
        assert engine.start(make_spec(LINEAR)) == Move(Status.RUNNING, step="a")


class LinearRoutingTests(SimpleTestCase):
    def test_any_result_moves_to_the_following_step(self):
        spec = make_spec(LINEAR)
        assert advance(spec, "a", "ok") == Move(Status.RUNNING, step="b")
        assert advance(spec, "b", "whatever") == Move(Status.RUNNING, step="c")

    def test_the_last_step_ends_the_instance_completed(self):
        assert advance(make_spec(LINEAR), "c", "ok") == Move(Status.COMPLETED)


class OutcomeRoutingTests(SimpleTestCase):
    def spec(self, on):
        return make_spec([{"id": "a", "service": "s", "on": on}, *LINEAR[1:]])

    def test_a_result_named_in_on_goes_where_on_says(self):
        assert advance(self.spec({"rejected": "c"}), "a", "rejected") == Move(
            Status.RUNNING, step="c"
        )

    def test_a_result_not_named_in_on_follows_the_list(self):
        assert advance(self.spec({"rejected": "c"}), "a", "approved") == Move(
            Status.RUNNING, step="b"
        )

    def test_rejected_without_an_on_entry_ends_the_instance_rejected(self):
        assert advance(make_spec(LINEAR), "a", "rejected") == Move(Status.REJECTED)
        assert advance(self.spec({"other": "c"}), "a", "rejected") == Move(Status.REJECTED)

    def test_rejected_with_an_on_entry_goes_where_on_says(self):
        assert advance(self.spec({"rejected": "b"}), "a", "rejected") == Move(
            Status.RUNNING, step="b"
        )

    def test_rejected_is_not_routed_by_next_or_conditions(self):
        spec = make_spec(
            [{"id": "a", "service": "s", "next": [{"if": "true", "goto": "c"}]}, *LINEAR[1:]]
        )
        assert advance(spec, "a", "rejected") == Move(Status.REJECTED)
        plain = make_spec([{"id": "a", "service": "s", "next": "c"}, *LINEAR[1:]])
        assert advance(plain, "a", "rejected") == Move(Status.REJECTED)

    def test_only_an_on_entry_or_a_refusal_is_chosen_by_the_result(self):
        spec = self.spec({"done": "end"})
        assert engine.chosen_by_result(spec, "a", "done")
        assert engine.chosen_by_result(spec, "a", "rejected")
        assert not engine.chosen_by_result(spec, "a", "ok")
        assert not engine.chosen_by_result(make_spec(LINEAR), "c", "ok")

    def test_on_reject_ends_the_instance_rejected(self):
        assert advance(self.spec({"rejected": "reject"}), "a", "rejected") == Move(Status.REJECTED)

    def test_on_fail_ends_the_instance_failed(self):
        assert advance(self.spec({"broken": "fail"}), "a", "broken") == Move(Status.FAILED)

    def test_on_end_completes_the_instance_early(self):
        assert advance(self.spec({"done": "end"}), "a", "done") == Move(Status.COMPLETED)

    def test_on_takes_precedence_over_next(self):
        spec = make_spec([{"id": "a", "service": "s", "on": {"x": "c"}, "next": "b"}, *LINEAR[1:]])
        assert advance(spec, "a", "x") == Move(Status.RUNNING, step="c")
        assert advance(spec, "a", "y") == Move(Status.RUNNING, step="b")


class NextRoutingTests(SimpleTestCase):
    def test_a_plain_next_overrides_the_list_order(self):
        spec = make_spec([{"id": "a", "service": "s", "next": "c"}, *LINEAR[1:]])
        assert advance(spec, "a", "ok") == Move(Status.RUNNING, step="c")

    def test_next_may_loop_back_to_an_earlier_step(self):
        spec = make_spec([*LINEAR[:2], {"id": "c", "service": "s", "next": "a"}])
        assert advance(spec, "c", "ok") == Move(Status.RUNNING, step="a")

    def test_next_may_name_a_terminal(self):
        spec = make_spec([{"id": "a", "service": "s", "next": "reject"}, *LINEAR[1:]])
        assert advance(spec, "a", "ok") == Move(Status.REJECTED)


class ConditionRoutingTests(SimpleTestCase):
    def spec(self, branches):
        return make_spec([{"id": "a", "service": "s", "next": branches}, *LINEAR[1:]])

    def test_the_first_condition_that_holds_wins(self):
        spec = self.spec(
            [
                {"if": "payload.amount > 100", "goto": "c"},
                {"if": "payload.amount > 10", "goto": "b"},
            ]
        )
        assert advance(spec, "a", "ok", payload={"amount": 500}) == Move(Status.RUNNING, step="c")
        assert advance(spec, "a", "ok", payload={"amount": 50}) == Move(Status.RUNNING, step="b")

    def test_no_condition_holding_falls_through_to_the_following_step(self):
        spec = self.spec([{"if": "payload.amount > 100", "goto": "c"}])
        assert advance(spec, "a", "ok", payload={"amount": 1}) == Move(Status.RUNNING, step="b")

    def test_conditions_see_the_context_of_earlier_steps(self):
        spec = self.spec([{"if": "context.a.score >= 5", "goto": "end"}])
        assert advance(spec, "a", "ok", context={"a": {"score": 7}}) == Move(Status.COMPLETED)
        assert advance(spec, "a", "ok", context={"a": {"score": 2}}) == Move(
            Status.RUNNING, step="b"
        )

    def test_conditions_see_the_result(self):
        spec = self.spec([{"if": "result == 'rejected'", "goto": "reject"}])
        assert advance(spec, "a", "rejected") == Move(Status.REJECTED)

    def test_the_seed_style_docs_condition(self):
        spec = self.spec([{"if": "payload.docs == false", "goto": "c"}])
        assert advance(spec, "a", "ok", payload={"docs": False}) == Move(Status.RUNNING, step="c")
        assert advance(spec, "a", "ok", payload={"docs": True}) == Move(Status.RUNNING, step="b")

    def test_a_condition_on_a_missing_field_fails_the_instance_naming_the_expression(self):
        spec = self.spec([{"if": "payload.docs == false", "goto": "c"}])
        move = advance(spec, "a", "ok", payload={})
        assert move.status == Status.FAILED
        assert "payload.docs == false" in move.error and "step 'a'" in move.error

    def test_a_condition_that_is_not_boolean_fails_the_instance(self):
        spec = self.spec([{"if": "payload.amount", "goto": "c"}])
        move = advance(spec, "a", "ok", payload={"amount": 3})
        assert move.status == Status.FAILED and "not true/false" in move.error


class TimeoutTests(SimpleTestCase):
    def step(self, **fields):
        spec = make_spec([{"id": "a", "service": "s", "timeout": "1h", **fields}])
        return spec.step("a")

    def test_a_human_step_without_on_timeout_escalates_to_the_backup_group(self):
        action = engine.on_timeout(self.step(), service_kind="human", backup_group="backups")
        assert action == TimeoutAction("escalate", assignee="group:backups", level=1)

    def test_an_automated_step_without_on_timeout_fails(self):
        assert engine.on_timeout(self.step(), service_kind="http").kind == "fail"

    def test_escalation_climbs_the_ladder_one_level_at_a_time(self):
        step = self.step(onTimeout="escalate", escalateTo=["group:l1", "user:boss"])
        first = engine.on_timeout(step, service_kind="human", level=0)
        second = engine.on_timeout(step, service_kind="human", level=1)
        assert (first.assignee, first.level) == ("group:l1", 1)
        assert (second.assignee, second.level) == ("user:boss", 2)

    def test_escalate_to_takes_precedence_over_the_backup_group(self):
        step = self.step(onTimeout="escalate", escalateTo=["group:l1"])
        assert (
            engine.on_timeout(step, service_kind="human", backup_group="b").assignee == "group:l1"
        )

    def test_a_ladder_that_ran_out_is_exhausted(self):
        step = self.step(onTimeout="escalate", escalateTo=["group:l1"])
        action = engine.on_timeout(step, service_kind="human", level=1)
        assert action.exhausted and action.assignee is None and action.level == 2

    def test_no_ladder_and_no_backup_is_exhausted_at_once(self):
        action = engine.on_timeout(self.step(onTimeout="escalate"), service_kind="human")
        assert action.exhausted

    def test_fail_skip_and_retry_are_passed_through(self):
        for kind in ("fail", "skip", "retry"):
            assert engine.on_timeout(self.step(onTimeout=kind), service_kind="human").kind == kind


class RetryDelayTests(SimpleTestCase):
    policy = RetryPolicy(max=2, backoff=Duration(10, text="10s"))

    def test_max_two_allows_two_retries_after_the_first_attempt(self):
        assert engine.retry_delay(self.policy, 1) is not None
        assert engine.retry_delay(self.policy, 2) is not None
        assert engine.retry_delay(self.policy, 3) is None

    def test_backoff_doubles_with_each_attempt(self):
        exact = lambda: 1.0  # noqa: E731 - the top of the jitter range
        assert engine.retry_delay(self.policy, 1, jitter=exact) == 10
        assert engine.retry_delay(self.policy, 2, jitter=exact) == 20

    def test_jitter_keeps_at_least_half_the_backoff(self):
        assert engine.retry_delay(self.policy, 2, jitter=lambda: 0.0) == 10

    def test_retry_after_is_honoured_when_longer_than_the_backoff(self):
        assert engine.retry_delay(self.policy, 1, retry_after=120, jitter=lambda: 0.0) == 120

    def test_retry_after_never_shortens_the_backoff(self):
        assert engine.retry_delay(self.policy, 1, retry_after=1, jitter=lambda: 0.0) == 5

    def test_no_policy_uses_three_retries_of_ten_seconds(self):
        assert engine.retry_delay(None, 3) is not None
        assert engine.retry_delay(None, 4) is None

    def test_max_zero_means_a_single_attempt(self):
        assert engine.retry_delay(RetryPolicy(max=0), 1) is None
