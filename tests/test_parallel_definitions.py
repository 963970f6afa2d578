"""Parallel steps (branches, joins) and workflow steps (sub-workflows) in definitions: pure."""

import json
from pathlib import Path
from typing import Any

from django.test import SimpleTestCase
from jsonschema import Draft202012Validator

from workflows_app.definitions import (
    MAIN_LANE,
    InvalidDefinition,
    Problem,
    load_text,
    parse_definition,
)

ROOT = Path(__file__).resolve().parent.parent


def task(step_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": step_id, "service": "approvalSvc", **fields}


def reviews(*branches: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A parallel step `reviews` with these branches (zoning and fire by default)."""
    default = [branch("zoning", task("zoning-review")), branch("fire", task("fire-review"))]
    return {"id": "reviews", "parallel": list(branches) or default, **fields}


def branch(branch_id: str, *steps: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"id": branch_id, "steps": list(steps), **fields}


def workflow(*steps: dict[str, Any]) -> dict[str, Any]:
    return {"id": "permit", "steps": [task("validate"), *steps, task("notify")]}


def problems_of(data: Any) -> list[Problem]:
    try:
        parse_definition(data, source="t.json")
    except InvalidDefinition as error:
        return error.problems
    raise AssertionError("the definition was accepted")


def only_problem(data: Any) -> Problem:
    problems = problems_of(data)
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


PERMIT_YAML = """\
id: permit
steps:
  - id: validate
    service: validationSvc
  - id: reviews
    title: Specialist reviews
    join: all
    parallel:
      - id: zoning
        title: Zoning
        steps:
          - id: zoning-review
            service: approvalSvc
            on: { rejected: reject }
      - id: fire
        steps:
          - id: fire-review
            service: approvalSvc
            timeout: 2d
            next: fire-visit
          - id: fire-visit
            workflow: site-inspection
            on: { rejected: fire-review }
  - id: notify
    service: notificationSvc
"""


class ParallelSpecTests(SimpleTestCase):
    def setUp(self):
        (self.spec,) = load_text(PERMIT_YAML, source="permit.yaml").workflows

    def test_a_parallel_step_holds_its_branches_in_order_with_their_steps(self):
        reviews = self.spec.step("reviews")
        assert reviews.kind == "parallel"
        assert [b.id for b in reviews.parallel] == ["zoning", "fire"]
        assert [s.id for s in reviews.parallel[1].steps] == ["fire-review", "fire-visit"]
        assert (reviews.join, reviews.service, reviews.display_title) == (
            "all",
            "",
            "Specialist reviews",
        )
        assert [b.display_title for b in reviews.parallel] == ["Zoning", "Fire"]

    def test_the_main_list_stays_the_workflow_steps_and_all_steps_go_depth_first(self):
        assert self.spec.step_ids == ("validate", "reviews", "notify")
        assert [s.id for s in self.spec.all_steps] == [
            *("validate", "reviews", "zoning-review", "fire-review", "fire-visit", "notify")
        ]
        assert [self.spec.order_of(s.id) for s in self.spec.all_steps] == list(range(6))
        assert self.spec.branch_ids == ("zoning", "fire")

    def test_each_step_knows_its_lane_and_each_branch_its_parallel_step(self):
        assert self.spec.lane_of("validate") == MAIN_LANE
        assert self.spec.lane_of("reviews") == MAIN_LANE
        assert self.spec.lane_of("fire-visit") == "fire"
        assert self.spec.fork_of("fire") == "reviews"
        assert self.spec.branch("zoning").steps[0].id == "zoning-review"
        assert not self.spec.is_single_lane

    def test_the_following_step_stays_in_its_own_list_and_a_branch_ends_after_its_last(self):
        assert self.spec.following("validate") == "reviews"
        assert self.spec.following("reviews") == "notify"
        assert self.spec.following("fire-review") == "fire-visit"
        assert self.spec.following("fire-visit") == "end"
        assert self.spec.following("zoning-review") == "end"

    def test_a_workflow_step_names_its_child_workflow_and_routes_like_any_step(self):
        visit = self.spec.step("fire-visit")
        assert (visit.kind, visit.workflow, dict(visit.on)) == (
            "workflow",
            "site-inspection",
            {"rejected": "fire-review"},
        )

    def test_join_defaults_to_all_and_may_be_any(self):
        spec = parse_definition(workflow(reviews()))
        assert spec.step("reviews").join == "all"
        spec = parse_definition(workflow(reviews(join="any")))
        assert spec.step("reviews").join == "any"

    def test_parallel_steps_nest_inside_branches(self):
        inner = {
            "id": "checks",
            "parallel": [branch("a", task("a1")), branch("b", task("b1"), task("b2"))],
        }
        spec = parse_definition(
            workflow(reviews(branch("x", inner, task("x2")), branch("y", task("y1"))))
        )
        assert spec.lane_of("b2") == "b"
        assert spec.fork_of("b") == "checks"
        assert spec.lane_of("checks") == "x"
        assert spec.following("checks") == "x2"
        assert spec.following("b2") == "end"

    def test_terminals_are_allowed_inside_branches(self):
        zoning = branch(
            "zoning", task("z1", on={"rejected": "reject", "broken": "fail"}, next="end")
        )
        parse_definition(workflow(reviews(zoning, branch("fire", task("f1")))))

    def test_a_seed_shaped_workflow_is_single_lane(self):
        assert parse_definition(workflow()).is_single_lane

    def test_a_later_problem_is_placed_on_the_line_of_a_branch_step(self):
        problem = self.spec.problem("no such workflow", step="fire-visit", path=("workflow",))
        assert (problem.step, problem.field, problem.line) == ("fire-visit", "workflow", 22)


class ParallelProblemTests(SimpleTestCase):
    def test_a_problem_inside_a_branch_names_the_step_field_and_line(self):
        text = PERMIT_YAML.replace("timeout: 2d", "timeout: 2x")
        with self.assertRaises(InvalidDefinition) as refused:
            load_text(text, source="permit.yaml")
        (problem,) = refused.exception.problems
        assert (problem.step, problem.field, problem.line) == ("fire-review", "timeout", 19)
        assert str(problem).startswith(
            "permit.yaml:19: workflow 'permit', step 'fire-review', field 'timeout': '2x'"
        )

    def test_a_target_in_another_branch_is_refused_naming_both_branches(self):
        zoning = branch("zoning", task("z1", next="f1"))
        problem = only_problem(workflow(reviews(zoning, branch("fire", task("f1")))))
        assert (problem.step, problem.field) == ("z1", "next")
        assert problem.message == (
            "'f1' belongs to branch 'fire'; a step inside branch 'zoning' goes to a step of "
            "the same branch, or to end (the branch ends), reject or fail"
        )

    def test_a_target_that_leaves_its_branch_for_a_main_step_is_refused(self):
        zoning = branch("zoning", task("z1", on={"rejected": "validate"}))
        problem = only_problem(workflow(reviews(zoning, branch("fire", task("f1")))))
        assert (problem.step, problem.field) == ("z1", "on.rejected")
        assert problem.message.startswith("'validate' is one of the main steps; a step inside ")

    def test_a_condition_target_that_leaves_its_branch_is_refused(self):
        goto = [{"if": "true", "goto": "notify"}]
        zoning = branch("zoning", task("z1", next=goto))
        problem = only_problem(workflow(reviews(zoning, branch("fire", task("f1")))))
        assert (problem.step, problem.field) == ("z1", "next[0].goto")
        assert "inside branch 'zoning'" in problem.message

    def test_a_main_step_cannot_go_into_a_branch(self):
        document = workflow(reviews())
        document["steps"][0]["next"] = "fire-review"
        problem = only_problem(document)
        assert (problem.step, problem.field) == ("validate", "next")
        assert problem.message == (
            "'fire-review' is inside branch 'fire' of parallel step 'reviews'; a main step "
            "cannot go into a branch: go to the parallel step (it starts all its branches), "
            "another main step, or end, reject or fail"
        )

    def test_a_main_step_may_go_to_the_parallel_step(self):
        document = workflow(reviews())
        document["steps"][-1]["on"] = {"again": "reviews"}
        parse_definition(document)

    def test_a_branch_is_not_a_target(self):
        zoning = branch("zoning", task("z1", next="fire"))
        problem = only_problem(workflow(reviews(zoning, branch("fire", task("f1")))))
        assert problem.message.startswith("'fire' is a branch; a step inside branch 'zoning'")

    def test_an_unknown_target_in_a_branch_suggests_a_step_of_that_branch(self):
        zoning = branch("zoning", task("zoning-review", next="zoning-reviw"), task("z2"))
        problem = only_problem(workflow(reviews(zoning, branch("fire", task("f1")))))
        assert problem.message == (
            "'zoning-reviw' is not a step of branch 'zoning'; did you mean 'zoning-review'? "
            "(use a step id, or end, reject or fail)"
        )

    def test_inner_branches_of_a_nested_parallel_step_keep_their_routes_inside(self):
        inner = {
            "id": "checks",
            "parallel": [branch("a", task("a1", next="x2")), branch("b", task("b1"))],
        }
        problem = only_problem(
            workflow(reviews(branch("x", inner, task("x2")), branch("y", task("y1"))))
        )
        assert (problem.step, problem.field) == ("a1", "next")
        assert problem.message.startswith("'x2' belongs to branch 'x'; a step inside branch 'a'")

    def test_a_step_id_used_in_two_branches_is_refused(self):
        problem = only_problem(
            workflow(reviews(branch("zoning", task("review")), branch("fire", task("review"))))
        )
        assert (problem.step, problem.field) == ("review", "id")
        assert problem.message == (
            "duplicate step id 'review'; a step of branch 'zoning' already uses it; ids of "
            "steps and branches are unique in the whole workflow"
        )

    def test_a_branch_step_may_not_reuse_a_main_step_id(self):
        problem = only_problem(
            workflow(reviews(branch("zoning", task("notify")), branch("fire", task("f1"))))
        )
        # Reported where the id is used again in document order: the main step after the branch.
        assert problem.message == (
            "duplicate step id 'notify'; a step of branch 'zoning' already uses it; ids of "
            "steps and branches are unique in the whole workflow"
        )

    def test_two_branches_with_one_id_are_refused(self):
        problem = only_problem(
            workflow(reviews(branch("zoning", task("z1")), branch("zoning", task("z2"))))
        )
        assert (problem.step, problem.field) == ("reviews", "parallel[1].id")
        assert problem.message.startswith(
            "duplicate branch id 'zoning'; a branch of parallel step 'reviews' already uses it"
        )

    def test_a_branch_and_a_step_may_not_share_an_id(self):
        problem = only_problem(
            workflow(reviews(branch("validate", task("z1")), branch("fire", task("f1"))))
        )
        assert problem.message == "duplicate branch id 'validate'; step #1 already uses it"

    def test_a_join_that_is_not_all_or_any_is_refused_with_a_suggestion(self):
        problem = only_problem(workflow(reviews(join="Any")))
        assert (problem.step, problem.field) == ("reviews", "join")
        assert problem.message == "join 'Any' is not one of all, any; did you mean 'any'?"

    def test_a_parallel_step_needs_at_least_two_branches(self):
        problem = only_problem(workflow(reviews(branch("zoning", task("z1")))))
        assert (problem.step, problem.field) == ("reviews", "parallel")
        assert problem.message == (
            "parallel must be a list of at least two branches, each {id, steps}; it is one "
            "branch (put its steps in the list in place of the parallel step instead)"
        )
        problem = only_problem(workflow({"id": "reviews", "parallel": {"zoning": []}}))
        assert problem.message.endswith("it is a mapping")

    def test_a_branch_needs_an_id_and_steps(self):
        problems = problems_of(workflow(reviews({"steps": [task("z1")]}, {"id": "fire"})))
        assert [(p.step, p.field, p.message) for p in problems] == [
            (
                "reviews",
                "parallel[0].id",
                "missing required field 'id' (a name for the branch, e.g. fire-safety)",
            ),
            (
                "reviews",
                "parallel[1].steps",
                "a branch's steps must be a non-empty list; it is missing",
            ),
        ]

    def test_a_branch_that_is_not_a_mapping_is_refused(self):
        problem = only_problem(workflow(reviews("zoning", branch("fire", task("f1")))))
        assert problem.field == "parallel[0]"
        assert (
            problem.message
            == "each branch must be a mapping with 'id' and 'steps', not text 'zoning'"
        )

    def test_an_unknown_branch_field_suggests_the_closest(self):
        problem = only_problem(
            workflow(reviews(branch("zoning", task("z1"), titel="Z"), branch("fire", task("f1"))))
        )
        assert problem.message == "unknown field 'titel'; did you mean 'title'?"

    def test_a_step_without_id_in_a_branch_is_named_by_its_position_in_the_branch(self):
        problem = only_problem(
            workflow(
                reviews(branch("zoning", task("z1"), {"service": "s"}), branch("fire", task("f1")))
            )
        )
        assert (problem.step, problem.field) == ("#2 of branch 'zoning'", "id")

    def test_a_parallel_step_takes_no_time_out_assignee_or_on_and_says_why(self):
        problems = problems_of(
            workflow(reviews(timeout="2d", assignee="group:x", on={"ok": "notify"}))
        )
        assert [(p.field, p.message) for p in problems] == [
            (
                "timeout",
                "a parallel step takes no 'timeout'; put time-outs on the steps that do the work",
            ),
            (
                "assignee",
                "a parallel step takes no 'assignee'; assignees belong to the steps that do the work",
            ),
            (
                "on",
                "a parallel step takes no 'on'; it ends with result 'ok' when its join fires, so "
                "there is nothing to route: use next (results inside a branch are routed by the "
                "branch's own steps)",
            ),
        ]

    def test_a_step_runs_one_thing(self):
        problem = only_problem(workflow({**reviews(), "service": "approvalSvc"}))
        assert (problem.step, problem.field) == ("reviews", "parallel")
        assert problem.message == (
            "a step runs one thing: give one of service, parallel and workflow, not service "
            "and parallel"
        )

    def test_a_parallel_step_may_route_with_next(self):
        spec = parse_definition(workflow(reviews(next=[{"if": "true", "goto": "notify"}])))
        assert spec.step("reviews").conditions[0].goto == "notify"


class WorkflowStepProblemTests(SimpleTestCase):
    def test_the_child_workflow_must_be_a_workflow_id(self):
        problem = only_problem(workflow({"id": "visit", "workflow": "Site Inspection"}))
        assert (problem.step, problem.field) == ("visit", "workflow")
        assert problem.message == (
            "workflow must name a workflow by its id (a slug such as site-inspection), not "
            "'Site Inspection'"
        )

    def test_a_workflow_step_takes_no_time_out_or_retry(self):
        problems = problems_of(
            workflow({"id": "visit", "workflow": "x", "retry": {"max": 1}, "escalateTo": []})
        )
        assert [p.field for p in problems] == ["retry", "escalateTo"]
        assert problems[0].message.startswith("a workflow step takes no 'retry'; ")

    def test_an_unknown_field_of_a_workflow_step_suggests_the_closest(self):
        problem = only_problem(workflow({"id": "visit", "workflow": "x", "nxt": "notify"}))
        assert problem.message == "unknown field 'nxt'; did you mean 'next'?"

    def test_a_workflow_step_routes_its_results(self):
        spec = parse_definition(
            workflow({"id": "visit", "workflow": "x", "on": {"rejected": "validate"}})
        )
        assert spec.step("visit").on == {"rejected": "validate"}


class ParallelSchemaTests(SimpleTestCase):
    def setUp(self):
        schema = json.loads((ROOT / "docs" / "workflow.schema.json").read_text())
        self.validator = Draft202012Validator(schema)

    def test_the_schema_accepts_parallel_and_workflow_steps(self):
        (spec,) = load_text(PERMIT_YAML, source="permit.yaml").workflows
        assert self.validator.is_valid(dict(spec.source))

    def test_the_schema_refuses_common_mistakes(self):
        mistakes = [
            workflow(reviews(join="some")),
            workflow(reviews(branch("zoning", task("z1")))),
            workflow({**reviews(), "service": "approvalSvc"}),
            workflow(reviews(timeout="2d")),
            workflow({"id": "visit", "workflow": "Site Inspection"}),
            workflow(reviews(branch("zoning"), branch("fire", task("f1")))),
        ]
        for document in mistakes:
            assert not self.validator.is_valid(document), document
