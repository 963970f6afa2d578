"""Refusals and outcomes (CONTRACT R2 §1-§3): the seed refused at validation or by a reviewer,
an approval, the `outcome` and `reasons` in the API, the tracker's words and the emails."""

import re
from datetime import timedelta

from django.core import mail
from django.utils import timezone

from tests.factories import (
    SEED,
    make_definition,
    make_seed_services,
    make_service,
    make_token,
    make_user,
)
from tests.integration_helpers import StandInQueue
from tests.test_api import ApiCase
from workflows_app import runtime
from workflows_app.models import RunState, Status, StepRun

NO_ADDRESS = {"applicant": "Ada", "email": "ada@example.org"}
COMPLETE = {**NO_ADDRESS, "address": "1 Main St"}
MISSING_ADDRESS = "the address of the site is missing"


def status_url(instance) -> str:
    return f"/api/workflows/{instance.uuid}/status"


def complete_url(task) -> str:
    return f"/api/tasks/{task.pk}/complete"


class SeedCase(ApiCase):
    """The seed, verbatim, with validation as the built-in check (the demo service's words)."""

    def setUp(self):
        make_seed_services()
        make_service("validationSvc", callable="workflows_app.builtin.check_required_fields")
        self.definition = make_definition({**SEED, "public": True})
        self.token = make_token()
        self.queue = StandInQueue(self)

    def start(self, payload):
        instance = self.queue.start(self.definition, payload)
        self.queue.work()
        instance.refresh_from_db()
        return instance

    def task(self, instance) -> StepRun:
        return StepRun.objects.get(instance=instance, step_id="approve")

    def decide(self, instance, body):
        response = self.queue.committed(
            self.post, complete_url(self.task(instance)), body, token=self.token
        )
        self.queue.work()
        instance.refresh_from_db()
        return response

    def status(self, instance, *, anonymous: bool = False) -> dict:
        return self.get(status_url(instance), token=None if anonymous else self.token).json()

    def tracker(self, instance) -> str:
        return self.client.get(instance.tracker_url).content.decode()

    def emails_to_ada(self):
        return [m for m in mail.outbox if m.to == ["ada@example.org"]]


class RefusedAtValidationTests(SeedCase):
    def test_the_seed_payload_without_an_address_ends_rejected_with_its_reason(self):
        instance = self.start(NO_ADDRESS)
        document = self.status(instance)
        assert (document["status"], document["currentStep"]) == ("rejected", None)
        validate = document["history"][0]
        assert document["outcome"] == {
            "result": "rejected",
            "step": "validate",
            "reasons": [MISSING_ADDRESS],
            "time": validate["time"],
        }
        assert validate["reasons"] == [MISSING_ADDRESS]
        assert not StepRun.objects.filter(instance=instance, step_id="approve").exists()

    def test_anonymous_readers_see_the_outcome_and_the_refusals_reasons(self):
        instance = self.start(NO_ADDRESS)
        anonymous = self.status(instance, anonymous=True)
        assert anonymous["outcome"]["reasons"] == [MISSING_ADDRESS]
        assert anonymous["history"][0]["reasons"] == [MISSING_ADDRESS]

    def test_the_tracker_says_refused_with_the_reason_and_that_it_was_emailed(self):
        text = self.tracker(self.start(NO_ADDRESS))
        assert "Status: Refused" in text and "Complete" not in text
        badges = re.findall(r'class="badge badge--(\w+)">([^<]+)<', text)
        assert badges == [
            ("refused", "Refused"),
            ("upcoming", "Not reached"),
            ("upcoming", "Not reached"),
        ]
        assert f"<li>{MISSING_ADDRESS}</li>" in text.replace("&#x27;", "'")
        assert "We have also sent you this decision by email." in text

    def test_the_email_says_refused_with_the_reason(self):
        instance = self.start(NO_ADDRESS)
        [email] = self.emails_to_ada()
        assert email.subject == f"Your application {instance.case_number} has been refused"
        assert "has been refused." in email.body
        assert f"The reasons:\n- {MISSING_ADDRESS}\n" in email.body
        assert instance.tracker_url in email.body

    def test_without_an_email_address_nothing_is_sent_or_promised(self):
        instance = self.start({"applicant": "Ada"})
        assert self.emails_to_ada() == [] and mail.outbox == []
        assert "by email" not in self.tracker(instance)


