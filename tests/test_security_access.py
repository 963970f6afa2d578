"""Security findings of issue 13 (part 3) about who may do what: sign-in lockout keys,
reassigning closed tasks, token scopes, separation of duties, what anonymous readers see,
/healthz and the board, signed callbacks bound to their task (docs/security.md, R2)."""

import base64
import io
import json
import uuid

from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.management import call_command
from django.test import TestCase, override_settings
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from tests.factories import (
    committed,
    make_seed_services,
    make_service,
    make_token,
    make_user,
    simple_workflow,
    start,
)
from workflows_app import runtime
from workflows_app.engine import TransitionNotAllowed
from workflows_app.models import ApiToken, Event, RunState, Status, StepRun
from workflows_app.queries import stats
from workflows_app.runtime.dispatch import Outcome
from workflows_app.web.serializers import GENERIC_ERROR

LOCMEM = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "test-security-access",
    }
}


@override_settings(CACHES=LOCMEM, HMS_LOGIN_CACHE="default", HMS_LOGIN_MAX_ATTEMPTS=5)
class SignInLockoutKeyTests(TestCase):
    """Finding 1: the lockout and the failures it counts use one normalised username."""

    def setUp(self):
        cache.clear()
        make_user("supervisor", "Supervisors", is_staff=True)

    def sign_in(self, username: str, password: str, path: str):
        return self.client.post(path, {"username": username, "password": password})

    def test_a_full_width_username_is_locked_out_with_its_plain_form_on_both_sign_in_pages(self):
        for path in ("/accounts/login/", "/admin/login/"):
            cache.clear()
            for _ in range(5):
                assert self.sign_in("supervisor", "wrong", path).status_code == 200
            full_width = self.sign_in("ｓｕｐｅｒｖｉｓｏｒ", "pw", path)
            assert full_width.status_code == 429, path
            assert "_auth_user_id" not in self.client.session


class ClosedTaskReassignTests(TestCase):
    """Finding 3: reassigning a task that is not open is a conflict, and changes nothing."""

    def setUp(self):
        make_seed_services()
        self.definition = simple_workflow(
            "permit",
            [{"id": "approve", "service": "approvalSvc"}, {"id": "after", "service": "okSvc"}],
        )
        self.instance = start(self.definition)
        self.task = StepRun.objects.get(instance=self.instance, step_id="approve")
        self.supervisor = make_user("sam", "Supervisors", is_staff=True)
        Group.objects.get_or_create(name="backup-reviewers")
        make_user("rita", "plan-reviewers")
        committed(runtime.complete_task, run_id=self.task.pk, result="approved", actor="user:rita")
        self.instance.refresh_from_db()
        assert self.instance.status == Status.COMPLETED

    def test_a_supervisor_reassigning_a_completed_task_from_the_inbox_gets_409(self):
        self.client.force_login(self.supervisor)
        data = {"to": "group:backup-reviewers", "reason": "holiday"}
        response = self.client.post(f"/tasks/{self.task.pk}/reassign", data)
        assert response.status_code == 409
        assert "not open" in response.text
        self.task.refresh_from_db()
        assert (self.task.state, self.task.result) == (RunState.SUCCEEDED, "approved")
        assert not Event.objects.filter(run=self.task, type=Event.Type.REASSIGNED).exists()
        assert self.task.completed_by == "user:rita"

    def test_the_runtime_refuses_it_too(self):
        with self.assertRaisesMessage(TransitionNotAllowed, "not open"):
            runtime.reassign_task(
                run_id=self.task.pk, to="group:backup-reviewers", reason="x", actor=self.supervisor
            )


class SeparationOfDutiesSpellingTests(TestCase):
    """Finding 8: the applicant named with spaces, capitals or full-width letters is still
    the applicant."""

    def setUp(self):
        make_seed_services()
        self.definition = simple_workflow("permit", [{"id": "approve", "service": "approvalSvc"}])
        self.reviewer = make_user("reviewer", "plan-reviewers")

    def test_the_applicant_may_not_decide_however_the_payload_spells_their_username(self):
        for spelling in (" reviewer", "Reviewer", "REVIEWER ", "ｒｅｖｉｅｗｅｒ"):
            instance = start(self.definition, {"applicantUsername": spelling})
            task = StepRun.objects.get(instance=instance)
            with self.assertRaisesMessage(runtime.NotAllowed, "separation of duties"):
                runtime.decide_task(run_id=task.pk, user=self.reviewer, result="approved")
            task.refresh_from_db()
            assert task.state == RunState.WAITING, spelling


