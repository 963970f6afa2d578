"""Security checks: who may see and do what, what anonymous pages reveal, and sign-in limits.

Staff pages need a login and the right role; the API refuses missing, unknown, revoked and
under-scoped tokens; callbacks need a valid Standard Webhooks signature; the citizen's pages
never show the application; payload values are escaped; every HTML page sends a strict CSP;
repeated wrong passwords are answered 429 for a while.
"""

import base64
import json
import time
import uuid
from datetime import timedelta
from unittest.mock import patch

from django.contrib import admin
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.test import TestCase, override_settings
from django.urls import reverse
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from tests.factories import (
    committed,
    make_seed_services,
    make_service,
    make_token,
    make_user,
    run_queued,
    simple_workflow,
    start,
)
from workflows_app import runtime
from workflows_app.models import ApiToken, RunState, StepRun, WorkflowInstance
from workflows_app.runtime.dispatch import Outcome

SECRET = "Zq-7f3a-distinctive-payload-value"
EMAIL = "zq7f3a.applicant@example.org"
XSS = "<script>alert(1)</script>"
LOCMEM = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "test-security",
    }
}


class StaffSetup(TestCase):
    """A review workflow with one waiting task, and people in every role."""

    def setUp(self):
        make_seed_services()
        self.definition = simple_workflow(
            "permit",
            [
                {"id": "check", "service": "okSvc"},
                {"id": "approve", "service": "approvalSvc"},
                {"id": "notify", "service": "notificationSvc"},
            ],
            public=True,
        )
        payload = {"applicant": SECRET, "email": EMAIL, "applicantUsername": "alice"}
        self.instance = start(self.definition, payload)
        run_queued(self.instance)
        self.task = StepRun.objects.get(instance=self.instance, step_id="approve")
        self.reviewer = make_user("rita", "plan-reviewers")
        self.applicant = make_user("alice", "plan-reviewers")
        self.outsider = make_user("otto")
        self.author = make_user("ann", "Workflow authors", is_staff=True)
        self.supervisor = make_user("sam", "Supervisors", is_staff=True)
        self.bare_staff = make_user("stu", is_staff=True)

    def page(self, action: str = "") -> str:
        return f"/tasks/{self.task.pk}/{action}"

    def as_user(self, user):
        self.client.force_login(user)
        return self.client


class StaffPageTests(StaffSetup):
    def test_anonymous_visitors_are_sent_to_sign_in_from_every_staff_page(self):
        for url in ("/tasks/", self.page()):
            response = self.client.get(url)
            assert response.status_code == 302, url
            assert response["Location"].startswith("/accounts/login/?next="), url

    def test_anonymous_task_actions_go_to_sign_in_and_change_nothing(self):
        for action in ("claim", "release", "decide", "reassign"):
            data = {"result": "approved", "to": "group:x", "reason": "r"}
            response = self.client.post(self.page(action), data)
            assert response.status_code == 302 and "/accounts/login/" in response["Location"]
        self.task.refresh_from_db()
        assert (self.task.state, self.task.claimed_by) == (RunState.WAITING, None)

    def test_an_outsider_is_refused_the_task_and_learns_nothing_of_the_application(self):
        client = self.as_user(self.outsider)
        page = client.get(self.page())
        decided = client.post(self.page("decide"), {"result": "approved"})
        assert (page.status_code, decided.status_code) == (403, 403)
        for response in (page, decided):
            assert SECRET not in response.text and EMAIL not in response.text
        self.task.refresh_from_db()
        assert self.task.state == RunState.WAITING

    def test_a_reviewer_of_the_group_sees_the_task_with_the_application(self):
        response = self.as_user(self.reviewer).get(self.page())
        assert response.status_code == 200 and SECRET in response.text

    def test_the_applicant_may_not_decide_on_their_own_application(self):
        response = self.as_user(self.applicant).post(self.page("decide"), {"result": "approved"})
        assert response.status_code == 403
        assert "separation of duties" in response.text
        self.task.refresh_from_db()
        assert self.task.state == RunState.WAITING

    def test_only_a_supervisor_may_reassign(self):
        data = {"to": "group:backup-reviewers", "reason": "holiday"}
        refused = self.as_user(self.reviewer).post(self.page("reassign"), data)
        assert refused.status_code == 403
        self.task.refresh_from_db()
        assert self.task.assignee_group.name == "plan-reviewers"
        Group.objects.get_or_create(name="backup-reviewers")
        done = self.as_user(self.supervisor).post(self.page("reassign"), data)
        assert done.status_code == 302
        self.task.refresh_from_db()
        assert self.task.assignee_group.name == "backup-reviewers"


