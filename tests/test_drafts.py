"""Drafts: rows <-> documents, problems placed on fields, export, differences, dry run."""

from pathlib import Path

import pytest
from django.test import SimpleTestCase, TestCase

from tests.factories import make_seed_services, make_service
from workflows_app import definitions
from workflows_app.admin.placing import Placed, place
from workflows_app.authoring import drafts, dryrun
from workflows_app.definitions import Problem
from workflows_app.models import DraftStep, Status, WorkflowDefinition, WorkflowDraft

ROOT = Path(__file__).resolve().parents[1]
# The full example as one list of service steps (workflows/ has parallel reviews, which drafts
# cannot hold).
FULL = definitions.load_file(
    ROOT / "tests" / "fixtures" / "definitions" / "permit-single-lane.yaml"
).workflows[0]


def full_document() -> dict:
    return dict(FULL.source)


class RowsAndDocumentsTests(SimpleTestCase):
    def test_the_full_example_goes_to_rows_and_back_unchanged(self):
        document = full_document()
        rows = drafts.step_rows(document)
        again = drafts.workflow_document(drafts.draft_fields(document), rows)
        assert again == document
        assert definitions.digest_of(again) == definitions.digest_of(document)

    def test_rows_are_written_as_people_read_them(self):
        rows = drafts.step_rows(full_document())
        validate, approve = rows[0], rows[1]
        assert validate["next"] == "if has(payload.docs) && payload.docs == false goto request-docs"
        assert validate["on"] == "rejected: reject\nincomplete: upload-site-plan"
        assert (validate["retry_max"], validate["retry_backoff"]) == (3, "5s")
        assert approve["escalate_to"] == "group:backup-reviewers"
        assert [row["position"] for row in rows] == [10, 20, 30, 40, 50]

    def test_next_is_a_step_id_or_one_condition_per_line(self):
        assert drafts.parse_next("approve") == "approve"
        assert drafts.parse_next("") is None
        text = "if payload.docs == false goto request-docs\nif true goto approve"
        assert drafts.parse_next(text) == [
            {"if": "payload.docs == false", "goto": "request-docs"},
            {"if": "true", "goto": "approve"},
        ]

    def test_a_condition_without_goto_is_left_for_the_validator_to_name(self):
        assert drafts.parse_next("if payload.x") == [{"if": "payload.x"}]

    def test_on_reads_result_colon_target_lines(self):
        assert drafts.parse_on("rejected: reject\nincomplete : request-docs") == {
            "rejected": "reject",
            "incomplete": "request-docs",
        }
        assert drafts.parse_on("rejected") == {"rejected": None}

    def test_empty_fields_are_left_out_of_the_document(self):
        row = {"step_id": "a", "service": "s", "title": "", "retry_max": None, "retry_backoff": ""}
        assert drafts.step_document(row) == {"id": "a", "service": "s"}

    def test_steps_without_a_position_go_after_the_numbered_ones_in_their_order(self):
        rows = [
            {"step_id": "x", "position": None},
            {"step_id": "y", "position": 20},
            {"step_id": "z", "position": 10},
            {"step_id": "w", "position": None},
        ]
        assert [r["step_id"] for r in drafts.ordered(rows)] == ["z", "y", "x", "w"]


