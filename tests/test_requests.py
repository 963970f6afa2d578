"""Requests to the applicant: the step waits for them, the deadline pauses, the emailed link
opens the form on the tracker, the answer completes the step once, a lapse rejects."""

from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core import mail, signing
from django.test import TestCase, override_settings
from django.utils import timezone

from tests.factories import committed, make_user, start
from tests.requests_to_applicant import (
    PDF,
    emailed_link,
    enqueued_requests,
    pdf,
    request_workflow,
)
from workflows_app import runtime
from workflows_app.engine import InvalidAnswer, TransitionNotAllowed
from workflows_app.models import CaseDocument, Event, RunState, StepRun, WorkflowInstance


def stored_files() -> list[Path]:
    root = Path(settings.STORAGES["documents"]["OPTIONS"]["location"])
    return [path for path in root.rglob("*") if path.is_file()]


class RequestCase(TestCase):
    def setUp(self):
        self.definition = request_workflow()

    def waiting(self, **payload) -> tuple[WorkflowInstance, StepRun]:
        instance = start(
            self.definition, {"applicant": "Ada", "email": "ada@example.org", **payload}
        )
        instance.refresh_from_db()
        return instance, StepRun.objects.get(instance=instance, state=RunState.WAITING)

    def answer(self, run, **data):
        uploads = {"sitePlan": data.pop("upload")} if "upload" in data else {}
        return committed(
            runtime.answer_request, run=run, data=data, uploads=uploads, actor="applicant"
        )


class WaitingForTheApplicantTests(RequestCase):
    def test_the_request_waits_for_the_applicant_with_nobody_assigned(self):
        instance, run = self.waiting()
        assert (instance.current_step, run.step_id) == ("upload-site-plan", "upload-site-plan")
        assert run.assignee_group_id is None and run.assignee_user_id is None
        assert run.due_at is not None and run.wake_at == run.due_at

    def test_the_deadline_counts_from_the_start_and_pauses_while_waiting(self):
        instance, run = self.waiting()
        assert round((instance.deadline_at - instance.created_at) / timedelta(days=1)) == 30
        assert instance.awaiting_applicant_since == run.started_at

    def test_the_applicant_is_emailed_a_link_that_opens_the_form(self):
        with enqueued_requests() as enqueue:
            instance, run = self.waiting()
        assert ("workflows_app.tasks.send_request_email", str(run.pk)) in [
            call.args for call in enqueue.call_args_list
        ]
        link = emailed_link(run)
        assert mail.outbox[-1].to == ["ada@example.org"]
        assert "Upload the site plan" in mail.outbox[-1].body
        assert Event.objects.filter(run=run, type=Event.Type.REQUEST_SENT).count() == 1
        page = self.client.get(link)
        assert page.status_code == 200
        assert b'type="file"' in page.content and b"Site plan" in page.content

    def test_without_an_email_address_nothing_is_sent_and_the_tracker_says_how_to_answer(self):
        instance = start(self.definition, {"applicant": "Ada"})
        run = StepRun.objects.get(instance=instance, state=RunState.WAITING)
        event = Event.objects.get(run=run, type=Event.Type.REQUEST_SENT)
        assert event.detail == {"emailed": False}