class AdminRoleTests(StaffSetup):
    def changelists(self) -> dict[str, tuple]:
        """Every registered model's changelist URL, with its view and change permissions."""
        found = {}
        for model in admin.site._registry:
            meta = model._meta
            url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
            perms = (
                f"{meta.app_label}.view_{meta.model_name}",
                f"{meta.app_label}.change_{meta.model_name}",
            )
            found[url] = perms
        return found

    def test_anonymous_visitors_and_non_staff_are_sent_to_the_admin_sign_in(self):
        for user in (None, self.reviewer, self.outsider):
            if user:
                self.client.force_login(user)
            for url in ["/admin/", *self.changelists()]:
                response = self.client.get(url)
                assert response.status_code == 302, (user, url)
                assert response["Location"].startswith("/admin/login/?next="), (user, url)

    def test_staff_open_exactly_the_changelists_their_role_grants(self):
        wrong = []
        for user in (self.author, self.supervisor, self.bare_staff):
            client = self.as_user(user)
            for url, perms in self.changelists().items():
                allowed = any(user.has_perm(perm) for perm in perms)
                status = client.get(url).status_code
                if status != (200 if allowed else 403):
                    wrong.append((user.username, url, status))
        assert not wrong

    def test_the_roles_grant_authoring_to_authors_and_operations_to_supervisors(self):
        expected = [
            (self.author, "workflows_app_workflowdraft_changelist", 200),
            (self.author, "workflows_app_workflowinstance_changelist", 403),
            (self.author, "auth_user_changelist", 403),
            (self.supervisor, "workflows_app_workflowinstance_changelist", 200),
            (self.supervisor, "workflows_app_workflowdraft_add", 403),
            (self.supervisor, "auth_user_changelist", 403),
        ]
        for user, name, status in expected:
            response = self.as_user(user).get(reverse(f"admin:{name}"))
            assert response.status_code == status, (user.username, name)


class ApiTokenTests(TestCase):
    def setUp(self):
        make_seed_services()
        self.definition = simple_workflow("private", [{"id": "approve", "service": "approvalSvc"}])
        self.instance = start(self.definition)
        self.task = StepRun.objects.get(instance=self.instance)
        revoked, self.revoked = ApiToken.issue("old")
        ApiToken.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())

    def calls(self) -> list[tuple[str, str, str]]:
        """(method, path, scope it needs) for every endpoint that touches an instance."""
        base = f"/api/workflows/{self.instance.uuid}"
        return [
            ("post", "/api/workflows/start", "start"),
            ("get", f"{base}/status", "start"),
            ("post", f"{base}/cancel", "operate"),
            ("post", f"{base}/retry", "operate"),
            ("post", f"/api/tasks/{self.task.pk}/complete", "decide"),
        ]

    def call(self, method: str, path: str, token: str | None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body = json.dumps({"workflowId": "private", "result": "approved"})
        if method == "get":
            return self.client.get(path, headers=headers)
        return self.client.post(path, body, content_type="application/json", headers=headers)

    def test_missing_unknown_and_revoked_tokens_get_401_as_json(self):
        for token in (None, "hms_not-a-token", self.revoked):
            for method, path, _ in self.calls():
                response = self.call(method, path, token)
                assert response.status_code == 401, (token, path, response.content)
                assert response.json()["error"] == "unauthorized"

    def test_a_malformed_authorization_header_gets_401(self):
        for header in ("Basic dXNlcjpwdw==", "Bearer", "Token abc"):
            response = self.client.get(self.calls()[1][1], headers={"Authorization": header})
            assert response.status_code == 401, header

    def test_a_token_without_the_scope_gets_403_and_nothing_changes(self):
        scopes = {"start", "tasks", "decide", "operate"}
        for method, path, needed in self.calls():
            token = make_token("narrow", scopes=sorted(scopes - {needed}))
            response = self.call(method, path, token)
            assert response.status_code == 403, (path, response.content)
            assert response.json()["error"] == "forbidden"
        self.task.refresh_from_db()
        assert self.task.state == RunState.WAITING
        assert WorkflowInstance.objects.count() == 1

    def test_a_token_for_another_workflow_gets_403(self):
        token = make_token("other", workflows=["somewhere-else"])
        for method, path, _ in self.calls():
            assert self.call(method, path, token).status_code == 403, path


class SignedCallbackTests(TestCase):
    """A 202 answer leaves the run waiting; the service then calls back, signed."""

    key = base64.b64encode(b"callback-signing-secret-0123456789").decode()

    def setUp(self):
        make_service("asyncSvc", "http", url="http://127.0.0.1:9/", secret="whsec_" + self.key)
        instance = start(simple_workflow("async", [{"id": "check", "service": "asyncSvc"}]))
        self.run = StepRun.objects.get(instance=instance)
        claimed = runtime.claim_run(run_id=self.run.pk, attempts=0)
        runtime.record_outcome(claimed=claimed, outcome=Outcome("accepted"))
        self.url = f"/api/tasks/{self.run.pk}/complete"
        self.body = json.dumps({"taskId": str(self.run.pk), "result": "ok", "data": {}})

    def post(self, *, key: str | None = None, body: str | None = None, age: int = 0, msg_id=None):
        msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
        stamp = timezone.now() - timedelta(seconds=age)
        signed = Webhook("whsec_" + (key or self.key)).sign(msg_id, stamp, self.body)
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(stamp.timestamp())),
            "webhook-signature": signed,
        }
        return self.client.post(
            self.url, body or self.body, content_type="application/json", headers=headers
        )

    def test_bad_signatures_are_refused_with_401_and_the_run_keeps_waiting(self):
        other_key = base64.b64encode(b"somebody-elses-secret-000000000000").decode()
        refused = {
            "wrong secret": self.post(key=other_key),
            "changed body": self.post(body=json.dumps({"result": "rejected", "data": {}})),
            "ten minutes old": self.post(age=600),
        }
        for why, response in refused.items():
            assert response.status_code == 401, why
        self.run.refresh_from_db()
        assert self.run.state == RunState.WAITING

    def test_a_valid_signature_completes_the_run_once_and_a_replay_is_refused(self):
        first = self.post(msg_id="msg_once")
        assert first.status_code == 200
        assert self.post(msg_id="msg_once").status_code == 401
        self.run.refresh_from_db()
        assert (self.run.state, self.run.result) == (RunState.SUCCEEDED, "ok")

    def test_a_signature_header_without_the_id_and_timestamp_is_refused(self):
        headers = {"webhook-signature": "v1,AAAA"}
        response = self.client.post(
            self.url, self.body, content_type="application/json", headers=headers
        )
        assert response.status_code == 401


