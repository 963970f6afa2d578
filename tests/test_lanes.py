"""Lanes: branch ends, joins (all, any), cancellations, nesting, child instances. Pure."""

import itertools

from django.test import SimpleTestCase

from workflows_app import engine
from workflows_app.definitions import MAIN_LANE, parse_definition
from workflows_app.engine import Cancel, Plan, Position, TransitionNotAllowed
from workflows_app.models import Status

MAIN = MAIN_LANE


def task(step_id, **fields):
    return {"id": step_id, "service": "s", **fields}


def branch(branch_id, *steps):
    return {"id": branch_id, "steps": list(steps)}


def parallel(step_id, *branches, **fields):
    return {"id": step_id, "parallel": list(branches), **fields}


def make_spec(*steps):
    return parse_definition({"id": "wf", "steps": list(steps)}, source="<test>")


# validate -> reviews (zoning: z1, z2 | fire: f1) -> notify
PERMIT = make_spec(
    task("validate"),
    parallel("reviews", branch("zoning", task("z1"), task("z2")), branch("fire", task("f1"))),
    task("notify"),
)
# the same with join: any
FIRST = make_spec(
    task("validate"),
    parallel(
        "reviews", branch("zoning", task("z1"), task("z2")), branch("fire", task("f1")), join="any"
    ),
    task("notify"),
)
# reviews (a: checks (c1 | c2), a2 | b: b1) -> notify: a parallel step inside a branch
NESTED = make_spec(
    parallel(
        "reviews",
        branch(
            "a",
            parallel("checks", branch("c1", task("c1-step")), branch("c2", task("c2-step"))),
            task("a2"),
        ),
        branch("b", task("b1")),
    ),
    task("notify"),
)
DURING = {MAIN: "reviews", "zoning": "z1", "fire": "f1"}


def result(spec, lanes, step, outcome="ok", payload=None, context=None):
    return engine.after_result(
        spec, lanes, step, outcome, payload=payload or {}, context=context or {}
    )


class EnterTests(SimpleTestCase):
    def test_a_workflow_starts_in_the_main_lane(self):
        assert engine.begin(PERMIT) == Plan(Status.RUNNING, opens=(Position(MAIN, "validate"),))

    def test_entering_a_parallel_step_opens_its_own_run_and_the_first_step_of_each_branch(self):
        plan = result(PERMIT, {MAIN: "validate"}, "validate")
        assert plan == Plan(
            Status.RUNNING,
            opens=(Position(MAIN, "reviews"), Position("zoning", "z1"), Position("fire", "f1")),
        )

    def test_a_workflow_that_starts_with_a_parallel_step_opens_its_branches_at_once(self):
        assert engine.begin(NESTED).opens == (
            Position(MAIN, "reviews"),
            Position("a", "checks"),
            Position("c1", "c1-step"),
            Position("c2", "c2-step"),
            Position("b", "b1"),
        )


class BranchTests(SimpleTestCase):
    def test_a_branch_step_moves_on_inside_its_branch(self):
        assert result(PERMIT, DURING, "z1") == Plan(
            Status.RUNNING, opens=(Position("zoning", "z2"),)
        )

    def test_a_branch_may_loop_back_inside_itself(self):
        spec = make_spec(
            parallel(
                "p",
                branch("x", task("x1"), task("x2", on={"again": "x1"})),
                branch("y", task("y1")),
            )
        )
        plan = result(spec, {MAIN: "p", "x": "x2", "y": "y1"}, "x2", "again")
        assert plan == Plan(Status.RUNNING, opens=(Position("x", "x1"),))

    def test_a_step_that_is_not_open_in_its_lane_is_refused(self):
        with self.assertRaises(TransitionNotAllowed) as refused:
            result(PERMIT, DURING, "z2")
        assert str(refused.exception) == "step 'z2' is not open (its lane is at 'z1')"
        with self.assertRaises(TransitionNotAllowed):
            result(PERMIT, {MAIN: "reviews", "zoning": "z2"}, "f1")