class PlacingProblemsTests(SimpleTestCase):
    def place(self, document):
        with pytest.raises(definitions.InvalidDefinition) as refused:
            definitions.parse_definition(document, source="draft")
        ids = [step.get("id", "") for step in document["steps"]]
        return place(refused.value.problems, ids)

    def test_each_problem_lands_on_the_row_and_field_it_concerns(self):
        document = {
            "id": "p",
            "steps": [
                {"id": "a", "service": "s", "timeout": "48x"},
                {"id": "b", "service": "s", "retry": {"max": -1, "backoff": "1 working day"}},
                {"id": "c", "service": "s", "next": [{"if": "payload.x", "goto": "nowhere"}]},
            ],
        }
        placed = {(p.row, p.field) for p in self.place(document)}
        assert placed == {(0, "timeout"), (1, "retry_max"), (1, "retry_backoff"), (2, "next")}

    def test_a_problem_in_a_list_says_which_line(self):
        document = {
            "id": "p",
            "steps": [
                {
                    "id": "a",
                    "service": "s",
                    "next": [{"if": "true", "goto": "a"}, {"if": "true", "goto": "nowhere"}],
                },
            ],
        }
        (problem,) = self.place(document)
        assert problem.message.startswith("line 2: 'nowhere' is not a step of this workflow")

    def test_a_step_without_a_usable_id_is_found_by_its_position(self):
        document = {"id": "p", "steps": [{"id": "a", "service": "s"}, {"service": "s"}]}
        assert [(p.row, p.field) for p in self.place(document)] == [(1, "step_id")]

    def test_a_repeated_id_is_marked_on_its_second_use(self):
        document = {"id": "p", "steps": [{"id": "a", "service": "s"}, {"id": "a", "service": "s"}]}
        assert [(p.row, p.field) for p in self.place(document)] == [(1, "step_id")]

    def test_workflow_problems_land_on_the_drafts_own_fields(self):
        document = {"id": "Not A Slug", "steps": [{"id": "a", "service": "s"}]}
        assert [(p.row, p.field) for p in self.place(document)] == [(None, "key")]

    def test_an_empty_draft_is_a_problem_of_the_whole_form(self):
        problem = Problem("draft", "steps must be a non-empty list", field="steps")
        assert place([problem], []) == [Placed(None, None, problem.message)]


class ExportAndDiffTests(SimpleTestCase):
    def test_exported_yaml_and_json_load_back_as_the_same_definition(self):
        for fmt in ("yaml", "json"):
            text = drafts.dump(full_document(), fmt)
            (spec,) = definitions.load_text(text, source=f"x.{fmt}").workflows
            assert spec.digest() == FULL.digest(), fmt

    def test_export_lists_keys_in_the_order_the_format_documents_them(self):
        text = drafts.dump({"steps": [{"service": "s", "id": "a"}], "id": "p"}, "yaml")
        assert text.splitlines() == ["id: p", "steps:", "- id: a", "  service: s"]

    def test_the_difference_shows_removed_and_added_lines(self):
        new = full_document()
        new["steps"] = [dict(step) for step in new["steps"]]
        new["steps"][1]["timeout"] = "3 working days"
        lines = drafts.diff(full_document(), new, old_label="v1", new_label="v2")
        assert "-  timeout: 2 working days" in lines
        assert "+  timeout: 3 working days" in lines
        assert lines[:2] == ["--- v1", "+++ v2"]

    def test_the_same_document_has_no_difference(self):
        assert drafts.diff(full_document(), full_document(), old_label="a", new_label="b") == []


class CheckAndPublishTests(TestCase):
    def test_check_adds_the_database_rules_to_the_file_rules(self):
        make_service("okSvc")
        document = {
            "id": "p",
            "steps": [
                {"id": "a", "service": "okSvc", "assignee": "user:ghost"},
                {"id": "b", "service": "unknownSvc"},
            ],
        }
        spec, problems = drafts.check(document, source="draft p")
        assert spec is None
        assert {(p.step, p.field) for p in problems} == {("a", "assignee"), ("b", "service")}

    def test_a_draft_saved_from_a_file_publishes_nothing_new_when_unchanged(self):
        make_seed_services()
        make_service("checkFieldsSvc", callable="workflows_app.builtin.check_required_fields")
        make_service("sitePlanSvc", "applicant")
        draft = drafts.save_as_draft(full_document(), actor="ann")
        first, created = drafts.publish_draft(draft, actor="ann")
        again, created_again = drafts.publish_draft(draft, actor="ann")
        assert (first.version, created, again.pk, created_again) == (1, True, first.pk, False)
        assert first.digest == FULL.digest()
        draft.refresh_from_db()
        assert draft.based_on == first

    def test_saving_a_document_into_an_existing_draft_replaces_its_steps(self):
        drafts.save_as_draft(
            {"id": "p", "steps": [{"id": "a", "service": "s"}, {"id": "b", "service": "s"}]}
        )
        draft = drafts.save_as_draft(
            {"id": "p", "name": "P", "steps": [{"id": "c", "service": "s"}]}
        )
        assert WorkflowDraft.objects.count() == 1
        assert list(DraftStep.objects.values_list("step_id", flat=True)) == ["c"]
        assert draft.name == "P"

    def test_publishing_an_invalid_draft_is_refused_and_publishes_nothing(self):
        draft = drafts.save_as_draft({"id": "p", "steps": [{"id": "a", "service": "missingSvc"}]})
        with pytest.raises(definitions.InvalidDefinition):
            drafts.publish_draft(draft)
        assert not WorkflowDefinition.objects.exists()

    def test_importing_a_file_without_a_workflow_says_so(self):
        with pytest.raises(definitions.InvalidDefinition) as refused:
            drafts.import_text("services:\n  a: {kind: human, group: g}\n", filename="s.yaml")
        assert "holds no workflow" in str(refused.value)


