"""Records: retention, purge_expired, legal hold, export_case (docs/records.md)."""

import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.test import SimpleTestCase, TestCase, override_settings
from django.utils import timezone

from tests.factories import committed, make_token, make_user, start
from tests.requests_to_applicant import PDF, PNG, pdf, request_workflow
from workflows_app import definitions, runtime
from workflows_app.definitions import InvalidDefinition, parse_retention
from workflows_app.models import (
    CaseDocument,
    Event,
    RunState,
    StepRun,
    Subscription,
    WebhookDelivery,
    WorkflowInstance,
)
from workflows_app.runtime import retention, schedules


def stored_files() -> list[Path]:
    root = Path(settings.STORAGES["documents"]["OPTIONS"]["location"])
    return [path for path in root.rglob("*") if path.is_file()]


class RetentionParsingTests(SimpleTestCase):
    def test_years_months_and_days_are_read_as_records_schedules_write_them(self):
        assert (parse_retention("P7Y").months, parse_retention("P7Y").days) == (84, 0)
        assert (parse_retention("90d").months, parse_retention("90d").days) == (0, 90)
        assert parse_retention("P1Y6M").months == 18
        assert parse_retention("7 years").months == 84

    def test_an_instance_that_ended_on_29_february_expires_on_28_february(self):
        ended = timezone.datetime(2024, 2, 29, 12, tzinfo=timezone.UTC)
        assert parse_retention("P1Y").expires(ended).date().isoformat() == "2025-02-28"

    def test_a_workflow_with_a_bad_retention_is_refused_naming_the_field(self):
        document = {"id": "w", "retention": "48 hours-ish", "steps": [{"id": "a", "service": "s"}]}
        with self.assertRaises(InvalidDefinition) as refused:
            definitions.parse_definition(document, source="w.json")
        assert "retention" in str(refused.exception)

    def test_zero_and_time_of_day_units_are_refused(self):
        for text in ("P0D", "48h", "PT5H", ""):
            with self.assertRaises(ValueError):
                parse_retention(text)


class RecordsCase(TestCase):
    """A decided building permit with two documents (a site plan and a photo), ended 100 days ago."""

    def setUp(self):
        self.definition = request_workflow(retention="90d")
        self.instance = self.decided_case()

    def decided_case(self, *, days_ago: int = 100, **payload) -> WorkflowInstance:
        instance = start(
            self.definition, {"applicant": "Ada", "email": "ada@example.org", **payload}
        )
        run = StepRun.objects.get(instance=instance, state=RunState.WAITING)
        committed(
            runtime.answer_request,
            run=run,
            data={"note": "The shed is new"},
            uploads={"sitePlan": pdf()},
            actor="applicant",
        )
        committed(
            runtime.add_document,
            instance=WorkflowInstance.objects.get(pk=instance.pk),
            upload=pdf("photo.png", PNG),
            step="",
            accept=["png"],
            uploaded_by="token:portal",
        )
        review = StepRun.objects.get(instance=instance, state=RunState.WAITING)
        reviewer = make_user(f"rita{instance.pk}", "plan-reviewers", is_staff=True)
        committed(
            runtime.decide_task,
            run_id=review.pk,
            user=reviewer,
            result="rejected",
            reason="The shed is too close to the street",
            note="Called the applicant on Monday",
        )
        instance.refresh_from_db()
        assert instance.status == "rejected"
        ended = timezone.now() - timedelta(days=days_ago)
        WorkflowInstance.objects.filter(pk=instance.pk).update(ended_at=ended)
        instance.refresh_from_db()
        return instance


