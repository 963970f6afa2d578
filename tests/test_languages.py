"""Languages (docs/pages.md, Languages; docs/definitions.md, Languages): language maps in
definitions, the switch, Accept-Language, the start's `language`, emails in the application's
language, and the staff pages rendering with a Spanish preference."""

from datetime import timedelta

import pytest
from django.contrib import admin
from django.core import mail
from django.test import SimpleTestCase, TestCase
from django.utils import translation
from django.utils.formats import date_format
from django.utils.timezone import localtime

from tests.factories import (
    make_definition,
    make_seed_services,
    make_service,
    make_token,
    make_user,
    start,
)
from tests.requests_to_applicant import emailed_link, pdf
from tests.test_api import ApiCase
from tests.test_outcomes import COMPLETE, NO_ADDRESS, SeedCase
from tests.test_requests import RequestCase
from workflows_app import definitions
from workflows_app.definitions import InvalidDefinition, load_text
from workflows_app.models import StepRun, WorkflowInstance

MONTHS_ES = [
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
]
MAPPED = """\
id: mapped
name: {en: Change of address, es: Cambio de domicilio}
description: {en: Register a new address., es: Registre un nuevo domicilio.}
public: true
steps:
  - id: check
    service: okSvc
    title: {en: We check your request, es: Revisamos su solicitud}
"""


def only_problem(text: str):
    with pytest.raises(InvalidDefinition) as refused:
        load_text(text, source="mapped.yaml")
    [problem] = refused.value.problems
    return problem


class LanguageMapTests(SimpleTestCase):
    def test_names_and_titles_are_shown_in_the_active_language(self):
        [spec] = load_text(MAPPED, source="mapped.yaml").workflows
        with translation.override("es"):
            shown = (spec.display_name, spec.display_description, spec.steps[0].display_title)
        assert shown == (
            "Cambio de domicilio",
            "Registre un nuevo domicilio.",
            "Revisamos su solicitud",
        )
        with translation.override("en"):
            assert spec.steps[0].display_title == "We check your request"

    def test_a_language_missing_from_the_map_falls_back_to_its_first_entry(self):
        assert definitions.localized({"es": "Hola", "en": "Hello"}, "de") == "Hola"
        assert definitions.localized({"en": "Hello", "es": "Hola"}, "es-mx") == "Hola"
        assert definitions.localized("Plain", "es") == "Plain"

    def test_an_unknown_language_code_is_refused_with_file_step_field_and_line(self):
        problem = only_problem(MAPPED.replace("es: Revisamos", "fr: Revisamos"))
        assert problem.message == (
            "language 'fr' is not one of the site's languages (en, es; set by HMS_LANGUAGES)"
        )
        assert (problem.step, problem.line) == ("check", 8)
        assert str(problem).startswith("mapped.yaml:8:") and "field 'title.fr'" in str(problem)

    def test_a_malformed_code_and_an_empty_text_are_refused(self):
        problem = only_problem(MAPPED.replace("name: {en: Change of address,", "name: {EN!: x,"))
        assert problem.message == "'EN!' is not a language code such as en or es"
        problem = only_problem(MAPPED.replace("es: Cambio de domicilio", "es: ''"))
        assert problem.message == "the es text must be non-empty text, not text ''"

    def test_a_form_label_in_an_unknown_language_is_refused(self):
        services = (
            "services:\n  askSvc:\n    kind: applicant\n    form:\n"
            "      - {name: plan, type: file, label: {en: Plan, de: Plan}}\n"
        )
        problem = only_problem(services)
        assert "language 'de' is not one of the site's languages" in problem.message
        assert problem.line == 5


class StartLanguageTests(ApiCase):
    def setUp(self):
        make_service("okSvc")
        self.definition = make_definition(
            {"id": "mapped", "steps": [{"id": "check", "service": "okSvc"}]}
        )
        self.token = make_token()

    def start(self, **body):
        return self.post("/api/workflows/start", {"workflowId": "mapped", **body}, token=self.token)

    def test_the_instance_keeps_the_language_it_was_started_in(self):
        response = self.start(language="es")
        assert response.status_code == 201
        instance = WorkflowInstance.objects.get(uuid=response.json()["instanceId"])
        assert instance.language == "es"

    def test_an_unknown_or_malformed_language_is_400_naming_the_field(self):
        for value, detail in [
            ("fr", "'language' must be one of the site's languages (en, es), not 'fr'"),
            (3, "'language' must be a JSON string"),
        ]:
            response = self.start(language=value)
            assert response.status_code == 400
            assert response.json() == {"error": "invalid_request", "detail": detail}
        assert not WorkflowInstance.objects.exists()

    def test_the_same_key_with_another_language_is_another_body(self):
        headers = {"Idempotency-Key": "k1"}
        first = self.post(
            "/api/workflows/start", {"workflowId": "mapped"}, token=self.token, headers=headers
        )
        again = self.post(
            "/api/workflows/start",
            {"workflowId": "mapped", "language": "es"},
            token=self.token,
            headers=headers,
        )
        assert (first.status_code, again.status_code) == (201, 422)