class JoinAllTests(SimpleTestCase):
    def test_a_branch_that_ends_before_the_others_only_ends(self):
        plan = result(PERMIT, DURING, "f1")
        assert plan == Plan(Status.RUNNING, ended=("fire",))
        assert engine.lanes_after(PERMIT, DURING, "f1", plan) == {MAIN: "reviews", "zoning": "z1"}

    def test_the_last_branch_to_end_fires_the_join_and_the_main_lane_moves_on(self):
        plan = result(PERMIT, {MAIN: "reviews", "zoning": "z2"}, "z2")
        assert plan == Plan(
            Status.RUNNING,
            opens=(Position(MAIN, "notify"),),
            joins=(Position(MAIN, "reviews"),),
            ended=("zoning",),
        )
        assert engine.lanes_after(PERMIT, {MAIN: "reviews", "zoning": "z2"}, "z2", plan) == {
            MAIN: "notify"
        }

    def test_a_join_before_end_completes_the_instance(self):
        spec = make_spec(parallel("p", branch("x", task("x1")), branch("y", task("y1"))))
        plan = result(spec, {MAIN: "p", "y": "y1"}, "y1")
        assert plan == Plan(Status.COMPLETED, joins=(Position(MAIN, "p"),), ended=("y",))

    def test_a_branch_step_routed_to_end_ends_its_branch_early(self):
        spec = make_spec(
            parallel(
                "p",
                branch("x", task("x1", on={"skip": "end"}), task("x2")),
                branch("y", task("y1")),
            ),
            task("after"),
        )
        plan = result(spec, {MAIN: "p", "x": "x1", "y": "y1"}, "x1", "skip")
        assert plan == Plan(Status.RUNNING, ended=("x",))

    def test_the_join_routes_the_parallel_step_with_result_ok_and_its_next(self):
        spec = make_spec(
            task("a"),
            parallel(
                "p",
                branch("x", task("x1")),
                branch("y", task("y1")),
                next=[{"if": 'result == "ok"', "goto": "c"}],
            ),
            task("b"),
            task("c"),
        )
        plan = result(spec, {MAIN: "p", "x": "x1"}, "x1")
        assert plan.opens == (Position(MAIN, "c"),)

    def test_a_join_into_another_parallel_step_opens_its_branches(self):
        spec = make_spec(
            parallel("p", branch("x", task("x1")), branch("y", task("y1"))),
            parallel("q", branch("u", task("u1")), branch("v", task("v1"))),
        )
        plan = result(spec, {MAIN: "p", "y": "y1"}, "y1")
        assert plan.opens == (Position(MAIN, "q"), Position("u", "u1"), Position("v", "v1"))
        assert plan.joins == (Position(MAIN, "p"),)

    def test_every_order_of_completions_fires_the_join_exactly_once(self):
        # z1, z2 and f1 in every order the branches allow: one join, then notify, then end.
        for order in itertools.permutations(["z1", "z2", "f1"]):
            if order.index("z1") > order.index("z2"):
                continue
            lanes, joins = {MAIN: "validate"}, []
            for step in ("validate", *order, "notify"):
                plan = result(PERMIT, lanes, step)
                joins.extend(plan.joins)
                lanes = engine.lanes_after(PERMIT, lanes, step, plan)
            assert joins == [Position(MAIN, "reviews")], order
            assert plan.status == Status.COMPLETED and lanes == {}, order