def answers(text: str):
    return dryrun.parse_answers(text)


class DryRunTests(SimpleTestCase):
    def test_the_path_follows_results_and_conditions(self):
        run = dryrun.dry_run(
            FULL,
            {"applicant": "Ann", "address": "Main St 1", "docs": False},
            answers("validate: ok\nrequest-docs: done\napprove: approved\nnotify: sent"),
        )
        path = [(v.step, v.result, v.goes_to) for v in run.visits]
        assert path == [
            ("validate", "ok", "request-docs"),
            ("request-docs", "done", "approve"),
            ("approve", "approved", "notify"),
            ("notify", "sent", "end"),
        ]
        assert (run.status, run.stopped_at) == (Status.COMPLETED, None)

    def test_a_result_named_in_on_takes_its_route(self):
        run = dryrun.dry_run(FULL, {"docs": True}, answers("validate: rejected"))
        assert [(v.step, v.goes_to) for v in run.visits] == [("validate", "reject")]
        assert run.status == Status.REJECTED

    def test_the_run_waits_where_no_result_is_given(self):
        run = dryrun.dry_run(FULL, {"docs": True}, answers("validate: ok"))
        assert (run.status, run.stopped_at) == (Status.RUNNING, "approve")
        assert "no (more) results" in run.message

    def test_a_loop_stops_after_the_move_limit(self):
        spec = definitions.parse_definition(
            {
                "id": "loop",
                "steps": [
                    {"id": "a", "service": "s", "next": "b"},
                    {"id": "b", "service": "s", "next": "a"},
                ],
            }
        )
        run = dryrun.dry_run(spec, {}, answers("a: ok\nb: ok\n" * 80), limit=100)
        assert len(run.visits) == 100
        assert run.status == Status.RUNNING
        assert "loops" in run.message

    def test_conditions_see_the_data_given_with_a_result(self):
        spec = definitions.parse_definition(
            {
                "id": "score",
                "steps": [
                    {
                        "id": "rate",
                        "service": "s",
                        "next": [{"if": "context.rate.score >= 5", "goto": "end"}],
                    },
                    {"id": "review", "service": "s"},
                ],
            }
        )
        high = dryrun.dry_run(spec, {}, answers('rate: ok {"score": 7}'))
        low = dryrun.dry_run(spec, {}, answers('rate: ok {"score": 2}\nreview: done'))
        assert [v.goes_to for v in high.visits] == ["end"]
        assert [v.goes_to for v in low.visits] == ["review", "end"]

    def test_a_payload_the_input_schema_refuses_is_reported(self):
        run = dryrun.dry_run(FULL, {"docs": True}, answers("validate: rejected"))
        assert any("applicant" in problem for problem in run.payload_problems)

    def test_unreadable_results_name_the_line(self):
        with pytest.raises(dryrun.BadAnswers, match="line 2"):
            answers("validate: ok\njust words")
        with pytest.raises(
            dryrun.BadAnswers, match="line 1: the data after the result is not JSON"
        ):
            answers("validate: ok {not json}")