class SpanishEmailTests(SeedCase):
    def start_in(self, language, payload):
        body = {"workflowId": "building-permit", "payload": payload}
        if language:
            body["language"] = language
        response = self.queue.committed(self.post, "/api/workflows/start", body, token=self.token)
        self.queue.work()
        return WorkflowInstance.objects.get(uuid=response.json()["instanceId"])

    def test_a_refusal_is_emailed_in_spanish_with_the_reason_in_spanish(self):
        instance = self.start_in("es", NO_ADDRESS)
        [email] = self.emails_to_ada()
        assert email.subject == f"Su solicitud {instance.case_number} ha sido denegada"
        assert email.body.startswith("Hola:\n\nsu solicitud")
        assert "Los motivos:\n- falta la dirección de la obra\n" in email.body
        assert f"número de expediente {instance.case_number}" in email.body
        assert "application" not in email.body

    def test_an_approval_is_emailed_in_spanish(self):
        instance = self.start_in("es", COMPLETE)
        self.decide(instance, {"result": "approved", "reason": "Mantenga el seto."})
        [email] = self.emails_to_ada()
        assert email.subject == f"Su solicitud {instance.case_number} ha sido aprobada"
        assert "Nuestros comentarios:\n- Mantenga el seto.\n" in email.body

    def test_without_a_language_the_email_is_in_the_sites_default_whatever_the_request(self):
        self.client.defaults["HTTP_ACCEPT_LANGUAGE"] = "es"  # the portal's, not the applicant's
        instance = self.start_in("", NO_ADDRESS)
        assert instance.language == ""
        [email] = self.emails_to_ada()
        assert email.subject == f"Your application {instance.case_number} has been refused"


class SwitchTests(TestCase):
    def setUp(self):
        make_service("okSvc")
        document = load_text(MAPPED, source="mapped.yaml").workflows[0].source
        self.instance = start(make_definition(dict(document)), {})

    def test_accept_language_is_the_first_guess_and_sets_html_lang(self):
        page = self.client.get("/", HTTP_ACCEPT_LANGUAGE="es-ES,es;q=0.9").content.decode()
        assert '<html lang="es">' in page and "Servicios públicos" in page
        assert "Cambio de domicilio" in page and "Change of address" not in page

    def test_the_switch_posts_to_set_language_and_a_cookie_remembers_it(self):
        page = self.client.get(self.instance.tracker_url).content.decode()
        assert 'action="/i18n/setlang/"' in page and 'name="language" value="es"' in page
        response = self.client.post(
            "/i18n/setlang/", {"language": "es", "next": self.instance.tracker_url}
        )
        assert response.status_code == 302 and response["Location"] == self.instance.tracker_url
        assert response.cookies["hms_language"].value == "es"
        page = self.client.get(self.instance.tracker_url, HTTP_ACCEPT_LANGUAGE="en")
        text = page.content.decode()
        assert '<html lang="es">' in text and "Revisamos su solicitud" in text
        assert "Estado: Completada" in text

    def test_spanish_dates_are_written_the_spanish_way(self):
        self.client.cookies["hms_language"] = "es"
        text = self.client.get(self.instance.tracker_url).content.decode()
        with translation.override("es"):
            expected = date_format(localtime(self.instance.created_at), "DATETIME_FORMAT")
        month = MONTHS_ES[localtime(self.instance.created_at).month - 1]
        assert expected == localtime(self.instance.created_at).strftime(
            f"%-d de {month} de %Y, %H:%M"
        )
        assert expected in text

    def test_numbers_and_durations_are_written_the_spanish_way(self):
        from django.template.defaultfilters import filesizeformat
        from django.utils.timesince import timesince

        moment = localtime(self.instance.created_at)
        with translation.override("es"):
            assert filesizeformat(1536 * 1024) == "1,5\xa0MB"  # a document's size
            assert timesince(moment - timedelta(days=14), moment) == "2\xa0semanas"
        with translation.override("en"):
            assert filesizeformat(1536 * 1024) == "1.5\xa0MB"


class StaffPagesInSpanishTests(TestCase):
    """Staff pages may stay English, but a Spanish preference must not break them."""

    def test_every_staff_page_renders_with_accept_language_es(self):
        make_seed_services()
        definition = make_definition()
        instance = start(definition, {"applicant": "Ada"})
        task = StepRun.objects.get(instance=instance, step_id="approve")
        self.client.force_login(
            make_user("root", "plan-reviewers", is_staff=True, is_superuser=True)
        )
        pages = [
            "/tasks/",
            f"/tasks/{task.pk}/",
            "/admin/",
            f"/admin/workflows_app/workflowinstance/{instance.pk}/change/",
            f"/admin/workflows_app/workflowdefinition/{definition.pk}/change/",
            # The supervisors' reports (docs/reports.md).
            "/reports/",
            "/reports/backlog/",
            "/reports/workload/",
            "/reports/durations/",
            # Every list in the admin, and its add page where there is one.
            *(f"/admin/{m._meta.app_label}/{m._meta.model_name}/" for m in admin.site._registry),
        ]
        for page in pages:
            response = self.client.get(page, HTTP_ACCEPT_LANGUAGE="es")
            assert response.status_code == 200, page
            assert 'lang="es"' in response.content.decode(), page
        self.client.logout()
        login = self.client.get("/accounts/login/?next=/tasks/", HTTP_ACCEPT_LANGUAGE="es")
        assert login.status_code == 200


class AnswerInSpanishTests(RequestCase):
    def test_the_form_reads_in_spanish_and_answering_makes_spanish_the_emails_language(self):
        instance, run = self.waiting()
        assert instance.language == ""
        link = emailed_link(run)
        self.client.cookies["hms_language"] = "es"
        page = self.client.get(link).content.decode()
        assert "¿Algo más?" in page and "Enviar" in page and "Anything we should know" not in page
        response = self.client.post(link, {"sitePlan": pdf(), "note": ""})
        assert response.status_code == 302
        instance.refresh_from_db()
        assert instance.language == "es"

    def test_the_request_email_is_written_in_the_applications_language(self):
        instance, run = self.waiting()
        WorkflowInstance.objects.filter(pk=instance.pk).update(language="es")
        emailed_link(run)
        email = mail.outbox[-1]
        assert (
            email.subject == f"Necesitamos algo de usted para la solicitud {instance.case_number}"
        )
        assert "funciona durante 14 días" in email.body and "Hola:" in email.body