class JoinAnyTests(SimpleTestCase):
    def test_the_first_branch_to_end_fires_the_join_and_cancels_the_others(self):
        plan = result(FIRST, DURING, "f1")
        assert plan == Plan(
            Status.RUNNING,
            opens=(Position(MAIN, "notify"),),
            joins=(Position(MAIN, "reviews"),),
            ended=("fire",),
            cancels=(Cancel("zoning", "z1", "join", "fire"),),
        )
        assert engine.lanes_after(FIRST, DURING, "f1", plan) == {MAIN: "notify"}

    def test_a_branch_still_inside_a_nested_parallel_step_is_cancelled_with_its_inner_lanes(self):
        spec = make_spec(
            parallel(
                "reviews",
                branch(
                    "a",
                    parallel(
                        "checks", branch("c1", task("c1-step")), branch("c2", task("c2-step"))
                    ),
                ),
                branch("b", task("b1")),
                join="any",
            ),
            task("notify"),
        )
        lanes = {MAIN: "reviews", "a": "checks", "c1": "c1-step", "c2": "c2-step", "b": "b1"}
        plan = result(spec, lanes, "b1")
        assert plan.cancels == (
            Cancel("a", "checks", "join", "b"),
            Cancel("c1", "c1-step", "join", "b"),
            Cancel("c2", "c2-step", "join", "b"),
        )
        assert engine.lanes_after(spec, lanes, "b1", plan) == {MAIN: "notify"}

    def test_with_a_single_branch_left_join_any_is_like_join_all(self):
        plan = result(FIRST, {MAIN: "reviews", "zoning": "z2"}, "z2")
        assert plan.cancels == () and plan.joins == (Position(MAIN, "reviews"),)


class EndingTests(SimpleTestCase):
    def test_reject_in_a_branch_ends_the_instance_and_cancels_every_other_lane(self):
        spec = make_spec(
            parallel(
                "reviews",
                branch("zoning", task("z1", on={"rejected": "reject"})),
                branch("fire", task("f1")),
            ),
            task("notify"),
        )
        plan = result(spec, {MAIN: "reviews", "zoning": "z1", "fire": "f1"}, "z1", "rejected")
        assert plan == Plan(
            Status.REJECTED,
            cancels=(
                Cancel(MAIN, "reviews", Status.REJECTED, "z1"),
                Cancel("fire", "f1", Status.REJECTED, "z1"),
            ),
        )
        assert engine.lanes_after(spec, {MAIN: "reviews"}, "z1", plan) == {}

    def test_fail_in_a_nested_branch_cancels_the_outer_lanes_too(self):
        spec = make_spec(
            parallel(
                "reviews",
                branch(
                    "a",
                    parallel(
                        "checks",
                        branch("c1", task("c1-step", next="fail")),
                        branch("c2", task("c2-step")),
                    ),
                ),
                branch("b", task("b1")),
            ),
        )
        lanes = {MAIN: "reviews", "a": "checks", "c1": "c1-step", "c2": "c2-step", "b": "b1"}
        plan = result(spec, lanes, "c1-step")
        assert plan.status == Status.FAILED
        assert [(c.lane, c.cause, c.by) for c in plan.cancels] == [
            (MAIN, Status.FAILED, "c1-step"),
            ("a", Status.FAILED, "c1-step"),
            ("c2", Status.FAILED, "c1-step"),
            ("b", Status.FAILED, "c1-step"),
        ]

    def test_a_step_that_fails_for_good_in_a_branch_fails_the_instance_with_its_error(self):
        plan = engine.after_failure(PERMIT, DURING, "f1", "gave up after 3 attempts")
        assert plan == Plan(
            Status.FAILED,
            cancels=(
                Cancel(MAIN, "reviews", Status.FAILED, "f1"),
                Cancel("zoning", "z1", Status.FAILED, "f1"),
            ),
            error="gave up after 3 attempts",
        )

    def test_a_condition_that_cannot_be_evaluated_in_a_branch_fails_the_instance(self):
        spec = make_spec(
            parallel(
                "p",
                branch("x", task("x1", next=[{"if": "payload.missing", "goto": "end"}])),
                branch("y", task("y1")),
            ),
        )
        plan = result(spec, {MAIN: "p", "x": "x1", "y": "y1"}, "x1")
        assert plan.status == Status.FAILED
        assert plan.error.startswith("step 'x1': condition `payload.missing` cannot be evaluated")
        assert [c.lane for c in plan.cancels] == [MAIN, "y"]

    def test_a_failure_of_a_single_lane_instance_cancels_nothing(self):
        spec = make_spec(task("a"), task("b"))
        assert engine.after_failure(spec, {MAIN: "a"}, "a", "boom") == Plan(
            Status.FAILED, error="boom"
        )


