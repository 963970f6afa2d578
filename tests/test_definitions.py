"""Parsing and validating workflow definitions and services documents (pure: SimpleTestCase)."""

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from django.test import SimpleTestCase
from jsonschema import Draft202012Validator

from workflows_app.definitions import (
    Duration,
    InvalidDefinition,
    Problem,
    RetryPolicy,
    load_file,
    load_text,
    parse_definition,
    parse_duration,
    parse_services,
)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "definitions"
SEED = """{
  "id": "building-permit",
  "steps": [
    { "id": "validate", "service": "validationSvc" },
    { "id": "approve",  "service": "approvalSvc", "timeout": "48h", "onTimeout": "escalate" },
    { "id": "notify",   "service": "notificationSvc" }
  ]
}"""
SEED_YAML = """\
id: building-permit
steps:
  - {id: validate, service: validationSvc}
  - {id: approve, service: approvalSvc, timeout: 48h, onTimeout: escalate}
  - {id: notify, service: notificationSvc}
"""
SERVICES = """\
services:
  validationSvc:   { kind: http,   url: "http://127.0.0.1:9001/validate", timeout: "10s" }
  approvalSvc:     { kind: human,  group: plan-reviewers, backupGroup: backup-reviewers }
  notificationSvc: { kind: python, callable: "workflows_app.builtin.notify_applicant" }
"""


def step(**fields: Any) -> dict[str, Any]:
    """A valid step with `fields` on top."""
    return {"id": "a", "service": "svc", **fields}


