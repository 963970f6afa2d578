"""The admin: authoring drafts, publishing, files, services, and operating instances."""

import json
import uuid
from datetime import timedelta
from pathlib import Path

from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pytest_httpserver import HTTPServer
from standardwebhooks.webhooks import Webhook

from tests.factories import (
    committed,
    make_definition,
    make_seed_services,
    make_service,
    make_user,
    run_queued,
    simple_workflow,
    start,
)
from workflows_app import definitions, runtime
from workflows_app.admin.forms import DraftStepForm
from workflows_app.models import (
    DraftStep,
    Event,
    RunState,
    Service,
    Status,
    StepRun,
    WorkflowDefinition,
    WorkflowDraft,
    WorkflowInstance,
)
from workflows_app.queries import catalog

ROOT = Path(__file__).resolve().parents[1]
ADMIN = "/admin/workflows_app"
STEP_FIELDS = DraftStepForm.Meta.fields  # the inline rows the page posts


def draft_data(rows, *, key="permit", initial_ids=(), draft_id=None, **fields):
    """The POST body of the draft form: its fields and the steps' inline formset."""
    data = {
        "key": key,
        "name": "",
        "description": "",
        "input_schema": "",
        **fields,
        "steps-TOTAL_FORMS": str(len(rows)),
        "steps-INITIAL_FORMS": str(len(initial_ids)),
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        for name in STEP_FIELDS:
            data[f"steps-{i}-{name}"] = "" if row.get(name) is None else str(row[name])
        if i < len(initial_ids):
            data[f"steps-{i}-id"], data[f"steps-{i}-draft"] = str(initial_ids[i]), str(draft_id)
    return data


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def waiting_run(instance) -> StepRun:
    return StepRun.objects.get(instance=instance, state=RunState.WAITING)


PERMIT_ROWS = [
    {"step_id": "check", "service": "okSvc", "title": "We check your application"},
    {
        "step_id": "review",
        "service": "reviewSvc",
        "timeout": "48h",
        "on_timeout": "escalate",
        "on": "rejected: reject",
    },
    {"step_id": "notify", "service": "okSvc"},
]


class AuthoringInTheAdminTests(TestCase):
    def setUp(self):
        self.author = make_user("ava", "Workflow authors", is_staff=True)
        self.client.force_login(self.author)

    def register_services(self):
        for body in (
            {"name": "okSvc", "kind": "python", "callable": "workflows_app.builtin.accept"},
            {"name": "reviewSvc", "kind": "human", "group": "plan-reviewers"},
        ):
            response = self.client.post(f"{ADMIN}/service/add/", body)
            assert response.status_code == 302, response.context["adminform"].form.errors

    def publish(self, rows, **extra):
        draft = WorkflowDraft.objects.filter(key="permit").first()
        if draft is None:
            return self.client.post(
                f"{ADMIN}/workflowdraft/add/", draft_data(rows, _publish="1", **extra)
            )
        ids = list(draft.steps.order_by("position").values_list("pk", flat=True))
        data = draft_data(rows, initial_ids=ids, draft_id=draft.pk, _publish="1", **extra)
        return self.client.post(f"{ADMIN}/workflowdraft/{draft.pk}/change/", data)

    def test_a_workflow_authored_entirely_in_the_admin_runs(self):
        self.register_services()
        response = self.publish(PERMIT_ROWS, name="Building permit")
        definition = WorkflowDefinition.objects.get(key="permit")
        assert response["Location"] == f"{ADMIN}/workflowdefinition/{definition.pk}/change/"
        assert (definition.version, catalog.spec_of(definition).step_ids) == (
            1,
            ("check", "review", "notify"),
        )
        history = self.client.get(
            f"{ADMIN}/workflowdefinition/{definition.pk}/history/"
        ).content.decode()
        assert "Published from the draft permit." in history and "ava" in history
        instance = start(definition, {"applicant": "Ann"})
        committed(runtime.complete_task, run_id=waiting_run(instance).pk, result="approved")
        instance.refresh_from_db()
        assert instance.status == Status.COMPLETED
        assert list(instance.runs.values_list("step_id", flat=True)) == [
            "check",
            "review",
            "notify",
        ]

    def test_publishing_a_change_leaves_running_instances_on_their_version(self):
        self.register_services()
        self.publish(PERMIT_ROWS)
        first = WorkflowDefinition.objects.get(key="permit")
        running = start(first)
        run_queued(running)
        changed = [*PERMIT_ROWS[:2], {"step_id": "archive", "service": "okSvc"}, PERMIT_ROWS[2]]
        self.publish(changed)
        second = WorkflowDefinition.objects.get(key="permit", version=2)
        assert catalog.spec_of(second).step_ids == ("check", "review", "archive", "notify")
        first.refresh_from_db()
        assert catalog.spec_of(first).step_ids == ("check", "review", "notify")  # frozen
        committed(runtime.complete_task, run_id=waiting_run(running).pk, result="approved")
        running.refresh_from_db()
        assert (running.definition_id, running.status) == (first.pk, Status.COMPLETED)
        assert "archive" not in running.runs.values_list("step_id", flat=True)

    def test_publishing_an_unchanged_draft_makes_no_new_version(self):
        self.register_services()
        self.publish(PERMIT_ROWS)
        response = self.publish(PERMIT_ROWS)
        assert WorkflowDefinition.objects.filter(key="permit").count() == 1
        assert any("nothing published" in m for m in messages_of(response))

    def test_validate_shows_each_problem_on_its_field_and_saves_nothing(self):
        self.register_services()
        rows = [
            {**PERMIT_ROWS[0], "timeout": "48x"},
            {**PERMIT_ROWS[1], "next": "if payload.x goto nowhere"},
            PERMIT_ROWS[2],
        ]
        response = self.client.post(
            f"{ADMIN}/workflowdraft/add/", draft_data(rows, key="permit_x", _validate="1")
        )
        assert response.status_code == 200
        forms = response.context["inline_admin_formsets"][0].formset.forms
        assert "48x" in forms[0].errors["timeout"][0]
        assert forms[1].errors["next"][0].startswith("line 1: 'nowhere' is not a step")
        assert "not a slug" in response.context["adminform"].form.errors["key"][0]
        assert not forms[2].errors
        page = response.content.decode()
        assert "The draft has 3 problems; each is shown on its field." in page
        assert "line 1: &#x27;nowhere&#x27; is not a step" in page
        assert not WorkflowDraft.objects.exists()

    def test_validate_checks_what_only_the_database_knows(self):
        self.register_services()
        rows = [PERMIT_ROWS[0], {**PERMIT_ROWS[1], "escalate_to": "group:backup\nuser:ghost"}]
        response = self.client.post(f"{ADMIN}/workflowdraft/add/", draft_data(rows, _validate="1"))
        forms = response.context["inline_admin_formsets"][0].formset.forms
        assert forms[1].errors["escalate_to"] == ["line 2: user 'ghost' does not exist"]
        assert not WorkflowDraft.objects.exists()

    def test_plain_save_keeps_an_unfinished_draft(self):
        self.register_services()
        rows = [{"step_id": "check", "service": "okSvc", "timeout": "soon"}]
        response = self.client.post(f"{ADMIN}/workflowdraft/add/", draft_data(rows, _save="1"))
        assert response.status_code == 302
        draft = WorkflowDraft.objects.get()
        page = self.client.get(f"{ADMIN}/workflowdraft/{draft.pk}/change/").content.decode()
        assert "The diagram is drawn once the saved draft is valid" in page

    def test_validate_saves_a_valid_draft_and_says_it_is_ready(self):
        self.register_services()
        response = self.client.post(
            f"{ADMIN}/workflowdraft/add/", draft_data(PERMIT_ROWS, _validate="1")
        )
        draft = WorkflowDraft.objects.get()
        assert response["Location"] == f"{ADMIN}/workflowdraft/{draft.pk}/change/"
        assert messages_of(response)[-1] == "The draft permit is valid and ready to publish."
        assert not WorkflowDefinition.objects.exists()

    def test_steps_left_without_a_position_are_numbered_after_the_others(self):
        self.register_services()
        rows = [
            {**PERMIT_ROWS[0], "position": 10},
            PERMIT_ROWS[1],
            {**PERMIT_ROWS[2], "position": 5},
        ]
        self.client.post(f"{ADMIN}/workflowdraft/add/", draft_data(rows, _save="1"))
        steps = DraftStep.objects.order_by("position").values_list("step_id", "position")
        assert list(steps) == [("notify", 5), ("check", 10), ("review", 20)]

    def test_the_draft_page_draws_the_saved_rows(self):
        self.register_services()
        self.client.post(f"{ADMIN}/workflowdraft/add/", draft_data(PERMIT_ROWS, _save="1"))
        draft = WorkflowDraft.objects.get()
        rows = [{**PERMIT_ROWS[0], "title": "Renamed <check>"}, *PERMIT_ROWS[1:]]
        ids = list(draft.steps.order_by("position").values_list("pk", flat=True))
        self.client.post(
            f"{ADMIN}/workflowdraft/{draft.pk}/change/",
            draft_data(rows, initial_ids=ids, draft_id=draft.pk, _continue="1"),
        )
        page = self.client.get(f"{ADMIN}/workflowdraft/{draft.pk}/change/").content.decode()
        assert "<svg" in page and "Renamed &lt;check&gt;" in page

    def test_the_dry_run_shows_the_path_and_starts_nothing(self):
        self.register_services()
        self.client.post(f"{ADMIN}/workflowdraft/add/", draft_data(PERMIT_ROWS, _save="1"))
        draft = WorkflowDraft.objects.get()
        response = self.client.post(
            f"{ADMIN}/workflowdraft/{draft.pk}/dry-run/",
            {"payload": '{"applicant": "Ann"}', "results": "check: ok\nreview: rejected"},
        )
        outcome = response.context["outcome"]
        assert [(v.step, v.goes_to) for v in outcome.visits] == [
            ("check", "review"),
            ("review", "reject"),
        ]
        assert "ends rejected" in response.content.decode()
        assert not WorkflowInstance.objects.exists()


class VersionsAndFilesTests(TestCase):
    def setUp(self):
        make_seed_services()
        make_service("checkFieldsSvc", callable="workflows_app.builtin.check_required_fields")
        make_service("sitePlanSvc", "applicant")
        self.client.force_login(make_user("root", is_staff=True, is_superuser=True))

    def test_published_versions_are_read_only_even_for_a_superuser(self):
        definition = make_definition()
        page = self.client.get(f"{ADMIN}/workflowdefinition/{definition.pk}/change/")
        assert 'name="_save"' not in page.content.decode()
        assert (
            self.client.post(f"{ADMIN}/workflowdefinition/{definition.pk}/change/", {}).status_code
            == 403
        )
        assert (
            self.client.post(
                f"{ADMIN}/workflowdefinition/{definition.pk}/delete/", {"post": "yes"}
            ).status_code
            == 403
        )
        assert self.client.get(f"{ADMIN}/workflowdefinition/add/").status_code == 403

    def test_the_definition_page_shows_its_diagram(self):
        definition = make_definition()
        page = self.client.get(
            f"{ADMIN}/workflowdefinition/{definition.pk}/change/"
        ).content.decode()
        assert "<svg" in page and "terminal-end" in page

    def test_any_version_exports_as_yaml_or_json_that_loads_back(self):
        definition = make_definition()
        for fmt in ("yaml", "json"):
            response = self.client.get(f"{ADMIN}/workflowdefinition/{definition.pk}/export/{fmt}/")
            assert (
                response["Content-Disposition"]
                == f'attachment; filename="building-permit-v1.{fmt}"'
            )
            (spec,) = definitions.load_text(response.content.decode(), source=f"x.{fmt}").workflows
            assert spec.digest() == definition.digest

    def test_the_difference_between_two_versions_is_shown_escaped(self):
        first = make_definition()
        document = json.loads(json.dumps(first.source))
        document["steps"][1]["title"] = "<b>Review</b>"
        second = make_definition(document)
        page = self.client.get(f"{ADMIN}/workflowdefinition/{second.pk}/diff/?against={first.pk}")
        html = page.content.decode()
        assert "<ins>+  title: &lt;b&gt;Review&lt;/b&gt;</ins>" in html
        assert "<strong>--- building-permit v1</strong>" in html

    def test_a_yaml_file_imports_into_a_draft(self):
        upload = SimpleUploadedFile(
            "full.yaml",
            (ROOT / "tests" / "fixtures" / "definitions" / "permit-single-lane.yaml").read_bytes(),
        )
        response = self.client.post(f"{ADMIN}/workflowdraft/import/", {"file": upload})
        draft = WorkflowDraft.objects.get(key="building-permit-full")
        assert response["Location"] == f"{ADMIN}/workflowdraft/{draft.pk}/change/"
        assert draft.steps.count() == 5 and draft.public

    def test_a_refused_file_lists_every_problem_with_its_line_and_saves_nothing(self):
        text = "id: p\nsteps:\n  - id: a\n    service: s\n    timeout: 48x\n  - id: end\n    service: s\n"
        upload = SimpleUploadedFile("bad.yaml", text.encode())
        page = self.client.post(f"{ADMIN}/workflowdraft/import/", {"file": upload}).content.decode()
        assert "bad.yaml:5" in page and "bad.yaml:6" in page
        assert "2 problems" in page
        assert not WorkflowDraft.objects.exists()

    def test_an_import_does_not_overwrite_a_draft_unless_asked(self):
        WorkflowDraft.objects.create(key="building-permit", name="mine")
        path = ROOT / "workflows" / "building-permit.json"
        self.client.post(
            f"{ADMIN}/workflowdraft/import/",
            {"file": SimpleUploadedFile("b.json", path.read_bytes())},
        )
        assert WorkflowDraft.objects.get().name == "mine"
        self.client.post(
            f"{ADMIN}/workflowdraft/import/",
            {"file": SimpleUploadedFile("b.json", path.read_bytes()), "replace": "on"},
        )
        assert WorkflowDraft.objects.get().steps.count() == 3

    def test_a_version_can_be_edited_as_a_new_draft(self):
        definition = make_definition()
        response = self.client.post(f"{ADMIN}/workflowdefinition/{definition.pk}/edit/")
        draft = WorkflowDraft.objects.get()
        assert response["Location"] == f"{ADMIN}/workflowdraft/{draft.pk}/change/"
        assert (draft.based_on, draft.steps.count()) == (definition, 3)
        page = self.client.get(response["Location"]).content.decode()
        assert "Changes since" in page and "No difference." in page


class ServiceAdminTests(TestCase):
    def setUp(self):
        self.client.force_login(make_user("ava", "Workflow authors", is_staff=True))

    def add(self, **body):
        return self.client.post(f"{ADMIN}/service/add/", {"timeout_seconds": "", **body})

    def test_a_service_is_checked_with_the_loaders_rules(self):
        errors = self.add(name="a", kind="http").context["adminform"].form.errors
        assert "url is missing" in errors["url"][0]
        errors = (
            self.add(name="b", kind="python", callable="os.system").context["adminform"].form.errors
        )
        assert "not under an allowed module" in errors["callable"][0]
        errors = self.add(name="c", kind="human", group="group:x").context["adminform"].form.errors
        assert "without 'group:'" in errors["group"][0]
        assert not Service.objects.exists()

    def test_the_secret_is_never_shown_and_a_blank_input_keeps_it(self):
        self.add(name="svc", kind="http", url="http://127.0.0.1:9/", secret="s3cr3t-value")
        service = Service.objects.get()
        url = f"{ADMIN}/service/{service.pk}/change/"
        assert "s3cr3t-value" not in self.client.get(url).content.decode()
        self.client.post(
            url, {"name": "svc", "kind": "http", "url": "http://127.0.0.1:8/", "secret": ""}
        )
        service.refresh_from_db()
        assert (service.url, service.secret) == ("http://127.0.0.1:8/", "s3cr3t-value")
        self.client.post(
            url,
            {"name": "svc", "kind": "http", "url": "http://127.0.0.1:8/", "remove_secret": "on"},
        )
        service.refresh_from_db()
        assert service.secret == ""

    def test_the_test_action_sends_a_signed_ping_and_shows_the_status_not_the_body(self):
        secret = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQ="
        with HTTPServer(host="127.0.0.1", port=0) as server:
            server.expect_request("/ping", method="POST").respond_with_data(
                '{"pong": true}', content_type="application/json"
            )
            service = make_service("pingSvc", "http", url=server.url_for("/ping"), secret=secret)
            response = self.client.post(
                f"{ADMIN}/service/", {"action": "test_service", "_selected_action": [service.pk]}
            )
            request, _ = server.log[0]
        shown = messages_of(response)
        assert len(shown) == 1 and shown[0].startswith("pingSvc answered 200 in")
        assert "pong" not in shown[0]
        Webhook(secret).verify(request.get_data(), dict(request.headers))  # raises when unsigned

    def test_an_unreachable_service_is_reported(self):
        service = make_service("downSvc", "http", url="http://127.0.0.1:9/")
        response = self.client.post(
            f"{ADMIN}/service/", {"action": "test_service", "_selected_action": [service.pk]}
        )
        assert messages_of(response) == [
            "downSvc: cannot reach http://127.0.0.1:9/ (ConnectionError)"
        ]


class InstanceAdminTests(TestCase):
    def setUp(self):
        make_seed_services()
        self.definition = make_definition()
        self.supervisor = make_user("sam", "Supervisors", is_staff=True)
        self.client.force_login(self.supervisor)

    def waiting(self, applicant="Ann Smith"):
        instance = start(self.definition, {"applicant": applicant})
        run_queued(instance)
        return instance

    def listed(self, query: str) -> set[int]:
        response = self.client.get(f"{ADMIN}/workflowinstance/?{query}")
        assert response.status_code == 200
        return {row.pk for row in response.context["cl"].result_list}

    def test_filters_find_instances_by_workflow_version_status_step_overdue_and_escalation(self):
        waiting, late = self.waiting(), self.waiting()
        done = start(simple_workflow("other"))
        run_queued(done)
        StepRun.objects.filter(instance=late, state=RunState.WAITING).update(
            due_at=timezone.now() - timedelta(hours=1), wake_at=timezone.now() - timedelta(hours=1)
        )
        runtime.process_due(now=timezone.now())  # the time-out escalates `late` to the backups
        assert self.listed("workflow=other") == {done.pk}
        assert self.listed(f"version={self.definition.pk}") == {waiting.pk, late.pk}
        assert self.listed("status__exact=completed") == {done.pk}
        assert self.listed("step=approve") == {waiting.pk, late.pk}
        assert self.listed("escalated=now") == self.listed("escalated=ever") == {late.pk}
        StepRun.objects.filter(instance=waiting, state=RunState.WAITING).update(
            due_at=timezone.now() - timedelta(minutes=1)
        )
        assert self.listed("overdue=yes") == {waiting.pk}
        assert self.listed("overdue=no") == {late.pk, done.pk}

    def test_search_by_instance_id_case_number_or_applicant_name(self):
        ann, bob = self.waiting("Ann Smith"), self.waiting("Bob Jones")
        assert self.listed(f"q={ann.uuid}") == {ann.pk}
        assert self.listed(f"q={bob.case_number.lower()}") == {bob.pk}
        assert self.listed("q=smi") == {ann.pk}
        assert self.listed("q=nobody") == set()

    def test_the_instance_page_shows_the_timeline_and_the_whole_history(self):
        instance = self.waiting()
        runtime.cancel_instance(
            instance_id=instance.pk, reason="withdrawn by phone", actor="user:sam"
        )
        page = self.client.get(f"{ADMIN}/workflowinstance/{instance.pk}/change/").content.decode()
        assert 'id="instance-timeline"' in page and 'id="instance-events"' in page
        assert "withdrawn by phone" in page and "Cancelled" in page
        assert 'name="_save"' not in page  # read-only

    def test_retry_from_the_failed_step_on_the_instance_page(self):
        make_service("downSvc", "http", url="http://127.0.0.1:9/")
        instance = start(
            simple_workflow(
                "flaky", steps=[{"id": "call", "service": "downSvc", "retry": {"max": 0}}]
            )
        )
        run_queued(instance)
        instance.refresh_from_db()
        assert instance.status == Status.FAILED
        response = self.client.post(
            f"{ADMIN}/workflowinstance/{instance.pk}/change/",
            {"CHANGE_FORM-action": "retry_failed", "_selected_action": instance.pk, "index": "0"},
        )
        assert response.status_code == 302
        instance.refresh_from_db()
        assert instance.status == Status.RUNNING
        assert Event.objects.filter(
            instance=instance, type=Event.Type.RETRIED, actor="user:sam"
        ).exists()

    def test_cancel_asks_for_a_reason_then_records_it(self):
        instance = self.waiting()
        action = {"action": "cancel_with_reason", "_selected_action": [instance.pk], "index": "0"}
        page = self.client.post(f"{ADMIN}/workflowinstance/", action)
        assert page.status_code == 200 and 'name="_confirm"' in page.content.decode()
        refused = self.client.post(
            f"{ADMIN}/workflowinstance/", {**action, "_confirm": "1", "reason": ""}
        )
        assert (
            refused.status_code == 200 and WorkflowInstance.objects.get().status == Status.RUNNING
        )
        self.client.post(
            f"{ADMIN}/workflowinstance/", {**action, "_confirm": "1", "reason": "duplicate"}
        )
        instance.refresh_from_db()
        event = Event.objects.get(instance=instance, type=Event.Type.CANCELLED)
        assert (instance.status, event.actor, event.detail["reason"]) == (
            Status.CANCELLED,
            "user:sam",
            "duplicate",
        )

    def test_reassign_the_current_task_with_a_reason(self):
        instance = self.waiting()
        make_user("olga")
        self.client.post(
            f"{ADMIN}/workflowinstance/",
            {
                "action": "reassign_task",
                "_selected_action": [instance.pk],
                "index": "0",
                "_confirm": "1",
                "user": "olga",
                "reason": "Rita is ill",
            },
        )
        run = waiting_run(instance)
        event = Event.objects.get(instance=instance, type=Event.Type.REASSIGNED)
        assert run.assignee_user.username == "olga"
        assert (event.detail["to"], event.detail["reason"], event.actor) == (
            "user:olga",
            "Rita is ill",
            "user:sam",
        )

    def test_an_action_refused_by_the_service_says_why(self):
        instance = start(simple_workflow())
        run_queued(instance)
        response = self.client.post(
            f"{ADMIN}/workflowinstance/",
            {"action": "retry_failed", "_selected_action": [instance.pk], "index": "0"},
        )
        assert any("only a failed instance can be retried" in m for m in messages_of(response))


def insert_instances(definition, count: int) -> None:
    """Many instances in seconds: one executemany, each value prepared by its model field.

    bulk_create compiles SQL per row, which takes about a minute for 100,000 rows.
    """
    fields = {f.attname: f for f in WorkflowInstance._meta.concrete_fields if f.attname != "id"}
    now = timezone.now()
    constant = {
        "definition_id": definition.pk,
        "context": {},
        "error": None,
        "decision": None,
        "outcome": None,
        "idempotency_key": None,
        "request_digest": "",
        "started_by": "",
        "language": "",
        "created_at": now,
        "updated_at": now,
        "revision": 1,
        "ended_at": None,
        "deadline_at": None,
        "awaiting_applicant_since": None,
        "parent_run_id": None,
        "root_id": None,
        "legal_hold": False,
        "purged_at": None,
        "purge_record": None,
    }

    def prep(name, value):
        return fields[name].get_db_prep_save(value, connection)

    fixed = {name: prep(name, value) for name, value in constant.items()}
    rows = []
    for i in range(count):
        running = bool(i % 3)
        values = {
            **fixed,
            "uuid": prep("uuid", uuid.uuid4()),
            "case_number": prep("case_number", f"BP-2026-{i:06d}"),
            "status": "running" if running else "completed",
            "current_step": "approve" if running else "",
            "payload": prep("payload", {"applicant": f"Person {i}"}),
        }
        rows.append([values[name] for name in fields])
    table = connection.ops.quote_name(WorkflowInstance._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(fields[name].column) for name in fields)
    marks = ", ".join(["%s"] * len(fields))
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)