class AnonymousErrorDetailTests(TestCase):
    """Finding 10: anonymous readers of a failed public instance get a generic error detail."""

    REPLY = "Traceback at http://10.1.2.3:8080/internal/validate: db password=hunter2"

    def setUp(self):
        make_service("leakySvc", "http", url="http://10.1.2.3:8080/internal/validate")
        definition = simple_workflow(
            "public-fail", [{"id": "check", "service": "leakySvc"}], public=True
        )
        self.instance = start(definition)
        run = StepRun.objects.get(instance=self.instance)
        claimed = runtime.claim_run(run_id=run.pk, attempts=0)
        outcome = Outcome("fail", error=f"service 'leakySvc' answered 400: {self.REPLY}")
        committed(runtime.record_outcome, claimed=claimed, outcome=outcome)
        self.url = f"/api/workflows/{self.instance.uuid}/status"

    def test_anonymous_readers_get_a_generic_detail_and_tokens_the_full_one(self):
        anonymous = self.client.get(self.url)
        assert anonymous.status_code == 200
        body = anonymous.json()
        assert body["status"] == "failed"
        assert body["error"] == {"step": "check", "detail": GENERIC_ERROR}
        assert "10.1.2.3" not in anonymous.text and "hunter2" not in anonymous.text
        token = make_token("staff-portal", scopes=["start"])
        full = self.client.get(self.url, headers={"Authorization": f"Bearer {token}"}).json()
        assert self.REPLY in full["error"]["detail"]


class HealthDetailTests(TestCase):
    """Finding 16: /healthz tells monitors (a metrics token, an allowed address) its
    checks; anyone else gets only ok or failing."""

    OUTSIDE = "203.0.113.5"

    def test_an_outsider_gets_only_the_status_without_vendor_or_queue_depth(self):
        response = self.client.get("/healthz", REMOTE_ADDR=self.OUTSIDE)
        assert response.status_code in (200, 503)
        assert set(response.json()) == {"status"}
        assert response.json()["status"] in ("ok", "unhealthy")
        assert "vendor" not in response.text and "queued" not in response.text

    def test_a_metrics_token_or_an_allowed_address_gets_every_check(self):
        token = make_token("prometheus", scopes=["metrics"])
        with_token = self.client.get(
            "/healthz", REMOTE_ADDR=self.OUTSIDE, headers={"Authorization": f"Bearer {token}"}
        )
        assert "vendor" in with_token.json()["checks"]["database"]
        with override_settings(HMS_METRICS_ALLOW=[self.OUTSIDE]):
            allowed = self.client.get("/healthz", REMOTE_ADDR=self.OUTSIDE)
        assert "queued" in allowed.json()["checks"]["broker"]

    def test_a_token_without_the_metrics_scope_sees_only_the_status(self):
        token = make_token("portal", scopes=["start"])
        response = self.client.get(
            "/healthz", REMOTE_ADDR=self.OUTSIDE, headers={"Authorization": f"Bearer {token}"}
        )
        assert set(response.json()) == {"status"}


class PublicBoardTests(TestCase):
    """Finding 16: the public board lists public workflows only."""

    def test_a_workflow_that_is_not_public_is_not_on_the_board(self):
        stats.clear()
        make_seed_services()
        internal = simple_workflow(
            "staff-expenses", [{"id": "approve", "service": "approvalSvc"}], name="Staff expenses"
        )
        public = simple_workflow(
            "dog-licence", [{"id": "approve", "service": "approvalSvc"}], public=True
        )
        start(internal)
        start(public)
        text = self.client.get("/board/").content.decode()
        assert "Dog licence" in text
        assert "Staff expenses" not in text and "staff-expenses" not in text


class SignedCallbackBindingTests(TestCase):
    """Finding 17: a signed callback names its task in the signed body; a signature made for
    one task does not complete another waiting task of the same service."""

    KEY = base64.b64encode(b"the binding test's service secret").decode()

    def setUp(self):
        make_service("asyncSvc", "http", url="http://127.0.0.1:9/", secret="whsec_" + self.KEY)
        definition = simple_workflow("async", [{"id": "check", "service": "asyncSvc"}])
        self.first, self.second = (self.waiting_run(definition) for _ in range(2))

    def waiting_run(self, definition) -> StepRun:
        run = StepRun.objects.get(instance=start(definition))
        claimed = runtime.claim_run(run_id=run.pk, attempts=0)
        runtime.record_outcome(claimed=claimed, outcome=Outcome("accepted"))
        return run

    def post_signed(self, url_task: StepRun, body: dict):
        raw, msg_id, now = json.dumps(body), f"msg_{uuid.uuid4().hex}", timezone.now()
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook("whsec_" + self.KEY).sign(msg_id, now, raw),
        }
        return self.client.post(
            f"/api/tasks/{url_task.pk}/complete",
            raw,
            content_type="application/json",
            headers=headers,
        )

    def test_a_callback_signed_for_one_task_is_refused_on_another_with_401(self):
        made_for_first = {"taskId": str(self.first.pk), "result": "ok"}
        response = self.post_signed(self.second, made_for_first)
        assert response.status_code == 401
        assert response.json()["error"] == "bad_signature"
        assert str(self.first.pk) in response.json()["detail"]
        self.second.refresh_from_db()
        assert self.second.state == RunState.WAITING

    def test_a_signed_callback_that_names_no_task_is_refused(self):
        response = self.post_signed(self.first, {"result": "ok"})
        assert response.status_code == 401
        assert "taskId" in response.json()["detail"]

    def test_a_signed_callback_naming_its_own_task_completes_it(self):
        response = self.post_signed(self.first, {"taskId": str(self.first.pk), "result": "ok"})
        assert response.status_code == 200
        self.first.refresh_from_db()
        assert (self.first.state, self.first.result) == (RunState.SUCCEEDED, "ok")