class AnswerTests(RequestCase):
    def test_the_answer_completes_the_step_with_submitted_and_the_document_id(self):
        instance, run = self.waiting()
        instance = self.answer(run, upload=pdf(), note="  Corner plot ")
        run.refresh_from_db()
        document = CaseDocument.objects.get(instance=instance)
        assert (run.state, run.result, run.completed_by) == ("succeeded", "submitted", "applicant")
        assert instance.context["upload-site-plan"] == {
            "sitePlan": str(document.pk),
            "note": "Corner plot",
        }
        assert (document.name, document.content_type, document.size) == (
            "site-plan.pdf",
            "application/pdf",
            len(PDF),
        )
        assert document.open().read() == PDF
        assert instance.current_step == "review"

    def test_the_deadline_moves_later_by_the_time_waited(self):
        instance, run = self.waiting()
        three_days_ago = timezone.now() - timedelta(days=3)
        WorkflowInstance.objects.filter(pk=instance.pk).update(
            awaiting_applicant_since=three_days_ago
        )
        run.instance.awaiting_applicant_since = three_days_ago
        before = instance.deadline_at
        self.answer(run, upload=pdf())
        instance.refresh_from_db()
        assert instance.awaiting_applicant_since is None
        moved = instance.deadline_at - before
        assert timedelta(days=3) <= moved < timedelta(days=3, minutes=5)

    def test_a_second_answer_is_refused_and_leaves_nothing_behind(self):
        _, run = self.waiting()
        self.answer(run, upload=pdf())
        stale = StepRun.objects.select_related("instance").get(pk=run.pk)
        stale.state = RunState.WAITING  # as a second browser tab still saw it
        with self.assertRaises(TransitionNotAllowed):
            self.answer(stale, upload=pdf("again.pdf"))
        assert CaseDocument.objects.count() == 1 and len(stored_files()) == 1
        late = Event.objects.get(run=run, type=Event.Type.LATE_CALLBACK)
        assert (late.result, late.actor) == ("submitted", "applicant")

    def test_a_file_whose_content_is_not_an_accepted_type_is_refused_whatever_its_name(self):
        _, run = self.waiting()
        with self.assertRaises(InvalidAnswer) as refused:
            self.answer(run, upload=pdf("plan.pdf", b"MZ\x90\x00 a program, not a pdf"))
        assert refused.exception.problems == {
            "sitePlan": "the file is of type exe; send pdf, png or jpg"
        }
        with self.assertRaises(InvalidAnswer) as refused:
            self.answer(run, upload=pdf("plan.pdf", b"plain text, not a pdf"))
        assert refused.exception.problems == {
            "sitePlan": "the file is of a type we cannot accept; send pdf, png or jpg"
        }
        assert CaseDocument.objects.count() == 0 and stored_files() == []

    def test_a_file_over_the_fields_max_size_is_refused(self):
        _, run = self.waiting()
        with self.assertRaises(InvalidAnswer) as refused:
            self.answer(run, upload=pdf(content=PDF + b"0" * 1024 * 1024))
        assert refused.exception.problems["sitePlan"].startswith("the file is 1.0 MB; at most 1 MB")
        assert CaseDocument.objects.count() == 0 and stored_files() == []

    def test_every_wrong_field_is_named(self):
        _, run = self.waiting()
        with self.assertRaises(InvalidAnswer) as refused:
            self.answer(run, note=5, colour="red")
        assert refused.exception.problems == {
            "colour": "this request does not ask for 'colour'; it asks for sitePlan, note",
            "sitePlan": "this is required",
            "note": "must be text",
        }

    def test_staff_cannot_decide_a_request_in_the_inbox(self):
        _, run = self.waiting()
        reviewer = make_user("rita", "plan-reviewers", is_staff=True)
        with self.assertRaises(runtime.NotAllowed):
            runtime.decide_task(run_id=run.pk, user=reviewer, result="approved")


class LapseTests(RequestCase):
    def test_no_answer_in_time_with_reject_ends_the_application_rejected(self):
        instance, run = self.waiting()
        later = run.due_at + timedelta(seconds=1)
        assert committed(runtime.process_due, now=later) == 1
        instance.refresh_from_db()
        run.refresh_from_db()
        assert (instance.status, instance.awaiting_applicant_since) == ("rejected", None)
        assert (run.state, run.result) == ("skipped", "timeout")
        assert run.output == {
            "reasons": ["We did not receive an answer to “Upload the site plan” in time."]
        }
        reasons = ["We did not receive an answer to “Upload the site plan” in time."]
        assert instance.outcome | {"time": None} == {
            "result": "timeout",
            "step": "upload-site-plan",
            "reasons": reasons,
            "time": None,
        }
        text = self.client.get(instance.tracker_url).content.decode()
        assert "Status: Lapsed" in text and reasons[0] in text

    def test_retry_renews_the_deadline_and_emails_a_new_link(self):
        document = {**self.definition.source}
        document["steps"] = [dict(step) for step in document["steps"]]
        document["steps"][1]["onTimeout"] = "retry"
        self.definition = request_workflow(steps=document["steps"])
        instance, run = self.waiting()
        later = run.due_at + timedelta(seconds=1)
        with enqueued_requests() as enqueue:
            committed(runtime.process_due, now=later)
        run.refresh_from_db()
        assert run.state == RunState.WAITING and run.due_at == later + timedelta(days=14)
        assert ("workflows_app.tasks.send_request_email", str(run.pk)) in [
            call.args for call in enqueue.call_args_list
        ]
        assert Event.objects.filter(run=run, type=Event.Type.REMINDED).count() == 1

    def test_cancelling_while_waiting_stops_the_pause(self):
        instance, _ = self.waiting()
        runtime.cancel_instance(instance_id=instance.pk, reason="duplicate")
        instance.refresh_from_db()
        assert instance.status == "cancelled" and instance.awaiting_applicant_since is None


