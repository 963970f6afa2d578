"""The rules of requests to the applicant: the `applicant` service and its form, a workflow's
`deadline`, onTimeout `reject`; the answer checked against the form; the paused deadline."""

import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from django.test import SimpleTestCase, TestCase
from jsonschema import Draft202012Validator

from tests.factories import make_service
from workflows_app import definitions, engine
from workflows_app.authoring import publishing
from workflows_app.definitions import FormField, InvalidDefinition, load_text
from workflows_app.engine import DocumentFacts, InvalidAnswer, working_time
from workflows_app.models import Service

ROOT = Path(__file__).resolve().parents[1]

SERVICES = """\
services:
  sitePlanSvc:
    kind: applicant
    form:
      - name: sitePlan
        label: {en: Site plan, es: Plano del terreno}
        type: file
        required: true
        accept: [pdf, jpeg]
        maxSize: 5MB
      - name: storeys
        type: number
      - name: use
        type: choice
        choices: [home, {value: shop, label: {en: A shop, es: Una tienda}}]
"""


def problems(text: str) -> list[str]:
    try:
        load_text(text, source="s.yaml")
    except InvalidDefinition as refused:
        return [str(problem) for problem in refused.problems]
    return []


class ApplicantServiceTests(SimpleTestCase):
    def test_an_applicant_service_loads_with_its_form(self):
        (service,) = load_text(SERVICES, source="s.yaml").services
        site_plan, storeys, use = service.form
        assert site_plan == FormField(
            "sitePlan",
            {"en": "Site plan", "es": "Plano del terreno"},
            "file",
            True,
            (),
            ("pdf", "jpg"),
            5 * 1024 * 1024,
        )
        assert (storeys.type, storeys.required, storeys.display_label) == (
            "number",
            False,
            "Storeys",
        )
        assert use.choices == (("home", "home"), ("shop", {"en": "A shop", "es": "Una tienda"}))

    def test_a_file_field_accepts_pdf_png_and_jpg_unless_it_says(self):
        (service,) = load_text(
            "services: {ask: {kind: applicant, form: [{name: doc, type: file}]}}", source="s.yaml"
        ).services
        assert service.form[0].accept == ("pdf", "png", "jpg")

    def test_every_problem_of_a_form_names_the_file_service_field_and_line(self):
        text = """\
services:
  ask:
    kind: applicant
    form:
      - name: 1plan
        type: upload
      - name: plan
        type: file
        accept: [pdf, docx]
        maxSize: 5 parsecs
        choices: [a]
      - name: plan
        label: {EN: Plan}
      - {name: when, type: text, accept: [pdf]}
  empty: {kind: applicant}
"""
        assert problems(text) == [
            "s.yaml:5: service 'ask', field 'form[0].name': name text '1plan' must start with a "
            "letter and use only letters, digits and '_' (1-64 characters), e.g. sitePlan",
            "s.yaml:6: service 'ask', field 'form[0].type': type 'upload' is not one of text, "
            "textarea, number, date, choice, file",
            "s.yaml:9: service 'ask', field 'form[1].accept[1]': 'docx' is not a document type "
            "told by its content; use pdf, png, jpg, gif, webp, tif, heic",
            "s.yaml:10: service 'ask', field 'form[1].maxSize': '5 parsecs' is not a size; use a "
            "whole number with a unit, e.g. 10MB, 512KB or 2MiB",
            "s.yaml:11: service 'ask', field 'form[1].choices': choices applies to choice fields "
            "only; this field is file",
            "s.yaml:13: service 'ask', field 'form[2].label.EN': 'EN' is not a language code such "
            "as en or es",
            "s.yaml:14: service 'ask', field 'form[3].accept': accept applies to file fields only; "
            "this field is text",
            "s.yaml:15: service 'empty', field 'form': form is missing; an applicant service needs "
            "a list of fields, e.g. [{name: sitePlan, label: Site plan, type: file, required: "
            "true}]",
        ]

    def test_two_fields_with_one_name_are_refused(self):
        text = "services: {ask: {kind: applicant, form: [{name: a}, {name: a}]}}"
        assert problems(text) == [
            "s.yaml:1: service 'ask', field 'form[1].name': duplicate field name 'a'; form[0] "
            "already uses it"
        ]

    def test_a_field_of_another_kind_says_which_kind_takes_it(self):
        text = "services: {ask: {kind: applicant, group: g, form: [{name: a}]}}"
        assert problems(text) == [
            "s.yaml:1: service 'ask', field 'group': unknown field 'group' for an applicant "
            "service; it belongs to human services (an applicant service takes form)"
        ]