class NestedTests(SimpleTestCase):
    LANES = {MAIN: "reviews", "a": "checks", "c1": "c1-step", "c2": "c2-step", "b": "b1"}

    def test_an_inner_join_moves_its_branch_on_and_leaves_the_outer_parallel_step_open(self):
        lanes = {MAIN: "reviews", "a": "checks", "c2": "c2-step", "b": "b1"}
        plan = result(NESTED, lanes, "c2-step")
        assert plan == Plan(
            Status.RUNNING,
            opens=(Position("a", "a2"),),
            joins=(Position("a", "checks"),),
            ended=("c2",),
        )

    def test_an_inner_join_that_ends_the_last_outer_branch_fires_both_joins_innermost_first(self):
        spec = make_spec(
            parallel(
                "reviews",
                branch(
                    "a",
                    parallel(
                        "checks", branch("c1", task("c1-step")), branch("c2", task("c2-step"))
                    ),
                ),
                branch("b", task("b1")),
            ),
            task("notify"),
        )
        plan = result(spec, {MAIN: "reviews", "a": "checks", "c2": "c2-step"}, "c2-step")
        assert plan == Plan(
            Status.RUNNING,
            opens=(Position(MAIN, "notify"),),
            joins=(Position("a", "checks"), Position(MAIN, "reviews")),
            ended=("c2", "a"),
        )

    def test_every_interleaving_fires_each_join_once(self):
        steps = ["c1-step", "c2-step", "a2", "b1"]
        for order in itertools.permutations(steps):
            if order.index("a2") < max(order.index("c1-step"), order.index("c2-step")):
                continue  # a2 opens only after the inner join
            lanes, joins = dict(self.LANES), []
            for step in (*order, "notify"):
                plan = result(NESTED, lanes, step)
                joins.extend(plan.joins)
                lanes = engine.lanes_after(NESTED, lanes, step, plan)
            assert sorted(joins, key=lambda p: p.step) == [
                Position("a", "checks"),
                Position(MAIN, "reviews"),
            ], order
            assert plan.status == Status.COMPLETED


class ChildTests(SimpleTestCase):
    SPEC = make_spec(
        task("validate"),
        {"id": "inspection", "workflow": "site-inspection", "on": {"rejected": "reject"}},
        task("notify"),
    )
    LANES = {MAIN: "inspection"}

    def child(self, status, spec=None, lanes=None):
        return engine.after_child(
            spec or self.SPEC,
            lanes or self.LANES,
            "inspection",
            status,
            payload={},
            context={},
            child="SI-2026-000007",
        )

    def test_a_completed_child_is_result_ok(self):
        assert self.child(Status.COMPLETED) == Plan(
            Status.RUNNING, opens=(Position(MAIN, "notify"),)
        )

    def test_a_rejected_child_is_result_rejected_routed_by_on(self):
        assert self.child(Status.REJECTED) == Plan(Status.REJECTED)

    def test_a_failed_or_cancelled_child_fails_the_step(self):
        for status in (Status.FAILED, Status.CANCELLED):
            plan = self.child(status)
            assert plan == Plan(
                Status.FAILED, error=f"the sub-workflow SI-2026-000007 ended {status}"
            )

    def test_a_child_in_a_branch_ends_the_branch_and_may_fire_the_join(self):
        spec = make_spec(
            parallel(
                "p", branch("x", {"id": "inspection", "workflow": "w"}), branch("y", task("y1"))
            ),
            task("after"),
        )
        plan = self.child(Status.COMPLETED, spec, {MAIN: "p", "x": "inspection"})
        assert plan.joins == (Position(MAIN, "p"),) and plan.opens == (Position(MAIN, "after"),)

    def test_a_running_child_has_not_ended(self):
        with self.assertRaises(ValueError):
            self.child(Status.RUNNING)


class OrderTests(SimpleTestCase):
    def test_steps_sort_in_definition_order_depth_first(self):
        assert engine.in_definition_order(PERMIT, ["notify", "f1", "z2", "reviews"]) == [
            "reviews",
            "z2",
            "f1",
            "notify",
        ]