class PublicPageTests(StaffSetup):
    def finish(self):
        make_user("zq7decider", "plan-reviewers")
        committed(
            runtime.complete_task,
            run_id=self.task.pk,
            result="approved",
            data={"note": SECRET},
            actor="user:zq7decider",
            note=SECRET,
        )
        self.instance.refresh_from_db()
        assert self.instance.status == "completed"

    def public_answers(self):
        tracker = f"/track/{self.instance.uuid}/"
        yield tracker, self.client.get(tracker)
        yield "tracker (htmx)", self.client.get(tracker, headers={"HX-Request": "true"})
        yield (
            "find by case number",
            self.client.get("/track/", {"q": self.instance.case_number}, follow=True),
        )
        yield "/board/", self.client.get("/board/")
        yield "anonymous status", self.client.get(f"/api/workflows/{self.instance.uuid}/status")

    def test_tracker_board_and_public_status_never_show_the_application(self):
        for stage in ("waiting for the reviewer", "completed"):
            for name, response in self.public_answers():
                assert response.status_code in (200, 286), (stage, name)  # 286: htmx, stop polling
                for value in (SECRET, EMAIL, "alice", "zq7decider"):
                    assert value not in response.content.decode(), (stage, name, value)
            if stage == "waiting for the reviewer":
                self.finish()

    def test_payload_values_keys_and_reasons_are_escaped_on_staff_pages(self):
        instance = start(self.definition, {"applicant": XSS, XSS: "key", "nested": {"x": [XSS]}})
        run_queued(instance)
        task = StepRun.objects.get(instance=instance, step_id="approve")
        runtime.reassign_task(
            run_id=task.pk, to="group:plan-reviewers", reason=XSS, actor=self.supervisor
        )
        client = self.as_user(self.supervisor)
        pages = {
            "task": client.get(f"/tasks/{task.pk}/"),
            "inbox": client.get("/tasks/"),
            "admin": client.get(
                reverse("admin:workflows_app_workflowinstance_change", args=[instance.pk])
            ),
        }
        for name, response in pages.items():
            assert response.status_code == 200, name
            assert XSS not in response.text, name
        assert pages["task"].text.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4