class DeadlineDefinitionTests(SimpleTestCase):
    def test_a_workflow_may_have_a_deadline_and_steps_may_lapse(self):
        text = (
            "id: permit\ndeadline: 20 working days\nsteps:\n"
            "  - {id: ask, service: s, timeout: 14d, onTimeout: reject}\n"
        )
        (spec,) = load_text(text, source="p.yaml").workflows
        assert spec.deadline == definitions.parse_duration("20 working days")
        assert spec.step("ask").on_timeout == "reject"

    def test_a_bad_deadline_is_reported_on_its_line(self):
        text = "id: permit\ndeadline: soon\nsteps: [{id: a, service: s}]\n"
        assert problems(text) == [
            "s.yaml:2: workflow 'permit', field 'deadline': 'soon' is not a duration; use 90s, "
            "30m, 48h, 2d, PT48H or '2 working days'"
        ]


class SchemaTests(SimpleTestCase):
    def validator(self):
        return Draft202012Validator(json.loads((ROOT / "docs/workflow.schema.json").read_text()))

    def test_the_json_schema_accepts_applicant_services_and_deadlines(self):
        (service,) = load_text(SERVICES, source="s.yaml").services
        assert self.validator().is_valid({"services": {service.name: dict(service.source)}})
        workflow = {
            "id": "p",
            "deadline": "30d",
            "steps": [{"id": "a", "service": "s", "timeout": "2d", "onTimeout": "reject"}],
        }
        assert self.validator().is_valid(workflow)

    def test_the_json_schema_refuses_common_form_mistakes(self):
        for field in (
            {"name": "a", "type": "file", "accept": ["docx"]},
            {"name": "a", "type": "text", "choices": ["x"]},
            {"name": "a", "type": "choice"},
            {"name": "a", "type": "text", "maxSize": "1MB"},
            {"name": "1a"},
        ):
            document = {"services": {"s": {"kind": "applicant", "form": [field]}}}
            assert not self.validator().is_valid(document), field


class PublishingTests(TestCase):
    def test_loading_an_applicant_service_keeps_its_form(self):
        (service,) = load_text(SERVICES, source="s.yaml").services
        publishing.save_service(service, publishing.LoadReport())
        row = Service.objects.get(name="sitePlanSvc")
        assert row.kind == "applicant" and row.form[0]["name"] == "sitePlan"

    def test_a_request_to_the_applicant_cannot_be_escalated(self):
        make_service("askSvc", "applicant")
        text = "id: p\nsteps: [{id: ask, service: askSvc, timeout: 2d, onTimeout: escalate}]\n"
        document = load_text(text, source="p.yaml")
        found = publishing.check_references([publishing.Sourced("p.yaml", document)])
        assert [(p.step, p.field) for p in found] == [("ask", "onTimeout")]
        assert "cannot be escalated or assigned" in found[0].message


FORM = (
    FormField("plan", "Plan", "file", True, accept=("pdf",), max_size=1000),
    FormField("storeys", type="number"),
    FormField("when", type="date"),
    FormField("use", type="choice", choices=(("home", "home"), ("shop", "shop"))),
    FormField("note", type="text"),
)


class CheckAnswerTests(SimpleTestCase):
    documents = {
        "d1": DocumentFacts("pdf", 900),
        "big": DocumentFacts("pdf", 5000),
        "img": DocumentFacts("png", 10),
    }

    def check(self, **data):
        return engine.check_answer(FORM, data, self.documents, max_upload=10_000)

    def refusal(self, **data) -> dict:
        with self.assertRaises(InvalidAnswer) as refused:
            self.check(**data)
        return refused.exception.problems

    def test_a_good_answer_is_kept_as_given_with_text_trimmed(self):
        answer = self.check(plan="d1", storeys=2, when="2026-03-31", use="shop", note=" hi ")
        assert answer == {
            "plan": "d1",
            "storeys": 2,
            "when": "2026-03-31",
            "use": "shop",
            "note": "hi",
        }

    def test_optional_fields_left_out_or_empty_are_not_kept(self):
        assert self.check(plan="d1", note="", storeys=None) == {"plan": "d1"}

    def test_each_wrong_field_says_why(self):
        assert self.refusal(plan="img", storeys="2", when="31/03/2026", use="farm", note=["x"]) == {
            "plan": "is of type png; send pdf",
            "storeys": "must be a number, such as 12 or 3.5",
            "when": "must be a date written YYYY-MM-DD, such as 2026-03-31",
            "use": "choose one of home, shop",
            "note": "must be text",
        }

    def test_a_missing_required_field_and_an_unknown_one_are_named(self):
        assert self.refusal(colour="red") == {
            "colour": "this request does not ask for 'colour'; it asks for plan, storeys, when, "
            "use, note",
            "plan": "this is required",
        }

    def test_a_document_over_the_fields_size_or_of_another_application_is_refused(self):
        assert self.refusal(plan="big") == {"plan": "is 4.9 KB; at most 1000 bytes is allowed"}
        assert self.refusal(plan="elsewhere") == {
            "plan": "must be the documentId of a document uploaded for this application"
        }

    def test_booleans_and_infinity_are_not_numbers(self):
        assert "storeys" in self.refusal(plan="d1", storeys=True)
        assert "storeys" in self.refusal(plan="d1", storeys=float("inf"))