class PurgeTests(RecordsCase):
    def test_purge_removes_payload_documents_and_free_text_and_keeps_the_statistics(self):
        runs_before = list(
            StepRun.objects.filter(instance=self.instance).values_list(
                "step_id", "state", "result", "completed_by", "created_at", "ended_at", "due_at"
            )
        )
        assert len(stored_files()) == 2
        report = committed(retention.purge_expired)
        assert (report.instances, report.documents) == (1, 2)
        assert report.document_bytes == len(PDF) + len(PNG)
        instance = WorkflowInstance.objects.get(pk=self.instance.pk)
        assert instance.payload == {} and instance.context == {}
        assert instance.outcome["result"] == "rejected" and instance.outcome["reasons"] == []
        assert "time" in instance.outcome and instance.outcome["step"] == "review"
        assert instance.purged_at is not None
        assert instance.purge_record["documents"] == 2
        assert instance.purge_record["payloadFields"] == ["applicant", "email"]
        assert (instance.case_number, instance.status, instance.ended_at) == (
            self.instance.case_number,
            "rejected",
            self.instance.ended_at,
        )
        assert CaseDocument.objects.filter(instance=instance).count() == 0
        assert stored_files() == []
        runs = StepRun.objects.filter(instance=instance)
        assert all((r.reason, r.note, r.output, r.error) == ("", "", None, "") for r in runs)
        kept = list(
            runs.values_list(
                "step_id", "state", "result", "completed_by", "created_at", "ended_at", "due_at"
            )
        )
        assert kept == runs_before
        details = json.dumps(list(Event.objects.filter(instance=instance).values("detail")))
        assert "site-plan.pdf" not in details and "photo.png" not in details
        assert "Ada" not in json.dumps(
            list(Event.objects.filter(instance=instance).values()), default=str
        )

    def test_a_purged_case_still_shows_its_steps_and_outcome_to_the_citizen_and_the_api(self):
        committed(retention.purge_expired)
        page = self.client.get(self.instance.tracker_url)
        assert page.status_code == 200
        assert "Upload the site plan" in page.content.decode()
        assert "too close to the street" not in page.content.decode()
        token = make_token()
        status = self.client.get(
            f"/api/workflows/{self.instance.uuid}/status",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert status.status_code == 200
        body = status.json()
        assert body["status"] == "rejected" and body["outcome"]["result"] == "rejected"
        assert body["outcome"]["reasons"] == [] and body["documents"] == []

    def test_a_poll_that_saw_the_case_before_the_purge_is_not_told_nothing_changed(self):
        token = make_token()
        path = f"/api/workflows/{self.instance.uuid}/status"
        auth = {"Authorization": f"Bearer {token}"}
        before = self.client.get(path, headers=auth)
        assert "too close to the street" in before.content.decode()
        tag = before["ETag"]
        assert self.client.get(path, headers={**auth, "If-None-Match": tag}).status_code == 304
        committed(retention.purge_expired)
        after = self.client.get(path, headers={**auth, "If-None-Match": tag})
        assert after.status_code == 200
        assert "too close to the street" not in after.content.decode()

    def test_status_webhook_messages_kept_in_the_outbox_lose_the_reasons_too(self):
        hook = Subscription.objects.create(name="portal", url="https://portal.example/hooks")
        body = {"status": "rejected", "outcome": self.instance.outcome, "caseNumber": "x"}
        assert "too close to the street" in json.dumps(body)
        WebhookDelivery.objects.create(
            subscription=hook,
            instance=self.instance,
            event_type="instance.updated",
            body=body,
            next_attempt_at=timezone.now(),
        )
        committed(retention.purge_expired)
        kept = WebhookDelivery.objects.get(instance=self.instance).body
        assert "too close to the street" not in json.dumps(kept)
        assert kept["outcome"]["result"] == "rejected" and kept["status"] == "rejected"

    def test_purge_is_idempotent(self):
        committed(retention.purge_expired)
        first = WorkflowInstance.objects.get(pk=self.instance.pk).purged_at
        again = committed(retention.purge_expired)
        assert again.instances == 0
        assert WorkflowInstance.objects.get(pk=self.instance.pk).purged_at == first

    def test_an_instance_within_its_retention_is_kept(self):
        recent = self.decided_case(days_ago=10)
        committed(retention.purge_expired)
        recent.refresh_from_db()
        assert recent.purged_at is None and recent.payload["applicant"] == "Ada"
        assert CaseDocument.objects.filter(instance=recent).count() == 2

    def test_a_running_instance_is_never_purged(self):
        running = start(self.definition, {"applicant": "Bo"})
        committed(retention.purge_expired)
        running.refresh_from_db()
        assert running.purged_at is None and running.payload == {"applicant": "Bo"}

    def test_a_legal_hold_stops_the_purge_until_it_is_lifted(self):
        retention.set_legal_hold(instance_ids=[self.instance.pk], held=True)
        report = committed(retention.purge_expired)
        assert (report.instances, report.held) == (0, 1)
        self.instance.refresh_from_db()
        assert self.instance.purged_at is None and self.instance.payload["applicant"] == "Ada"
        assert len(stored_files()) == 2
        retention.set_legal_hold(instance_ids=[self.instance.pk], held=False)
        assert committed(retention.purge_expired).instances == 1

    def test_a_dry_run_changes_nothing(self):
        out = io.StringIO()
        call_command("purge_expired", "--dry-run", stdout=out)
        assert f"would purge 1 instance(s) ({self.instance.case_number})" in out.getvalue()
        assert "Dry run: would purge 1 instance(s): 2 document(s)" in out.getvalue()
        self.instance.refresh_from_db()
        assert self.instance.purged_at is None and self.instance.payload["applicant"] == "Ada"
        assert len(stored_files()) == 2

    def test_the_command_purges_in_batches_and_says_what_it_did(self):
        second = self.decided_case()
        out = io.StringIO()
        with self.captureOnCommitCallbacks(execute=True):
            call_command("purge_expired", "--batch-size", "1", stdout=out)
        lines = out.getvalue().splitlines()
        assert lines[0].startswith(f"batch 1: purged 1 instance(s) ({self.instance.case_number})")
        assert lines[1].startswith(f"batch 2: purged 1 instance(s) ({second.case_number})")
        assert lines[-1] == (
            f"Purged 2 instance(s): 4 document(s) ({(len(PDF) + len(PNG)) * 2} bytes) deleted, "
            "free text of 4 event(s) removed; 0 on legal hold kept."
        )

    @override_settings(HMS_RETENTION="30d")
    def test_the_default_retention_applies_to_workflows_without_one(self):
        definition = request_workflow(id="no-retention")
        self.definition = definition
        old = self.decided_case(days_ago=40)
        committed(retention.purge_expired)
        old.refresh_from_db()
        assert old.purged_at is not None

    def test_without_retention_or_default_nothing_is_purged(self):
        self.definition = request_workflow(id="kept-for-ever")
        old = self.decided_case(days_ago=4000)
        committed(retention.purge_expired)
        old.refresh_from_db()
        assert old.purged_at is None

    def test_the_daily_schedule_is_registered(self):
        from django_q.models import Schedule

        schedules.ensure_schedules()
        row = Schedule.objects.get(name=schedules.PURGE)
        assert (row.func, row.schedule_type) == ("workflows_app.tasks.purge_expired", "D")
        assert Schedule.objects.filter(name=schedules.ROLLUPS).count() == 1


class ExportTests(RecordsCase):
    def export(self, case_number: str) -> tuple[zipfile.ZipFile, str]:
        target = Path(settings.STORAGES["documents"]["OPTIONS"]["location"]).parent / "out.zip"
        out = io.StringIO()
        call_command("export_case", case_number.lower(), "--output", str(target), stdout=out)
        assert out.getvalue().splitlines()[-1] == str(target)
        return zipfile.ZipFile(target), out.getvalue()

    def test_the_zip_holds_the_record_the_summary_and_the_documents(self):
        archive, _ = self.export(self.instance.case_number)
        documents = {d.name: d for d in CaseDocument.objects.filter(instance=self.instance)}
        plan, photo = documents["site-plan.pdf"], documents["photo.png"]
        assert sorted(archive.namelist()) == sorted(
            [
                "record.json",
                "summary.txt",
                f"documents/{plan.pk}-site-plan.pdf",
                f"documents/{photo.pk}-photo.png",
            ]
        )
        assert archive.read(f"documents/{plan.pk}-site-plan.pdf") == PDF
        assert archive.read(f"documents/{photo.pk}-photo.png") == PNG
        record = json.loads(archive.read("record.json"))
        assert record["caseNumber"] == self.instance.case_number
        assert record["workflow"]["id"] == "permit-with-plan" and record["workflow"]["version"] == 1
        assert record["payload"] == {"applicant": "Ada", "email": "ada@example.org"}
        assert record["status"] == "rejected" and record["purged"] is None
        assert [r["step"] for r in record["runs"]] == ["check", "upload-site-plan", "review"]
        assert [(h["step"], h["result"]) for h in record["history"]] == [
            ("check", "ok"),
            ("upload-site-plan", "submitted"),
            ("review", "rejected"),
        ]
        assert record["decisions"][0]["reason"] == "The shed is too close to the street"
        assert record["decisions"][0]["note"] == "Called the applicant on Monday"
        assert {"request_sent", "document_added"} <= {e["type"] for e in record["events"]}
        assert {d["name"]: d["size"] for d in record["documents"]} == {
            "site-plan.pdf": len(PDF),
            "photo.png": len(PNG),
        }
        summary = archive.read("summary.txt").decode()
        assert f"Case {self.instance.case_number}" in summary
        assert "reason: The shed is too close to the street" in summary

    def test_a_purged_case_exports_saying_what_was_removed(self):
        committed(retention.purge_expired)
        archive, printed = self.export(self.instance.case_number)
        assert archive.namelist() == ["record.json", "summary.txt"]
        record = json.loads(archive.read("record.json"))
        assert record["payload"] == {} and record["documents"] == []
        assert record["purged"]["removed"]["documents"] == 2
        assert record["purged"]["removed"]["payloadFields"] == ["applicant", "email"]
        summary = archive.read("summary.txt").decode()
        assert "PURGED on" in summary and "2 document(s)" in summary
        assert "was purged on" in printed

    def test_an_unknown_case_is_an_error(self):
        from django.core.management import CommandError

        with self.assertRaises(CommandError):
            call_command("export_case", "BP-2026-ZZZZZZ", stdout=io.StringIO())


class AdminRecordsTests(RecordsCase):
    def setUp(self):
        super().setUp()
        self.supervisor = make_user("sue", "Supervisors", is_staff=True)
        self.reviewer = make_user("rob", "plan-reviewers", is_staff=True)
        self.url = "/admin/workflows_app/workflowinstance/"

    def act(self, user, action):
        self.client.force_login(user)
        return self.client.post(
            self.url, {"action": action, "_selected_action": [self.instance.pk]}
        )

    def test_a_supervisor_places_and_lifts_a_legal_hold(self):
        self.act(self.supervisor, "place_legal_hold")
        self.instance.refresh_from_db()
        assert self.instance.legal_hold is True
        self.act(self.supervisor, "lift_legal_hold")
        self.instance.refresh_from_db()
        assert self.instance.legal_hold is False

    def test_staff_without_the_permission_cannot_place_a_hold(self):
        self.act(self.reviewer, "place_legal_hold")
        self.instance.refresh_from_db()
        assert self.instance.legal_hold is False

    def test_a_supervisor_downloads_the_case_zip(self):
        response = self.act(self.supervisor, "export_record")
        assert response["Content-Type"] == "application/zip"
        archive = zipfile.ZipFile(io.BytesIO(response.content))
        assert "record.json" in archive.namelist() and len(archive.namelist()) == 4

    def test_the_hold_shows_on_the_instance_page(self):
        self.client.force_login(self.supervisor)
        page = self.client.get(f"{self.url}{self.instance.pk}/change/")
        assert page.status_code == 200 and "Legal hold" in page.content.decode()
