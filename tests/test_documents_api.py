"""Documents and requests to the applicant through the API (CONTRACT §3, docs/api.md)."""

from datetime import timedelta
from pathlib import Path
from unittest.mock import patch

from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from tests.factories import make_token, start
from tests.requests_to_applicant import PDF, PNG, pdf, request_workflow
from tests.test_api import ApiCase, complete_url, status_url
from workflows_app.models import CaseDocument, RunState, StepRun
from workflows_app.web import rendered


def documents_url(instance) -> str:
    return f"/api/workflows/{instance.uuid}/documents"


def stored_files() -> list[Path]:
    root = Path(settings.STORAGES["documents"]["OPTIONS"]["location"])
    return [path for path in root.rglob("*") if path.is_file()]


class DocumentApiCase(ApiCase):
    def setUp(self):
        self.definition = request_workflow(public=True)
        self.instance = start(self.definition, {"applicant": "Ada"})
        self.run = StepRun.objects.get(instance=self.instance, state=RunState.WAITING)
        self.token = make_token()

    def upload(self, file=None, *, token=None, step="upload-site-plan", instance=None, **extra):
        data = {"file": file or pdf()}
        if step:
            data["step"] = step
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.client.post(
            documents_url(instance or self.instance), data, headers=headers, **extra
        )
        self.check_documented("POST", documents_url(instance or self.instance), response)
        return response


class UploadTests(DocumentApiCase):
    def test_an_upload_answers_201_with_the_document(self):
        response = self.upload(token=self.token)
        document = CaseDocument.objects.get()
        assert response.status_code == 201
        assert response.json() == {
            "documentId": str(document.pk),
            "name": "site-plan.pdf",
            "size": len(PDF),
            "contentType": "application/pdf",
            "step": "upload-site-plan",
            "time": document.created_at.isoformat(),
        }
        assert document.uploaded_by == "token:portal" and len(stored_files()) == 1

    def test_the_type_is_judged_by_the_content_not_the_name(self):
        response = self.upload(pdf("plan.png"), token=self.token)
        assert response.json()["contentType"] == "application/pdf"
        refused = self.upload(pdf("plan.pdf", b"just some text"), token=self.token)
        assert refused.status_code == 415
        assert refused.json() == {
            "error": "unsupported_media_type",
            "detail": "the file is of a type we cannot accept; send pdf, png or jpg",
        }
        assert CaseDocument.objects.count() == 1 and len(stored_files()) == 1

    def test_a_database_failure_after_the_file_is_written_leaves_no_file_and_no_row(self):
        from django.db import DatabaseError

        broken = patch(
            "workflows_app.runtime.documents.add_event", side_effect=DatabaseError("disk full")
        )
        with broken, self.assertLogs("workflows_app.web.api", "ERROR"):
            response = self.upload(token=self.token)
        assert response.json()["error"] == "server_error"  # logged, and said so in JSON
        assert CaseDocument.objects.count() == 0 and stored_files() == []

    @override_settings(HMS_MAX_UPLOAD="2KB")
    def test_a_file_over_hms_max_upload_is_413_and_leaves_nothing(self):
        response = self.upload(pdf(content=PDF + b"0" * 4096), token=self.token)
        assert response.status_code == 413
        assert response.json() == {
            "error": "body_too_large",
            "detail": "the file is 4.0 KB; at most 2 KB is allowed",
        }
        too_big = self.upload(pdf(content=PDF + b"0" * 100_000), token=self.token)
        assert too_big.status_code == 413
        assert too_big.json()["detail"] == "the file is larger than 2 KB, the largest we accept"
        assert CaseDocument.objects.count() == 0 and stored_files() == []

    def test_files_between_1_mib_and_hms_max_upload_are_read_here(self):
        response = self.upload(pdf(content=PDF + b"0" * 2 * 1024 * 1024), token=self.token, step="")
        assert response.status_code == 201 and response.json()["size"] > 2 * 1024 * 1024

    def test_a_body_that_is_not_multipart_is_415_and_a_missing_file_400(self):
        headers = {"Authorization": f"Bearer {self.token}"}
        json_body = self.client.post(
            documents_url(self.instance),
            {"file": "x"},
            content_type="application/json",
            headers=headers,
        )
        assert json_body.status_code == 415
        no_file = self.client.post(documents_url(self.instance), {"step": ""}, headers=headers)
        assert (no_file.status_code, no_file.json()["detail"]) == (
            400,
            "'file' is required (a multipart file field)",
        )

    def test_an_unknown_step_is_400(self):
        response = self.upload(token=self.token, step="nope")
        assert response.status_code == 400
        assert response.json()["detail"] == "'step' names no step of this workflow: 'nope'"

    def test_anonymous_callers_and_other_tokens_may_not_upload(self):
        assert self.upload().status_code == 401  # even on a public workflow
        other = make_token("other", workflows=["address-change"])
        assert self.upload(token=other).status_code == 403
        readers = make_token("readers", scopes=["start", "tasks"])
        response = self.upload(token=readers)
        assert response.status_code == 403
        assert response.json()["detail"] == (
            "this token may not answer requests to the applicant or send documents for "
            "'permit-with-plan'"
        )
        assert CaseDocument.objects.count() == 0 and stored_files() == []

    def test_an_ended_application_takes_no_more_documents(self):
        from workflows_app import runtime

        runtime.cancel_instance(instance_id=self.instance.pk, reason="test")
        response = self.upload(token=self.token)
        assert response.status_code == 409 and stored_files() == []