T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday


class DeadlineTests(SimpleTestCase):
    def test_a_pause_moves_a_wall_clock_deadline_by_the_time_waited(self):
        due = T0 + timedelta(days=30)
        later = engine.resumed(due, T0 + timedelta(days=1), T0 + timedelta(days=4))
        assert later == due + timedelta(days=3)

    def test_a_pause_keeps_the_working_time_left(self):
        calendar = working_time.Calendar(tz="UTC", work_start=time(9), work_end=time(17))
        due = T0 + timedelta(days=2)  # Wednesday 10:00: 16 working hours after Monday 10:00
        resumed = engine.resumed(
            due, T0, T0 + timedelta(days=4, hours=-1), working=True, calendar=calendar
        )
        # Paused Monday 10:00, resumed Friday 09:00: 16 working hours later is Monday 17:00.
        assert resumed == datetime(2026, 3, 9, 17, 0, tzinfo=UTC)

    def test_while_paused_the_due_date_is_as_if_answered_now(self):
        due = T0 + timedelta(days=10)
        state = engine.deadline_state(due, paused_at=T0, ended_at=None, now=T0 + timedelta(days=2))
        assert state == engine.DeadlineState(due + timedelta(days=2), True, 10 * 86400)

    def test_once_ended_the_clock_shows_the_margin_at_the_end(self):
        due = T0 + timedelta(days=10)
        state = engine.deadline_state(
            due, paused_at=None, ended_at=T0 + timedelta(days=11), now=T0 + timedelta(days=40)
        )
        assert state == engine.DeadlineState(due, False, -86400)


class TimeoutTests(SimpleTestCase):
    def test_an_unanswered_request_lapses_unless_the_step_says_otherwise(self):
        step = definitions.StepSpec("ask", "s")
        assert engine.on_timeout(step, service_kind="applicant").kind == "reject"
        reminded = definitions.StepSpec("ask", "s", on_timeout="escalate")
        assert engine.on_timeout(reminded, service_kind="applicant").kind == "retry"


class FullExampleTests(SimpleTestCase):
    """workflows/building-permit-full.yaml: validation asks for the site plan when it is missing."""

    def test_a_missing_site_plan_leads_to_the_request_and_back_to_validation(self):
        from workflows_app.definitions import load_file

        (spec,) = load_file(ROOT / "workflows" / "building-permit-full.yaml").workflows
        moves = [
            engine.advance(spec, step, result, payload={}, context={})
            for step, result in (("validate", "incomplete"), ("upload-site-plan", "submitted"))
        ]
        assert [m.step for m in moves] == ["upload-site-plan", "validate"]
        assert spec.deadline == definitions.parse_duration("40 working days")

    def test_the_demo_validation_wants_a_site_plan_for_the_full_example_only(self):
        from workflows_app.management.demo_server import validate_request

        application = {"applicant": "Ada", "address": "1 Main St"}
        full = {"workflowId": "building-permit-full", "payload": application, "context": {}}
        assert validate_request(full) == {
            "result": "incomplete",
            "data": {"reasons": ["the site plan is missing"]},
        }
        sent = {**full, "context": {"upload-site-plan": {"sitePlan": "a-document-id"}}}
        assert validate_request(sent)["result"] == "ok"
        seed = {"workflowId": "building-permit", "payload": application}
        assert validate_request(seed)["result"] == "ok"


class ServiceAdminTests(TestCase):
    def test_the_admin_checks_an_applicant_services_form_with_the_loaders_rules(self):
        from workflows_app.admin.service_admin import service_problems

        data = {"name": "ask", "kind": "applicant", "form": [{"name": "plan", "type": "upload"}]}
        assert service_problems(data) == [
            ("form", "type 'upload' is not one of text, textarea, number, date, choice, file")
        ]
        good = {"name": "ask", "kind": "applicant", "form": [{"name": "plan", "type": "file"}]}
        assert service_problems(good) == []