class ReviewerDecisionTests(SeedCase):
    def test_a_refusal_without_a_reason_is_400_naming_the_field_and_changes_nothing(self):
        instance = self.start(COMPLETE)
        for body in ({"result": "rejected"}, {"result": "rejected", "reason": "  "}):
            response = self.decide(instance, body)
            assert response.status_code == 400
            assert response.json() == {
                "error": "invalid_request",
                "detail": "'reason': give a reason for the refusal: the applicant is told why "
                "it was refused",
                "field": "reason",
            }
        assert self.task(instance).state == RunState.WAITING
        assert instance.status == Status.RUNNING and instance.outcome is None

    def test_a_reason_or_note_over_2000_characters_is_400(self):
        instance = self.start(COMPLETE)
        for name in ("reason", "note"):
            body = {"result": "approved", name: "x" * 2001}
            response = self.decide(instance, body)
            assert response.status_code == 400 and response.json()["field"] == name
        assert self.task(instance).state == RunState.WAITING

    def test_a_refusal_ends_the_application_with_the_reviewers_reason(self):
        instance = self.start(COMPLETE)
        body = {"result": "rejected", "reason": "The extension is too tall.", "note": "Zq9"}
        assert self.decide(instance, body).status_code == 200
        document = self.status(instance)
        approve = document["history"][1]
        assert document["status"] == "rejected"
        assert document["outcome"] == {
            "result": "rejected",
            "step": "approve",
            "reasons": ["The extension is too tall."],
            "time": approve["time"],
        }
        assert (approve["reason"], approve["note"]) == ("The extension is too tall.", "Zq9")
        assert not StepRun.objects.filter(instance=instance, step_id="notify").exists()

    def test_the_note_never_reaches_the_applicant_or_anonymous_readers(self):
        instance = self.start(COMPLETE)
        self.decide(instance, {"result": "rejected", "reason": "Too tall.", "note": "Zq9note"})
        anonymous = self.status(instance, anonymous=True)
        assert anonymous["history"][1]["reason"] == "Too tall."
        assert "Zq9note" not in str(anonymous) and "note" not in anonymous["history"][1]
        text = self.tracker(instance)
        assert "Status: Refused" in text and "Too tall." in text and "Zq9note" not in text
        [email] = self.emails_to_ada()
        assert "- Too tall.\n" in email.body and "Zq9note" not in email.body

    def test_an_approval_without_a_reason_completes_with_approved_and_no_reasons(self):
        instance = self.start(COMPLETE)
        assert self.decide(instance, {"result": "approved"}).status_code == 200
        document = self.status(instance)
        assert document["status"] == "completed"
        assert document["outcome"] == {
            "result": "approved",
            "step": "approve",
            "reasons": [],
            "time": document["history"][1]["time"],
        }
        assert document["history"][2]["result"] == "sent"  # notify ran, after the decision
        text = self.tracker(instance)
        assert "Status: Approved" in text and "Your application has been approved." in text
        assert "We have also sent you this decision by email." in text
        badges = re.findall(r'class="badge badge--(\w+)">([^<]+)<', text)
        assert badges == [("done", "Done"), ("approved", "Approved"), ("done", "Done")]
        [email] = self.emails_to_ada()
        assert email.subject == f"Your application {instance.case_number} has been approved"
        assert "has been approved." in email.body and "comments" not in email.body

    def test_an_approval_with_a_reason_tells_the_applicant_the_reason(self):
        instance = self.start(COMPLETE)
        self.decide(instance, {"result": "approved", "reason": "Keep the hedge.", "note": "Zq"})
        assert instance.outcome["reasons"] == ["Keep the hedge."]
        [email] = self.emails_to_ada()
        assert "Our comments:\n- Keep the hedge.\n" in email.body and "Zq" not in email.body
        text = self.tracker(instance)
        assert "Comments from the office:" in text and "Keep the hedge." in text

    def test_the_outcome_is_null_while_the_application_runs(self):
        instance = self.start(COMPLETE)
        assert self.status(instance)["outcome"] is None
        assert self.status(instance, anonymous=True)["outcome"] is None