class DownloadTests(DocumentApiCase):
    def setUp(self):
        super().setUp()
        self.document_id = self.upload(token=self.token).json()["documentId"]

    def test_a_token_that_may_read_the_instance_downloads_the_file(self):
        reader = make_token("reader", scopes=["start"], workflows=["permit-with-plan"])
        response = self.client.get(
            f"/api/documents/{self.document_id}", headers={"Authorization": f"Bearer {reader}"}
        )
        assert response.status_code == 200
        assert b"".join(response.streaming_content) == PDF
        assert response["Content-Type"] == "application/pdf"
        assert response["Content-Disposition"] == 'attachment; filename="site-plan.pdf"'
        assert response["Cache-Control"] == "private, no-store"

    def test_anonymous_readers_and_other_tokens_are_refused(self):
        path = f"/api/documents/{self.document_id}"
        assert self.get(path).status_code == 401  # even on a public workflow
        other = make_token("other", workflows=["address-change"])
        assert self.get(path, token=other).status_code == 403
        callbacks = make_token("callbacks", scopes=["tasks"])
        assert self.get(path, token=callbacks).status_code == 403

    def test_an_unknown_or_malformed_id_is_404(self):
        assert self.get("/api/documents/not-a-uuid", token=self.token).status_code == 404
        unknown = "/api/documents/00000000-0000-0000-0000-000000000000"
        assert self.get(unknown, token=self.token).status_code == 404

    def test_status_reads_documents_for_tokens_only_in_one_query(self):
        self.get(status_url(self.instance))  # warm the per-process caches
        rendered.clear()  # count revisions this process has not rendered yet
        with self.assertNumQueries(3):  # the revision, the instance with its runs, its events
            self.get(status_url(self.instance))
        with self.assertNumQueries(4):  # + the documents (the token comes with the revision)
            self.get(status_url(self.instance), token=self.token)

    def test_documents_are_listed_in_status_for_tokens_only(self):
        listed = self.get(status_url(self.instance), token=self.token).json()["documents"]
        assert [d["documentId"] for d in listed] == [self.document_id]
        anonymous = self.get(status_url(self.instance)).json()
        assert "documents" not in anonymous


class AnswerThroughTheApiTests(DocumentApiCase):
    def answer(self, data, *, token=None, result="submitted"):
        body = {"result": result, "data": data}
        return self.post(complete_url(self.run), body, token=token or self.token)

    def test_a_portal_answers_the_request_with_document_ids_then_409(self):
        document_id = self.upload(token=self.token).json()["documentId"]
        response = self.answer({"sitePlan": document_id, "note": "Corner plot"})
        assert response.status_code == 200
        body = response.json()
        assert body["currentStep"] == "review"
        assert body["history"][-1]["result"] == "submitted"
        self.instance.refresh_from_db()
        assert self.instance.context["upload-site-plan"] == {
            "sitePlan": document_id,
            "note": "Corner plot",
        }
        again = self.answer({"sitePlan": document_id})
        assert again.status_code == 409
        assert again.json()["error"] == "conflict"

    def test_while_the_deadline_runs_each_read_counts_its_seconds_afresh(self):
        document_id = self.upload(token=self.token).json()["documentId"]
        self.answer({"sitePlan": document_id})  # the deadline runs again
        url = status_url(self.instance)
        first = self.get(url, token=self.token).json()["deadline"]["remainingSeconds"]
        later = timezone.now() + timedelta(seconds=10)
        with patch("workflows_app.web.serializers.timezone.now", return_value=later):
            again = self.get(url, token=self.token).json()["deadline"]["remainingSeconds"]
        assert first - again >= 9  # not the document kept from the first read

    def test_the_status_shows_the_deadline_paused_then_running(self):
        deadline = self.get(status_url(self.instance), token=self.token).json()["deadline"]
        assert deadline["paused"] is True and deadline["remainingSeconds"] > 29 * 86400
        document_id = self.upload(token=self.token).json()["documentId"]
        after = self.answer({"sitePlan": document_id}).json()["deadline"]
        assert after["paused"] is False

    def test_a_wrong_answer_is_422_naming_each_field(self):
        png = self.upload(pdf("plan.png", PNG), token=self.token).json()["documentId"]
        response = self.answer({"sitePlan": "00000000-0000-0000-0000-000000000000", "x": 1})
        assert response.status_code == 422
        assert response.json()["problems"] == [
            {
                "field": "x",
                "message": "this request does not ask for 'x'; it asks for sitePlan, note",
            },
            {
                "field": "sitePlan",
                "message": "must be the documentId of a document uploaded for this application",
            },
        ]
        assert self.answer({"sitePlan": png}).status_code == 200  # png is accepted by default

    def test_a_document_of_another_application_cannot_be_named(self):
        other = start(self.definition, {"applicant": "Bo"})
        foreign = self.upload(token=self.token, instance=other).json()["documentId"]
        response = self.answer({"sitePlan": foreign})
        assert response.status_code == 422

    def test_only_result_submitted_answers_a_request(self):
        response = self.answer({}, result="approved")
        assert response.status_code == 422
        assert response.json()["problems"] == [
            {
                "field": "result",
                "message": "a request to the applicant is answered with result 'submitted', "
                "not 'approved'",
            }
        ]

    def test_tokens_without_the_respond_scope_cannot_answer(self):
        callbacks = make_token("callbacks", scopes=["tasks"])
        assert self.answer({}, token=callbacks).status_code == 403
        anonymous = self.post(complete_url(self.run), {"result": "submitted"})
        assert anonymous.status_code == 401
        self.run.refresh_from_db()
        assert self.run.state == RunState.WAITING