class ScaleTests(TestCase):
    def test_the_instances_list_renders_in_a_fixed_number_of_queries_at_100000_rows(self):
        make_seed_services()
        definition = make_definition()
        insert_instances(definition, 100_000)
        assert WorkflowInstance.objects.count() == 100_000
        self.client.force_login(make_user("root", is_staff=True, is_superuser=True))
        for query in (
            "",
            "?status__exact=running&step=approve",
            f"?workflow=building-permit&version={definition.pk}",
            "?overdue=yes&escalated=now",
            "?q=person 99999",
            "?p=3",
        ):
            with CaptureQueriesContext(connection) as queries:
                response = self.client.get(f"{ADMIN}/workflowinstance/{query}")
            assert response.status_code == 200
            # session, user, the capped count, the page of rows, the definitions for the filters
            assert len(queries) == 5, [q["sql"] for q in queries]
            counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
            assert len(counts) == 1 and "LIMIT 10001" in counts[0], counts  # never counts them all
        assert (
            "More than 10000 workflow instances"
            in self.client.get(f"{ADMIN}/workflowinstance/").content.decode()
        )
        found = (
            self.client.get(f"{ADMIN}/workflowinstance/?q=person 99999").context["cl"].result_list
        )
        assert [row.payload["applicant"] for row in found] == ["Person 99999"]