class OtherEndingsTests(SeedCase):
    def test_a_cancelled_application_has_a_cancelled_outcome_without_reasons(self):
        instance = self.start(COMPLETE)
        self.queue.committed(runtime.cancel_instance, instance_id=instance.pk, reason="Zq-staff")
        outcome = self.status(instance)["outcome"]
        assert (outcome["result"], outcome["step"], outcome["reasons"]) == (
            "cancelled",
            "approve",
            [],
        )

    def test_a_failed_application_has_a_failed_outcome_and_a_retry_clears_it(self):
        make_service("brokenSvc", callable="workflows_app.builtin.no_such_function")
        broken = make_definition({"id": "broken", "steps": [{"id": "one", "service": "brokenSvc"}]})
        instance = self.queue.start(broken, {})
        self.queue.settle(instance)
        instance.refresh_from_db()
        assert instance.status == Status.FAILED
        assert (instance.outcome["result"], instance.outcome["step"]) == ("failed", "one")
        runtime.retry_instance(instance_id=instance.pk)
        instance.refresh_from_db()
        assert instance.outcome is None and self.status(instance)["outcome"] is None

    def test_a_timeout_routed_to_reject_reads_lapsed(self):
        steps = [{**SEED["steps"][1], "onTimeout": "skip", "on": {"timeout": "reject"}}]
        lapsing = make_definition({"id": "lapsing", "public": True, "steps": steps})
        instance = self.queue.start(lapsing, COMPLETE)
        self.queue.tick(timezone.now() + timedelta(hours=49))
        instance.refresh_from_db()
        assert instance.status == Status.REJECTED
        assert instance.outcome["result"] == "timeout"
        text = self.tracker(instance)
        assert "Status: Lapsed" in text and "Refused" not in text

    def test_a_refusal_routed_by_on_goes_to_a_reviewer_who_sees_the_reasons(self):
        steps = [{**SEED["steps"][0], "on": {"rejected": "approve"}}, *SEED["steps"][1:]]
        definition = make_definition({"id": "second-look", "steps": steps})
        instance = self.queue.start(definition, NO_ADDRESS)
        self.queue.work()
        task = self.task(instance)
        assert task.state == RunState.WAITING
        self.client.force_login(make_user("rita", "plan-reviewers"))
        page = self.client.get(f"/tasks/{task.pk}/").content.decode()
        assert re.search(r"What the checks found", page)
        assert MISSING_ADDRESS in page.replace("&#x27;", "'")


class AdminOutcomeTests(SeedCase):
    def test_the_admins_instance_page_shows_the_outcome_the_reason_and_the_note(self):
        instance = self.start(COMPLETE)
        self.decide(instance, {"result": "rejected", "reason": "Too tall.", "note": "Zq-note"})
        admin = make_user("admin", is_staff=True, is_superuser=True)
        self.client.force_login(admin)
        url = f"/admin/workflows_app/workflowinstance/{instance.pk}/change/"
        page = self.client.get(url).content.decode()
        assert "Outcome (the decision that ended it)" in page
        assert "&quot;result&quot;: &quot;rejected&quot;" in page
        assert "reason: Too tall." in page and "note: Zq-note" in page