class TrackerRequestTests(RequestCase):
    def test_the_tracker_says_we_need_something_and_the_deadline_is_paused(self):
        instance, _ = self.waiting()
        page = self.client.get(instance.tracker_url).content.decode()
        assert "We need something from you" in page and "Upload the site plan" in page
        assert "We aim to decide by" in page and "Paused while we wait for you" in page
        assert "Waiting for your answer" in page
        assert 'type="file"' not in page  # the form opens only from the emailed link

    def test_the_form_keeps_what_was_typed_and_puts_the_error_on_the_field(self):
        _, run = self.waiting()
        link = emailed_link(run)
        response = self.client.post(link, {"note": "Corner plot"})
        page = response.content.decode()
        assert response.status_code == 400
        assert "There is a problem" in page and 'href="#id_sitePlan"' in page
        assert 'aria-invalid="true"' in page and "Corner plot</textarea>" in page
        run.refresh_from_db()
        assert run.state == RunState.WAITING

    def test_answering_through_the_link_goes_on_and_shows_the_documents_sent(self):
        instance, run = self.waiting()
        link = emailed_link(run)
        response = self.client.post(link, {"sitePlan": pdf(), "note": ""})
        assert response.status_code == 302 and response["Location"] == link
        page = self.client.get(link).content.decode()
        assert "Thank you: we have your answer" in page and "site-plan.pdf" in page
        document = CaseDocument.objects.get(instance=instance)
        download = self.client.get(f"{link}documents/{document.pk}")
        assert download.status_code == 200 and b"".join(download.streaming_content) == PDF
        assert download["Content-Disposition"].startswith("attachment")
        tracker = self.client.get(instance.tracker_url).content.decode()
        assert "Paused while we wait for you" not in tracker and "We aim to decide by" in tracker

    def test_a_second_answer_through_the_link_is_refused_with_a_clear_message(self):
        _, run = self.waiting()
        link = emailed_link(run)
        self.client.post(link, {"sitePlan": pdf()})
        again = self.client.post(link, {"sitePlan": pdf("again.pdf")})
        assert again.status_code == 409
        assert "already been answered; nothing was changed" in again.content.decode()
        assert CaseDocument.objects.count() == 1

    def test_a_tampered_link_or_one_for_another_application_is_not_found(self):
        instance, run = self.waiting()
        other, _ = self.waiting()
        link = emailed_link(run)
        assert self.client.get(link[:-3] + "xx/").status_code == 404
        assert self.client.get(link.replace(str(instance.uuid), str(other.uuid))).status_code == 404

    @override_settings(HMS_RESPOND_LINK_SECONDS=-1)
    def test_an_expired_link_offers_a_new_one(self):
        _, run = self.waiting()
        response = self.client.get(emailed_link(run))
        assert response.status_code == 410
        assert "This link has expired" in response.content.decode()
        assert "Email me a new link" in response.content.decode()

    def test_a_new_link_is_emailed_to_the_applicant_a_few_times_an_hour(self):
        instance, run = self.waiting()
        url = f"{instance.tracker_url}new-link"
        with enqueued_requests() as enqueue:
            outcomes = [self.client.post(url)["Location"] for _ in range(4)]
        assert outcomes == [
            f"{instance.tracker_url}?link={o}#request" for o in ["sent"] * 3 + ["later"]
        ]
        emails = [c for c in enqueue.call_args_list if c.args[0].endswith("send_request_email")]
        assert len(emails) == 3
        page = self.client.get(outcomes[0]).content.decode()
        assert "We have emailed you a new link." in page

    def test_a_link_sent_in_the_email_is_signed_with_the_site_key(self):
        _, run = self.waiting()
        token = emailed_link(run).rstrip("/").rsplit("/", 1)[1]
        assert signing.loads(token, salt="hms.respond") == str(run.pk)

    def test_an_upload_over_the_site_limit_is_refused_before_it_is_read(self):
        _, run = self.waiting()
        link = emailed_link(run)
        with override_settings(HMS_MAX_UPLOAD="1KB"):
            response = self.client.post(link, {"sitePlan": pdf(content=PDF + b"0" * 200_000)})
        assert response.status_code == 413
        assert CaseDocument.objects.count() == 0 and stored_files() == []


class StaffDocumentTests(RequestCase):
    def test_staff_who_may_see_the_task_see_and_download_the_documents(self):
        instance, run = self.waiting()
        self.answer(run, upload=pdf())
        task = StepRun.objects.get(instance=instance, step_id="review")
        document = CaseDocument.objects.get(instance=instance)
        self.client.force_login(make_user("rita", "plan-reviewers"))
        page = self.client.get(f"/tasks/{task.pk}/").content.decode()
        assert "site-plan.pdf" in page
        download = self.client.get(f"/tasks/{task.pk}/documents/{document.pk}")
        assert download.status_code == 200 and b"".join(download.streaming_content) == PDF

    def test_staff_outside_the_group_cannot_download_them(self):
        instance, run = self.waiting()
        self.answer(run, upload=pdf())
        task = StepRun.objects.get(instance=instance, step_id="review")
        document = CaseDocument.objects.get(instance=instance)
        self.client.force_login(make_user("otto", "other-group"))
        assert self.client.get(f"/tasks/{task.pk}/documents/{document.pk}").status_code == 403
        self.client.logout()
        response = self.client.get(f"/tasks/{task.pk}/documents/{document.pk}")
        assert response.status_code == 302  # to the sign-in page