class QueueFailuresTests(TestCase):
    def test_failed_tasks_older_than_30_days_are_deleted_from_the_admin(self):
        from django_q.models import Failure

        now = timezone.now()
        for days in (40, 1):
            moment = now - timedelta(days=days)
            Failure.objects.create(
                id=uuid.uuid4().hex,
                name=f"{days} days old",
                func="x.y",
                started=moment,
                stopped=moment,
                success=False,
            )
        self.client.force_login(make_user("root", is_staff=True, is_superuser=True))
        assert (
            "Delete failures older than 30 days"
            in self.client.get("/admin/django_q/failure/").content.decode()
        )
        response = self.client.post("/admin/django_q/failure/prune/")
        assert messages_of(response) == ["Deleted 1 failed tasks older than 30 days."]
        assert list(Failure.objects.values_list("name", flat=True)) == ["1 days old"]
        assert self.client.get("/admin/django_q/failure/prune/").status_code == 405


class SupervisorFlagAdminTests(TestCase):
    def test_the_instance_list_flags_and_filters_tasks_whose_ladder_ran_out(self):

        make_seed_services()
        instance = start(make_definition(), {"applicant": "Ada"})
        run_queued(instance)
        StepRun.objects.filter(instance=instance, state="waiting").update(
            escalation_level=2, escalation_exhausted=True
        )
        self.client.force_login(make_user("root", is_staff=True, is_superuser=True))
        page = self.client.get("/admin/workflows_app/workflowinstance/?escalated=supervisors")
        assert page.status_code == 200
        assert "ladder ran out, with the supervisors" in page.content.decode()
        assert instance.case_number in page.content.decode()