@override_settings(
    CACHES=LOCMEM,
    HMS_LOGIN_CACHE="default",
    HMS_LOGIN_MAX_ATTEMPTS=5,
    HMS_LOGIN_WINDOW_SECONDS=900,
)
class LoginRateLimitTests(TestCase):
    def setUp(self):
        cache.clear()  # this process's own memory cache, not the shared one
        self.rita = make_user("rita", "plan-reviewers")
        self.admin_user = make_user("root", is_staff=True, is_superuser=True)

    def sign_in(self, username: str, password: str, *, path="/accounts/login/", ip="127.0.0.1"):
        return self.client.post(path, {"username": username, "password": password}, REMOTE_ADDR=ip)

    def fail(self, times: int, username="rita", **where) -> None:
        for _ in range(times):
            assert self.sign_in(username, "wrong", **where).status_code == 200

    def test_after_five_failures_even_the_right_password_gets_429_until_the_window_passes(self):
        self.fail(5)
        blocked = self.sign_in("rita", "pw")
        assert blocked.status_code == 429
        assert blocked["Content-Type"].startswith("text/plain")
        assert "Too many failed sign-in attempts" in blocked.text
        assert 0 < int(blocked["Retry-After"]) <= 900
        assert "_auth_user_id" not in self.client.session
        later = time.time() + 901
        with patch("time.time", return_value=later):
            assert self.sign_in("rita", "pw").status_code == 302

    def test_other_users_and_other_addresses_are_not_affected(self):
        self.fail(5)
        assert self.sign_in("root", "pw").status_code == 302
        self.client.logout()
        assert self.sign_in("rita", "pw", ip="10.0.0.7").status_code == 302
        self.client.logout()
        assert self.sign_in("rita", "pw").status_code == 429

    def test_a_successful_sign_in_clears_the_count(self):
        self.fail(4)
        assert self.sign_in("rita", "pw").status_code == 302
        self.client.logout()
        self.fail(4)
        assert self.sign_in("rita", "pw").status_code == 302
        self.client.logout()
        self.fail(5)
        assert self.sign_in("rita", "pw").status_code == 429

    def test_the_admin_sign_in_is_limited_too_and_usernames_ignore_case(self):
        self.fail(3, "root", path="/admin/login/")
        self.fail(2, "ROOT", path="/admin/login/")
        assert self.sign_in("root", "pw", path="/admin/login/").status_code == 429
        assert self.sign_in("root", "pw").status_code == 429

    def test_behind_a_proxy_the_address_the_proxy_added_is_the_client(self):
        def via_proxy(password: str, forwarded: str):
            return self.client.post(
                "/accounts/login/",
                {"username": "rita", "password": password},
                REMOTE_ADDR="10.0.0.1",
                HTTP_X_FORWARDED_FOR=forwarded,
            )

        with self.settings(HMS_CLIENT_IP_HEADER="HTTP_X_FORWARDED_FOR"):
            for _ in range(5):
                assert via_proxy("wrong", "spoofed, 203.0.113.9").status_code == 200
            assert via_proxy("pw", "198.51.100.4, 203.0.113.9").status_code == 429
            assert via_proxy("pw", "203.0.113.9, 198.51.100.4").status_code == 302


class SecurityHeaderTests(StaffSetup):
    def html_pages(self) -> list[tuple[str, object]]:
        pages = [
            (None, f"/track/{self.instance.uuid}/"),
            (None, "/track/"),
            (None, "/board/"),
            (None, "/accounts/login/"),
            (None, "/admin/login/"),
            (None, f"/track/{uuid.uuid4()}/"),
            (self.reviewer, "/tasks/"),
            (self.reviewer, self.page()),
            (self.outsider, self.page()),
            (self.supervisor, "/admin/"),
            (self.supervisor, reverse("admin:workflows_app_workflowinstance_changelist")),
        ]
        for user, url in pages:
            self.client.logout()
            if user:
                self.client.force_login(user)
            yield url, self.client.get(url)

    def test_every_html_page_sends_a_csp_without_inline_scripts_and_a_same_origin_referrer(self):
        for url, response in self.html_pages():
            assert response["Content-Type"].startswith("text/html"), url
            policy = dict(
                (part.split()[0], part.split()[1:])
                for part in response.get("Content-Security-Policy", "").split(";")
                if part.strip()
            )
            scripts = policy.get("script-src", policy.get("default-src"))
            assert scripts is not None, url
            assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts, url
            assert policy.get("frame-ancestors") == ["'none'"], url
            assert response["Referrer-Policy"] == "same-origin", url