def workflow(*steps: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A valid workflow document with these steps (one plain step by default)."""
    return {"id": "permit", "steps": list(steps) or [step()], **fields}


def problems_of(data: Any) -> list[Problem]:
    """Every problem parse_definition finds; fails the test if the document is accepted."""
    try:
        parse_definition(data, source="t.json")
    except InvalidDefinition as error:
        return error.problems
    raise AssertionError("the definition was accepted")


def only_problem(data: Any) -> Problem:
    """The single problem of a document that has exactly one."""
    problems = problems_of(data)
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


def text_problems(text: str, source: str = "t.yaml") -> list[Problem]:
    """Every problem load_text finds; fails the test if the text is accepted."""
    try:
        load_text(text, source=source)
    except InvalidDefinition as error:
        return error.problems
    raise AssertionError("the text was accepted")


def service_problem(entry: dict[str, Any], name: str = "svc") -> Problem:
    """The single problem of a services document holding one entry."""
    try:
        parse_services({"services": {name: entry}}, source="s.yaml")
    except InvalidDefinition as error:
        assert len(error.problems) == 1, [str(p) for p in error.problems]
        return error.problems[0]
    raise AssertionError("the services document was accepted")


def where(problem: Problem) -> tuple[str | None, str | None, int | None]:
    """(step, field, line) of a problem, to compare in one assert."""
    return problem.step, problem.field, problem.line


class DurationTests(SimpleTestCase):
    def test_short_notations_give_wall_clock_seconds(self):
        cases = {"90s": 90, "30m": 1800, "48h": 172800, "2d": 172800, "1h30m": 5400, "48H": 172800}
        for text, seconds in cases.items():
            assert parse_duration(text) == Duration(seconds, text=text), text

    def test_iso_8601_durations_give_wall_clock_seconds(self):
        cases = {"PT48H": 172800, "P2D": 172800, "PT1H30M": 5400, "P1DT2H": 93600, "P1W": 604800}
        for text, seconds in cases.items():
            assert parse_duration(text).seconds == seconds, text
        assert parse_duration("pt90s").seconds == 90

    def test_working_time_counts_eight_hour_working_days(self):
        assert parse_duration("2 working days") == Duration(57600, working=True)
        assert parse_duration("16 working hours") == parse_duration("2 working days")
        assert parse_duration("1 working day").seconds == 8 * 3600
        assert parse_duration("30 working minutes") == Duration(1800, working=True)

    def test_plain_words_are_wall_clock_time(self):
        assert parse_duration("2 days") == Duration(172800)
        assert parse_duration("90 minutes").working is False

    def test_the_text_is_kept_as_written_but_not_compared(self):
        duration = parse_duration(" PT48H ")
        assert (duration.text, str(duration)) == ("PT48H", "PT48H")
        assert duration == parse_duration("48h") == parse_duration("2d")

    def test_anything_else_is_refused_with_a_plain_message(self):
        cases = {
            "48x": "'48x' is not a duration; use 90s, 30m, 48h, 2d, PT48H or '2 working days'",
            "0s": "'0s' is zero; a duration must be longer than zero",
            "-5m": "'-5m' is negative; a duration must be longer than zero",
            "1.5h": "'1.5h' has a fraction; use whole units, e.g. 90m instead of 1.5h",
            "P1M": "'P1M' uses years or months, which vary in length; write days instead",
            "4000d": "'4000d' is too long; the longest duration allowed is 3650 days",
            "10 working seconds": "working time is counted in working days, hours or minutes",
            "": "the duration is empty",
            "PT": "'PT' is not a duration",
        }
        for text, message in cases.items():
            with self.assertRaisesMessage(ValueError, message):
                parse_duration(text)

    def test_values_that_are_not_text_are_refused(self):
        with self.assertRaisesMessage(ValueError, "90 has no unit; write 90s, 90m, 90h or 90d"):
            parse_duration(90)
        for value, shown in ((True, "true"), (None, "null"), ([], "a list")):
            with self.assertRaisesMessage(ValueError, f"{shown} is not a duration"):
                parse_duration(value)


class SeedExampleTests(SimpleTestCase):
    def test_the_contract_example_loads_verbatim_from_json(self):
        spec = load_text(SEED, source="seed.json").workflows[0]
        assert (spec.id, spec.first_step) == ("building-permit", "validate")
        approve = spec.step("approve")
        assert (approve.service, approve.on_timeout) == ("approvalSvc", "escalate")
        assert approve.timeout == Duration(48 * 3600, text="48h")
        assert spec.source == json.loads(SEED)

    def test_the_same_workflow_in_yaml_is_equal_and_has_the_same_digest(self):
        from_json = load_text(SEED, source="seed.json").workflows[0]
        from_yaml = load_text(SEED_YAML, source="seed.yaml").workflows[0]
        assert from_yaml == from_json
        assert from_yaml.digest() == from_json.digest()
        assert re.fullmatch(r"[0-9a-f]{64}", from_json.digest())

    def test_key_order_does_not_change_the_digest_but_content_does(self):
        document = json.loads(SEED)
        reordered = {"steps": document["steps"], "id": document["id"]}
        assert parse_definition(reordered).digest() == parse_definition(document).digest()
        changed = {**document, "name": "Building permit"}
        assert parse_definition(changed).digest() != parse_definition(document).digest()

    def test_fixture_files_in_json_and_yaml_load_to_the_same_spec(self):
        from_json = load_file(FIXTURES / "building-permit.json").workflows[0]
        from_yaml = load_file(FIXTURES / "building-permit.yaml").workflows[0]
        assert from_json.digest() == from_yaml.digest()
        assert from_json.origin.endswith("building-permit.json")

    def test_steps_follow_in_list_order_and_end_after_the_last(self):
        spec = parse_definition(json.loads(SEED))
        assert spec.following("validate") == "approve"
        assert spec.following("notify") == "end"
        assert spec.step_ids == ("validate", "approve", "notify")
        with self.assertRaises(KeyError):
            spec.step("nope")

    def test_display_names_fall_back_to_humanised_ids(self):
        spec = parse_definition(workflow(step(id="checkDocs"), step(id="b", title="Paid")))
        assert spec.display_name == "Permit"
        assert spec.step("checkDocs").display_title == "Check docs"
        assert spec.step("b").display_title == "Paid"
        assert parse_definition(json.loads(SEED)).display_name == "Building permit"


class FeatureTests(SimpleTestCase):
    def test_every_optional_field_is_parsed(self):
        spec = load_file(FIXTURES / "business-license.yaml").workflows[0]
        assert (spec.name, spec.public, spec.input_schema["required"]) == (
            "Business licence",
            True,
            ["applicant", "activity"],
        )
        review = spec.step("review")
        assert review.assignee == "group:licence-officers"
        assert review.escalate_to == ("group:senior-officers", "user:head.of.licensing")
        assert review.timeout == Duration(2 * 8 * 3600, working=True)
        assert review.on == {"rejected": "reject", "needs-inspection": "food-inspection"}
        assert (review.next, review.targets) == ("issue", ("reject", "food-inspection", "issue"))

    def test_retry_keeps_its_values_and_defaults_the_rest(self):
        spec = load_file(FIXTURES / "business-license.yaml").workflows[0]
        assert spec.step("check-documents").retry == RetryPolicy(2, Duration(30, text="30s"))
        defaulted = parse_definition(workflow(step(retry={}))).steps[0].retry
        assert defaulted == RetryPolicy(max=3, backoff=Duration(10))

    def test_branches_keep_order_and_their_compiled_conditions_run(self):
        spec = load_file(FIXTURES / "business-license.yaml").workflows[0]
        first, second = spec.step("check-documents").conditions
        assert (first.condition, first.goto) == ("payload.docs == false", "reject")
        assert first.program.execute({"payload": {"docs": False}}) is True
        context = {"check-documents": {"score": 7}}
        variables = {"payload": {"activity": "food"}, "context": context, "result": "ok"}
        assert second.program.execute(variables) is True

    def test_macro_variables_and_loops_back_are_allowed(self):
        condition = "payload.items.exists(i, i.price > 100) && result in ['ok']"
        data = workflow(step(id="a", next=[{"if": condition, "goto": "a"}]), step(id="b", next="a"))
        spec = parse_definition(data)
        assert (
            spec.step("a")
            .conditions[0]
            .program.execute({"payload": {"items": [{"price": 200}]}, "result": "ok"})
        )

    def test_null_fields_count_as_absent(self):
        data = workflow(step(timeout=None, onTimeout=None, next=None, on=None), public=None)
        spec = parse_definition(data)
        assert (spec.public, spec.steps[0].timeout, spec.steps[0].on) == (False, None, {})

    def test_spec_problem_places_a_later_check_on_the_right_line(self):
        spec = load_file(FIXTURES / "business-license.yaml").workflows[0]
        problem = spec.problem("user 'x' does not exist", step="review", path=("escalateTo", 1))
        assert (problem.workflow, *where(problem)) == (
            "business-license",
            "review",
            "escalateTo[1]",
            31,
        )
        assert str(problem).startswith(f"{FIXTURES / 'business-license.yaml'}:31: workflow")


class WorkflowProblemTests(SimpleTestCase):
    def test_a_document_that_is_not_a_mapping_is_refused(self):
        problem = only_problem([workflow()])
        assert problem.message == "a workflow must be a mapping with 'id' and 'steps', not a list"

    def test_a_missing_id_is_reported(self):
        problem = only_problem({"steps": [step()]})
        assert (
            problem.message
            == "missing required field 'id' (the workflow key, e.g. building-permit)"
        )
        assert (problem.field, problem.workflow) == ("id", None)

    def test_an_id_that_is_not_a_slug_is_reported(self):
        problem = only_problem(workflow(id="Building Permit"))
        assert "id 'Building Permit' is not a slug; use 1-64 lowercase letters" in problem.message
        assert (problem.field, problem.workflow) == ("id", "Building Permit")

    def test_an_id_that_is_a_number_is_reported(self):
        assert only_problem(workflow(id=7)).message == (
            "id must be a slug such as building-permit, not the number 7"
        )

    def test_a_misspelt_top_level_field_suggests_the_closest_one(self):
        problem = only_problem(workflow(nmae="x"))
        assert (problem.message, problem.field) == (
            "unknown field 'nmae'; did you mean 'name'?",
            "nmae",
        )

    def test_an_unknown_field_with_nothing_close_lists_the_allowed_fields(self):
        assert only_problem(workflow(colour="red")).message == (
            "unknown field 'colour'; allowed fields: id, name, description, public, input, deadline, retention, steps"
        )

    def test_a_name_that_is_not_text_is_reported(self):
        problem = only_problem(workflow(name=["a"]))
        assert (problem.message, problem.field) == (
            "name must be text or a map of language to text ({en: ..., es: ...}), not a list",
            "name",
        )

    def test_public_must_be_a_boolean(self):
        problem = only_problem(workflow(public="yes"))
        assert problem.message == (
            "public must be true or false, not text 'yes' (yes/no/on/off are text here)"
        )

    def test_an_invalid_input_schema_reports_the_schema_error_and_where(self):
        problem = only_problem(workflow(input={"properties": {"age": {"type": "integr"}}}))
        assert problem.field == "input.properties.age.type"
        assert problem.message.startswith(
            "input is not a valid JSON Schema at properties.age.type:"
        )
        assert "'integr' is not valid" in problem.message

    def test_an_input_that_is_not_an_object_is_reported(self):
        problem = only_problem(workflow(input="object"))
        assert problem.message == "input must be a JSON Schema object, not text 'object'"

    def test_missing_steps_are_reported(self):
        problem = only_problem({"id": "permit"})
        assert (problem.message, problem.field) == (
            "missing required field 'steps' (the ordered list of steps)",
            "steps",
        )

    def test_an_empty_step_list_is_reported(self):
        problem = only_problem({"id": "permit", "steps": []})
        assert problem.message == "steps must be a non-empty list of steps; it is empty"

    def test_steps_written_as_a_mapping_are_reported(self):
        problem = only_problem({"id": "permit", "steps": {"a": step()}})
        assert (
            problem.message
            == "steps must be a non-empty list of steps; it is a mapping, not a list"
        )


class StepProblemTests(SimpleTestCase):
    def test_a_step_that_is_not_a_mapping_is_named_by_its_position(self):
        problem = only_problem(workflow(step(), "approve"))
        assert (
            problem.message
            == "each step must be a mapping with 'id' and 'service', not text 'approve'"
        )
        assert (problem.step, problem.field) == ("#2", None)

    def test_a_step_without_id_is_named_by_its_position(self):
        problem = only_problem(workflow(step(), {"service": "svc"}))
        assert problem.message == "missing required field 'id' (a name for the step, e.g. approve)"
        assert (problem.step, problem.field) == ("#2", "id")
        assert str(problem) == f"t.json: workflow 'permit', step #2, field 'id': {problem.message}"

    def test_a_step_id_with_spaces_is_reported(self):
        problem = only_problem(workflow(step(id="check docs")))
        assert problem.message.startswith(
            "step id 'check docs' may use only letters, digits, '-' and '_'"
        )
        assert (problem.step, problem.field) == ("check docs", "id")

    def test_a_terminal_word_cannot_be_a_step_id(self):
        problem = only_problem(workflow(step(id="Reject")))
        assert problem.message == (
            "'Reject' is a terminal target (end, reject, fail) and cannot be a step id; rename the step"
        )

    def test_a_repeated_step_id_is_reported_on_its_second_use(self):
        problem = only_problem(workflow(step(id="a"), step(id="b"), step(id="a")))
        assert problem.message == "duplicate step id 'a'; step #1 already uses it"
        assert (problem.step, problem.field) == ("a", "id")

    def test_a_missing_service_is_reported(self):
        problem = only_problem(workflow({"id": "a"}))
        assert problem.message == (
            "missing required field 'service' (the registered service that runs this step; "
            "or 'parallel' for branches, 'workflow' for a sub-workflow)"
        )
        assert (problem.step, problem.field) == ("a", "service")

    def test_a_service_name_with_spaces_is_reported(self):
        problem = only_problem(workflow(step(service="validation svc")))
        assert problem.message.startswith("service 'validation svc' is not a valid service name")

    def test_a_misspelt_step_field_suggests_the_closest_one(self):
        problem = only_problem(workflow(step(tiemout="1h")))
        assert (problem.message, problem.field) == (
            "unknown field 'tiemout'; did you mean 'timeout'?",
            "tiemout",
        )

    def test_a_snake_case_step_field_suggests_the_camel_case_one(self):
        problem = only_problem(workflow(step(escalate_to=["group:x"])))
        assert problem.message == "unknown field 'escalate_to'; did you mean 'escalateTo'?"

    def test_a_title_that_is_not_text_is_reported(self):
        problem = only_problem(workflow(step(title=3)))
        assert (problem.message, problem.field) == (
            "title must be text or a map of language to text ({en: ..., es: ...}), "
            "not the number 3",
            "title",
        )

    def test_a_bad_timeout_says_which_notations_work(self):
        problem = only_problem(workflow(step(timeout="48x")))
        assert (
            problem.message
            == "'48x' is not a duration; use 90s, 30m, 48h, 2d, PT48H or '2 working days'"
        )
        assert (problem.step, problem.field) == ("a", "timeout")

    def test_a_zero_timeout_is_reported(self):
        problem = only_problem(workflow(step(timeout="PT0S")))
        assert problem.message == "'PT0S' is zero; a duration must be longer than zero"

    def test_a_timeout_without_unit_is_reported(self):
        assert only_problem(workflow(step(timeout=90))).message == (
            "90 has no unit; write 90s, 90m, 90h or 90d"
        )

    def test_an_unknown_on_timeout_action_suggests_the_closest(self):
        problem = only_problem(workflow(step(timeout="1h", onTimeout="escalte")))
        assert problem.message == (
            "onTimeout 'escalte' is not one of escalate, fail, skip, retry, reject; "
            "did you mean 'escalate'?"
        )
        assert problem.field == "onTimeout"

    def test_on_timeout_without_a_timeout_is_reported(self):
        problem = only_problem(workflow(step(onTimeout="skip")))
        assert problem.message == (
            "onTimeout 'skip' needs a timeout; add one (e.g. timeout: 48h) or remove onTimeout"
        )

    def test_escalate_to_must_be_a_list(self):
        problem = only_problem(workflow(step(escalateTo="group:backup")))
        assert problem.message == (
            "escalateTo must be a list such as [group:backup-reviewers], not text 'group:backup'"
        )

    def test_an_escalation_level_without_prefix_suggests_a_group(self):
        problem = only_problem(workflow(step(escalateTo=["group:a", "reviewers"])))
        assert problem.message == (
            "escalateTo[1] 'reviewers' must be 'group:NAME' or 'user:USERNAME'; did you mean 'group:reviewers'?"
        )
        assert problem.field == "escalateTo[1]"

    def test_an_assignee_without_a_name_is_reported(self):
        problem = only_problem(workflow(step(assignee="user:")))
        assert (problem.message, problem.field) == (
            "assignee 'user:' names no user; write user:NAME",
            "assignee",
        )

    def test_an_assignee_with_an_impossible_username_is_reported(self):
        problem = only_problem(workflow(step(assignee="user:jo doe")))
        assert problem.message == (
            "assignee 'user:jo doe': 'jo doe' is not a username (letters, digits and @ . + - _)"
        )

    def test_retry_must_be_a_mapping(self):
        problem = only_problem(workflow(step(retry=3)))
        assert (
            problem.message
            == "retry must be a mapping such as {max: 3, backoff: 10s}, not the number 3"
        )

    def test_retry_max_must_be_a_whole_number_up_to_a_hundred(self):
        for value, shown in (
            (-1, "the number -1"),
            (True, "true (true/false)"),
            (101, "the number 101"),
        ):
            problem = only_problem(workflow(step(retry={"max": value})))
            assert problem.message == (
                f"retry.max must be a whole number from 0 to 100 (retries after the first attempt), not {shown}"
            )
            assert problem.field == "retry.max"

    def test_retry_backoff_must_be_wall_clock_time(self):
        problem = only_problem(workflow(step(retry={"backoff": "1 working day"})))
        assert (
            problem.message
            == "'1 working day' is working time; backoff must be wall-clock time such as 10s"
        )
        assert problem.field == "retry.backoff"

    def test_an_unknown_retry_field_suggests_the_closest(self):
        problem = only_problem(workflow(step(retry={"maxAttempts": 2})))
        assert (problem.message, problem.field) == (
            "unknown field 'maxAttempts'; did you mean 'max'?",
            "retry.maxAttempts",
        )


class RoutingProblemTests(SimpleTestCase):
    def test_an_unknown_next_step_suggests_the_closest_step(self):
        problem = only_problem(workflow(step(id="a", next="notfy"), step(id="notify")))
        assert problem.message == (
            "'notfy' is not a step of this workflow; did you mean 'notify'? (use a step id, or end, reject or fail)"
        )
        assert (problem.step, problem.field) == ("a", "next")

    def test_an_empty_next_list_is_reported(self):
        problem = only_problem(workflow(step(next=[])))
        assert (
            problem.message
            == "next must be a step id or a list of {if, goto} entries, not an empty list"
        )

    def test_a_single_branch_not_in_a_list_is_reported(self):
        problem = only_problem(workflow(step(next={"if": "true", "goto": "end"})))
        assert "not a single mapping; put it in a list" in problem.message

    def test_a_branch_without_goto_is_reported(self):
        problem = only_problem(workflow(step(next=[{"if": "true"}])))
        assert (
            problem.message
            == "next[0] has no 'goto'; name the step to go to when the condition holds"
        )
        assert problem.field == "next[0]"

    def test_a_branch_without_if_is_reported(self):
        problem = only_problem(
            workflow(step(next=[{"if": "true", "goto": "end"}, {"goto": "end"}]))
        )
        assert (
            problem.message
            == "next[1] has no 'if'; every entry needs a condition (if: 'true' for a fallback)"
        )

    def test_a_branch_with_then_suggests_goto(self):
        problems = problems_of(workflow(step(next=[{"if": "true", "then": "end"}])))
        messages = [(p.field, p.message) for p in problems]
        assert ("next[0].then", "unknown field 'then'; did you mean 'goto'?") in messages
        assert (
            "next[0]",
            "next[0] has no 'goto'; name the step to go to when the condition holds",
        ) in messages

    def test_a_branch_target_that_is_not_text_is_reported(self):
        problem = only_problem(workflow(step(next=[{"if": "true", "goto": 3}])))
        assert (
            problem.message
            == "next[0].goto must name a step id or end, reject or fail, not the number 3"
        )

    def test_on_must_be_a_mapping(self):
        problem = only_problem(workflow(step(on=["rejected"])))
        assert (
            problem.message == "on must map results to steps, e.g. {rejected: reject}, not a list"
        )

    def test_an_unknown_on_target_is_reported_under_its_result(self):
        problem = only_problem(workflow(step(on={"rejected": "rejekt"})))
        assert problem.message.startswith(
            "'rejekt' is not a step of this workflow; did you mean 'reject'?"
        )
        assert problem.field == "on.rejected"

    def test_an_empty_result_name_is_reported(self):
        problem = only_problem(workflow(step(on={" ": "end"})))
        assert problem.message == "on has an empty result name; name a result such as rejected"


class ConditionProblemTests(SimpleTestCase):
    def test_a_cel_syntax_error_gives_its_column(self):
        problem = only_problem(workflow(step(next=[{"if": "payload.docs ==", "goto": "end"}])))
        assert problem.message == (
            "condition 'payload.docs ==' has a CEL syntax error at column 16: the expression ends too early"
        )
        assert problem.field == "next[0].if"

    def test_a_cel_syntax_error_in_a_multi_line_condition_gives_line_and_column(self):
        condition = "payload.a == 1 &&\n  payload.(b)"
        problem = only_problem(workflow(step(next=[{"if": condition, "goto": "end"}])))
        assert "has a CEL syntax error at line 2, column 11:" in problem.message
        assert "\n" not in problem.message

    def test_a_misspelt_variable_is_reported(self):
        problem = only_problem(workflow(step(next=[{"if": "paylod.x == 1", "goto": "end"}])))
        assert (
            problem.message
            == "unknown variable 'paylod' in condition; use payload, context or result"
        )

    def test_an_unquoted_word_is_reported_as_a_variable_with_a_hint(self):
        problem = only_problem(workflow(step(next=[{"if": "result == approved", "goto": "end"}])))
        assert problem.message == (
            "unknown variable 'approved' in condition; use payload, context or result "
            '(put text in quotes: "approved")'
        )

    def test_a_condition_that_is_not_text_is_reported(self):
        problem = only_problem(workflow(step(next=[{"if": True, "goto": "end"}])))
        assert problem.message == (
            "condition must be a CEL expression in text, not true (true/false); write 'true' in quotes"
        )

    def test_an_empty_condition_is_reported(self):
        problem = only_problem(workflow(step(next=[{"if": " ", "goto": "end"}])))
        assert (
            problem.message
            == "condition is empty; write a CEL expression such as payload.docs == false"
        )


class SeveralProblemsTests(SimpleTestCase):
    def test_every_problem_of_a_document_is_listed_with_its_line(self):
        problems = load_problems(FIXTURES / "many-problems.yaml")
        assert [(p.line, p.step, p.field) for p in problems] == [
            (1, None, "id"),
            (2, None, "step"),
            (6, "validate", "timeout"),
            (9, "approve", "onTimeout"),
            (10, "approve", "next"),
            (13, "notify", "retry.max"),
        ]
        assert {p.workflow for p in problems} == {"Building Permit"}

    def test_the_exception_text_lists_one_problem_per_line(self):
        with self.assertRaises(InvalidDefinition) as caught:
            load_file(FIXTURES / "many-problems.yaml")
        lines = str(caught.exception).splitlines()
        assert len(lines) == 6
        assert lines[2].endswith(
            "many-problems.yaml:6: workflow 'Building Permit', step 'validate', field 'timeout': "
            "'48x' is not a duration; use 90s, 30m, 48h, 2d, PT48H or '2 working days'"
        )

    def test_problems_are_plain_data_for_api_bodies(self):
        problem = only_problem(workflow(step(timeout="2q")))
        assert problem.as_dict() == {
            "source": "t.json",
            "workflow": "permit",
            "step": "a",
            "field": "timeout",
            "line": None,
            "message": problem.message,
        }


def load_problems(path: Path) -> list[Problem]:
    """Every problem load_file finds in a fixture."""
    try:
        load_file(path)
    except InvalidDefinition as error:
        return error.problems
    raise AssertionError(f"{path} was accepted")


class YamlLineTests(SimpleTestCase):
    def test_a_bad_field_deep_in_a_step_names_its_line(self):
        text = "id: permit\nsteps:\n  - id: a\n    service: svc\n    retry:\n      max: 2\n      delay: 5s\n"
        (problem,) = text_problems(text)
        assert where(problem) == ("a", "retry.delay", 7)
        assert problem.message == "unknown field 'delay'; did you mean 'backoff'?"

    def test_a_condition_error_names_the_line_of_its_if(self):
        text = "id: permit\nsteps:\n  - id: a\n    service: svc\n    next:\n      - if: payload.x ==\n        goto: end\n"
        (problem,) = text_problems(text)
        assert where(problem) == ("a", "next[0].if", 6)

    def test_a_missing_field_names_the_line_of_its_step(self):
        text = "id: permit\nsteps:\n  - id: a\n    service: svc\n  - id: b\n    title: B\n"
        (problem,) = text_problems(text)
        assert where(problem) == ("b", "service", 5)

    def test_a_repeated_key_is_an_error_on_its_second_line(self):
        text = "id: permit\nsteps:\n  - id: a\n    service: svc\n    timeout: 1h\n    timeout: 2h\n"
        (problem,) = text_problems(text)
        assert where(problem) == ("a", "timeout", 6)
        assert problem.message == "duplicate key 'timeout'; line 5 sets it too"

    def test_yes_and_on_follow_yaml_1_2(self):
        text = "id: permit\npublic: yes\nsteps:\n  - id: a\n    service: svc\n    on: {no: end}\n"
        (problem,) = text_problems(text)
        assert (problem.field, problem.line) == ("public", 2)
        spec = load_text(text.replace("yes", "true"), source="t.yaml").workflows[0]
        assert spec.steps[0].on == {"no": "end"}

    def test_a_numeric_result_key_must_be_quoted(self):
        text = "id: permit\nsteps:\n  - id: a\n    service: svc\n    on:\n      200: end\n"
        (problem,) = text_problems(text)
        assert (problem.message, problem.line) == (
            "key 200 must be text; put it in quotes: '200'",
            6,
        )

    def test_a_yaml_syntax_error_names_its_line(self):
        (problem,) = text_problems("id: permit\nsteps:\n  - id: a\n   service: svc\n")
        assert problem.line == 4
        assert problem.message.startswith("YAML syntax error: expected <block end>")

    def test_python_tags_are_refused(self):
        (problem,) = text_problems("id: permit\nsteps: !!python/object/apply:os.system [ls]\n")
        assert problem.line == 2
        assert "could not determine a constructor" in problem.message

    def test_an_alias_inside_its_own_anchor_is_refused(self):
        problems = text_problems("id: permit\nsteps: &s [*s]\n")
        assert "contains itself" in problems[0].message

    def test_anchors_kept_under_x_keys_merge_into_steps(self):
        text = "x-base: &base {service: svc, timeout: 1h}\nid: permit\nsteps:\n  - {<<: *base, id: a, timeout: 2h}\n"
        spec = load_text(text, source="t.yaml").workflows[0]
        assert (spec.steps[0].service, spec.steps[0].timeout) == ("svc", Duration(7200))

    def test_dates_stay_text(self):
        text = "id: permit\ndescription: 2026-01-31\nsteps: [{id: a, service: svc}]\n"
        assert load_text(text, source="t.yaml").workflows[0].description == "2026-01-31"


class JsonTests(SimpleTestCase):
    def test_a_json_syntax_error_names_its_line(self):
        (problem,) = text_problems('{\n  "id": "permit",\n  "steps": [}\n', source="t.json")
        assert problem.line == 3
        assert problem.message.startswith("JSON syntax error: ")
        assert "(line 3, column 13)" in problem.message

    def test_a_json_problem_names_its_line(self):
        text = '{\n  "id": "permit",\n  "steps": [\n    {"id": "a", "service": "svc", "timeout": "soon"}\n  ]\n}'
        (problem,) = text_problems(text, source="t.json")
        assert where(problem) == ("a", "timeout", 4)

    def test_a_repeated_json_key_is_reported(self):
        text = (
            '{\n\t"id": "permit",\n\t"id": "other",\n\t"steps": [{"id": "a", "service": "svc"}]\n}'
        )
        (problem,) = text_problems(text, source="t.json")
        assert (problem.message, problem.line) == ("duplicate key 'id'; line 2 sets it too", 3)

    def test_text_without_a_file_name_is_guessed_from_its_first_character(self):
        assert load_text(SEED, source="<admin>").workflows[0].id == "building-permit"
        assert load_text(SEED_YAML, source="<admin>").workflows[0].id == "building-permit"


class FileTests(SimpleTestCase):
    def test_several_yaml_documents_hold_workflows_and_services(self):
        document = load_file(FIXTURES / "several.yaml")
        assert [w.id for w in document.workflows] == ["address-change", "parking-permit"]
        assert [s.name for s in document.services] == ["registrySvc"]
        assert document.services[0].secret_env == "REGISTRY_WEBHOOK_SECRET"

    def test_a_json_list_holds_several_workflows(self):
        document = load_file(FIXTURES / "two.json")
        assert [w.id for w in document.workflows] == ["dog-licence", "noise-complaint"]
        assert document.workflows[1].step("visit").timeout == Duration(57600, working=True)

    def test_problems_in_a_json_list_name_the_line_inside_the_file(self):
        text = '[\n  {"id": "a", "steps": [{"id": "x", "service": "s"}]},\n  {"id": "b", "steps": [{"id": "x", "service": "s", "next": "y"}]}\n]'
        (problem,) = text_problems(text, source="t.json")
        assert (problem.workflow, *where(problem)) == ("b", "x", "next", 3)

    def test_a_repeated_workflow_id_in_one_file_is_reported(self):
        text = "id: permit\nsteps: [{id: a, service: svc}]\n---\nid: permit\nsteps: [{id: b, service: svc}]\n"
        (problem,) = text_problems(text)
        assert (
            problem.message
            == "duplicate workflow id 'permit'; an earlier document defines it (line 1)"
        )
        assert (problem.field, problem.line) == ("id", 4)

    def test_workflows_without_usable_ids_are_named_by_position(self):
        problems = text_problems("steps: [{id: a, service: svc}]\n---\nid: ok\nsteps: [{id: a}]\n")
        assert [(p.workflow, p.field, p.line) for p in problems] == [
            ("#1", "id", 1),
            ("ok", "service", 4),
        ]
        problems = text_problems("id: ok\nsteps: [{id: a, service: s}]\n---\nsteps: []\n")
        assert {p.workflow for p in problems} == {"#2"}

    def test_documents_before_a_syntax_error_are_checked_too(self):
        text = "id: permit\nsteps: [{id: a, service: svc, timeout: soon}]\n---\nid: b\nsteps: [\n"
        problems = text_problems(text)
        assert [p.field for p in problems] == ["timeout", None]
        assert problems[1].message.startswith("YAML syntax error")

    def test_empty_documents_are_skipped_but_an_empty_file_is_refused(self):
        assert (
            len(
                load_text(
                    "---\nid: a\nsteps: [{id: x, service: s}]\n---\n", source="t.yaml"
                ).workflows
            )
            == 1
        )
        (problem,) = text_problems("# nothing here\n")
        assert problem.message == "the file holds no workflow or services document"

    def test_an_unknown_extension_is_a_problem(self):
        with self.assertRaises(InvalidDefinition) as caught:
            load_file(FIXTURES / "notes.txt")
        assert (
            caught.exception.problems[0].message
            == "unknown file type '.txt'; use .json, .yaml or .yml"
        )

    def test_an_unreadable_file_is_a_problem(self):
        with self.assertRaises(InvalidDefinition) as caught:
            load_file(FIXTURES / "missing.yaml")
        assert (
            caught.exception.problems[0].message
            == "cannot read the file: No such file or directory"
        )

    def test_a_byte_order_mark_is_allowed(self):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "permit.json"
            path.write_bytes(b"\xef\xbb\xbf" + SEED.encode())
            assert load_file(path).workflows[0].id == "building-permit"


class ServicesTests(SimpleTestCase):
    def test_the_contract_services_document_loads(self):
        http, human, python = load_text(SERVICES, source="s.yaml").services
        assert (http.name, http.kind, http.url) == (
            "validationSvc",
            "http",
            "http://127.0.0.1:9001/validate",
        )
        assert http.timeout == Duration(10, text="10s")
        assert (human.group, human.backup_group) == ("plan-reviewers", "backup-reviewers")
        assert python.callable == "workflows_app.builtin.notify_applicant"
        assert python.source == {"kind": "python", "callable": python.callable}

    def test_python_prefixes_can_be_widened(self):
        data = {"services": {"x": {"kind": "python", "callable": "myapp.services.run"}}}
        (spec,) = parse_services(data, python_prefixes=("workflows_app.builtin", "myapp"))
        assert spec.callable == "myapp.services.run"

    def test_a_secret_or_a_secret_env_is_kept(self):
        data = {
            "services": {
                "x": {
                    "kind": "http",
                    "url": "https://a.example",
                    "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                }
            }
        }
        assert parse_services(data)[0].secret.startswith("whsec_")

    def test_a_missing_kind_is_reported(self):
        problem = service_problem({"url": "http://x"})
        assert (problem.message, problem.step, problem.field) == (
            "missing required field 'kind'; use http, human, python or applicant",
            "svc",
            "kind",
        )
        assert str(problem) == "s.yaml: service 'svc', field 'kind': " + problem.message

    def test_an_unknown_kind_suggests_the_closest(self):
        problem = service_problem({"kind": "humn", "group": "g"})
        assert (
            problem.message
            == "kind 'humn' is not one of http, human, python, applicant; did you mean 'human'?"
        )

    def test_an_http_service_needs_a_url(self):
        problem = service_problem({"kind": "http"})
        assert (
            problem.message
            == "url is missing; an http service needs it, e.g. https://example.org/validate"
        )

    def test_an_http_url_must_be_http_or_https(self):
        problem = service_problem({"kind": "http", "url": "ftp://files.example"})
        assert (
            problem.message
            == "url 'ftp://files.example' must be an http:// or https:// URL with a host"
        )

    def test_a_file_url_is_refused_like_any_other_scheme(self):
        problem = service_problem({"kind": "http", "url": "file:///etc/passwd"})
        assert problem.message == (
            "url 'file:///etc/passwd' must be an http:// or https:// URL with a host"
        )

    def test_an_http_timeout_must_be_wall_clock_time(self):
        problem = service_problem({"kind": "http", "url": "http://a", "timeout": "1 working day"})
        assert (problem.field, problem.message) == (
            "timeout",
            "'1 working day' is working time; timeout must be wall-clock time such as 10s",
        )

    def test_secret_and_secret_env_together_are_refused(self):
        problem = service_problem(
            {"kind": "http", "url": "http://a", "secret": "s", "secretEnv": "S"}
        )
        assert (problem.field, problem.message) == (
            "secretEnv",
            "use secret or secretEnv, not both",
        )

    def test_a_whsec_secret_must_be_base64_and_is_not_repeated(self):
        problem = service_problem({"kind": "http", "url": "http://a", "secret": "whsec_%%%"})
        assert problem.message == "secret starts with 'whsec_' but the rest is not base64"

    def test_a_field_of_another_kind_names_its_kind(self):
        problem = service_problem({"kind": "http", "url": "http://a", "group": "g"})
        assert problem.message == (
            "unknown field 'group' for an http service; it belongs to human services "
            "(an http service takes url, timeout, secret, secretEnv, concurrency)"
        )

    def test_a_human_service_needs_a_group(self):
        problem = service_problem({"kind": "human", "backupGroup": "b"})
        assert problem.message == "group is missing; a human service needs it, e.g. plan-reviewers"

    def test_a_group_written_with_its_prefix_is_reported(self):
        problem = service_problem({"kind": "human", "group": "group:reviewers"})
        assert (problem.field, problem.message) == (
            "group",
            "write the group name without 'group:' ('reviewers')",
        )

    def test_a_python_callable_outside_the_prefixes_is_refused(self):
        problem = service_problem({"kind": "python", "callable": "os.system"})
        assert problem.message.startswith(
            "callable 'os.system' is not under an allowed module (workflows_app.builtin)"
        )

    def test_a_prefix_matches_whole_module_names(self):
        problem = service_problem({"kind": "python", "callable": "workflows_app.builtins.run"})
        assert "is not under an allowed module" in problem.message

    def test_a_python_callable_must_be_a_dotted_path(self):
        problem = service_problem({"kind": "python", "callable": "notify"})
        assert problem.message.startswith("callable 'notify' must be a dotted path module.function")

    def test_a_service_name_with_spaces_is_reported(self):
        problem = service_problem({"kind": "human", "group": "g"}, name="my service")
        assert (
            problem.message
            == "'my service' is not a valid service name; use letters, digits, '.', '-' and '_'"
        )

    def test_a_services_document_lists_every_problem_with_lines(self):
        text = "services:\n  a: {kind: http}\n  b: {kind: human, group: g}\n  c: {kind: python, callable: os.system}\nextra: 1\n"
        problems = text_problems(text)
        assert [(p.step, p.field, p.line) for p in problems] == [
            ("a", "url", 2),
            ("c", "callable", 4),
            (None, "extra", 5),
        ]
        assert (
            problems[2].message == "unknown field 'extra'; allowed fields: services, subscriptions"
        )

    def test_a_repeated_service_name_across_documents_is_reported(self):
        text = "services:\n  a: {kind: human, group: g}\n---\nservices:\n  a: {kind: human, group: h}\n"
        (problem,) = text_problems(text)
        assert (problem.step, problem.line) == ("a", 5)
        assert problem.message == "duplicate service 'a'; an earlier document defines it (line 2)"


class SchemaAndDocsTests(SimpleTestCase):
    def test_the_json_schema_is_valid_and_accepts_the_fixtures(self):
        schema = json.loads((ROOT / "docs" / "workflow.schema.json").read_text())
        Draft202012Validator.check_schema(schema)
        validator = Draft202012Validator(schema)
        for name in (
            "building-permit.yaml",
            "business-license.yaml",
            "several.yaml",
            "two.json",
            "services.yaml",
        ):
            document = load_file(FIXTURES / name)
            for spec in document.workflows:
                assert validator.is_valid(dict(spec.source)), (name, spec.id)
            services = {s.name: dict(s.source) for s in document.services}
            assert not services or validator.is_valid({"services": services}), name

    def test_the_json_schema_refuses_common_mistakes(self):
        validator = Draft202012Validator(
            json.loads((ROOT / "docs" / "workflow.schema.json").read_text())
        )
        mistakes = [
            workflow(step(id="end")),
            workflow(step(onTimeout="fail")),
            workflow(step(retry={"backoff": "2 working days"})),
            workflow(step(timeout="48x")),
            workflow(step(assignee="reviewers")),
            {"services": {"a": {"kind": "human", "url": "http://x"}}},
        ]
        for document in mistakes:
            assert not validator.is_valid(document), document

    def test_every_example_in_the_user_docs_loads(self):
        text = (ROOT / "docs" / "definitions.md").read_text()
        examples = re.findall(r"```(yaml|json)\n(.*?)```", text, re.S)
        assert len(examples) >= 6
        for fmt, body in examples:
            document = load_text(body, source=f"definitions.md.{fmt}", format=fmt)
            assert document.workflows or document.services