class TaskDecisionScopeTests(TestCase):
    """Finding 7: `tasks` covers automated steps' callbacks; deciding a human task needs
    `decide` (a full token keeps it); a token acting for a person gets that person's checks."""

    def setUp(self):
        make_seed_services()
        self.definition = simple_workflow("permit", [{"id": "approve", "service": "approvalSvc"}])
        self.instance = start(self.definition, {"applicantUsername": "alice"})
        self.task = StepRun.objects.get(instance=self.instance)
        self.rita = make_user("rita", "plan-reviewers")

    def decide(self, token: str, result: str = "approved"):
        return self.client.post(
            f"/api/tasks/{self.task.pk}/complete",
            json.dumps({"result": result}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )

    def assert_still_waiting(self):
        self.task.refresh_from_db()
        assert self.task.state == RunState.WAITING

    def test_a_tasks_token_may_not_decide_a_human_task(self):
        response = self.decide(make_token("svc", scopes=["tasks"]))
        assert response.status_code == 403
        assert "decide" in response.json()["detail"]
        self.assert_still_waiting()

    def test_a_decide_token_decides_with_the_steps_outcomes_only(self):
        token = make_token("back-office", scopes=["decide"])
        refused = self.decide(token, "bribed")
        assert refused.status_code == 403
        assert "not an outcome of this step" in refused.json()["detail"]
        self.assert_still_waiting()
        assert self.decide(token).status_code == 200
        self.task.refresh_from_db()
        assert (self.task.result, self.task.completed_by) == ("approved", "token:back-office")

    def test_a_full_token_still_decides_as_the_contract_shows(self):
        assert self.decide(make_token("portal")).status_code == 200

    def test_a_token_acting_for_a_person_gets_that_persons_checks(self):
        otto, alice = make_user("otto"), make_user("alice", "plan-reviewers")
        for person, why in ((otto, "assigned to someone else"), (alice, "separation of duties")):
            token = make_token(f"for-{person.username}", scopes=["decide"], acting_for=person)
            response = self.decide(token)
            assert response.status_code == 403, person
            assert why in response.json()["detail"]
            self.assert_still_waiting()
        token = make_token("for-rita", scopes=["decide"], acting_for=self.rita)
        assert self.decide(token, "bribed").status_code == 403
        assert self.decide(token).status_code == 200
        self.task.refresh_from_db()
        assert self.task.completed_by == "user:rita"

    def test_a_decide_token_may_not_answer_an_automated_steps_callback(self):
        make_service("asyncSvc", "http")
        run = StepRun.objects.get(
            instance=start(simple_workflow("async", [{"id": "check", "service": "asyncSvc"}]))
        )
        claimed = runtime.claim_run(run_id=run.pk, attempts=0)
        runtime.record_outcome(claimed=claimed, outcome=Outcome("accepted"))
        response = self.client.post(
            f"/api/tasks/{run.pk}/complete",
            json.dumps({"result": "ok"}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {make_token('d', scopes=['decide'])}"},
        )
        assert response.status_code == 403

    def test_create_api_token_binds_a_token_to_a_person(self):
        out, err = io.StringIO(), io.StringIO()
        call_command(
            "create_api_token",
            "rita-portal",
            "--scope",
            "decide",
            "--acting-for",
            "rita",
            stdout=out,
            stderr=err,
        )
        assert "acting for rita" in err.getvalue()
        assert ApiToken.objects.get(name="rita-portal").acting_for == self.rita
        assert self.decide(out.getvalue().strip().splitlines()[-1]).status_code == 200
        self.task.refresh_from_db()
        assert self.task.completed_by == "user:rita"
