"""Callbacks of services that answered 202: POST /api/tasks/{taskId}/complete.

Authorised by a bearer token with the tasks scope, or by a Standard Webhooks signature made
with the step's service secret over a body that names the task (±5 min window, each
webhook-id once). A duplicate or late
answer gets 409, changes nothing and is written down as a `late_callback` event.
"""

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

from django.test import TestCase
from standardwebhooks.webhooks import Webhook

from tests.factories import make_service, make_token, simple_workflow
from tests.integration_helpers import (
    ACCEPTED,
    LocalServerMixin,
    ScriptedService,
    StandInQueue,
)
from workflows_app import runtime
from workflows_app.models import RunState, SeenWebhook, Status, StepRun
from workflows_app.queries import catalog
from workflows_app.runtime.dispatch import Outcome

SECRET = "whsec_" + base64.b64encode(b"the service's callback secret!!!").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"somebody else's secret, not ours").decode()


def signed_headers(
    body: str, *, secret: str = SECRET, msg_id: str | None = None, at: datetime | None = None
) -> dict[str, str]:
    """Standard Webhooks headers for `body`, as a service would send them."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
    }


class CallbackCase(LocalServerMixin, TestCase):
    """An instance whose step `check` (asyncSvc, signed with SECRET) answered 202."""

    step: dict = {}

    def setUp(self):
        self.queue = StandInQueue(self)
        self.token = make_token("portal", scopes=["tasks", "start"])
        service = ScriptedService(self.server, replies=[ACCEPTED])
        make_service("asyncSvc", "http", url=service.url, secret=SECRET, timeout_seconds=5)
        definition = simple_workflow(
            "permit",
            steps=[
                {"id": "check", "service": "asyncSvc", **self.step},
                {"id": "after", "service": "okSvc"},
            ],
        )
        self.instance = self.queue.start(definition, {"applicant": "Ada"})
        self.queue.work()
        self.run = StepRun.objects.get(instance=self.instance, step_id="check")
        assert self.run.state == RunState.WAITING

    def post(self, body: dict | str, headers: dict[str, str], task=None):
        raw = body if isinstance(body, str) else json.dumps(body)
        return self.queue.committed(
            self.client.post,
            f"/api/tasks/{(task or self.run).pk}/complete",
            raw,
            content_type="application/json",
            headers=headers,
        )

    def post_signed(self, body: dict, task=None, **signing):
        """Sign as a service does: the signed body names the task it answers (taskId)."""
        raw = json.dumps({"taskId": str((task or self.run).pk), **body})
        return self.post(raw, signed_headers(raw, **signing), task=task)

    def post_with_token(self, body: dict, token: str | None = None):
        return self.post(body, {"Authorization": f"Bearer {token or self.token}"})

    def status(self) -> dict:
        response = self.client.get(
            f"/api/workflows/{self.instance.uuid}/status",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        return response.json()

    def snapshot(self) -> tuple:
        """What a refused callback must leave as it was."""
        instance = type(self.instance).objects.get(pk=self.instance.pk)
        runs = list(
            StepRun.objects.filter(instance=instance).values_list(
                "step_id", "state", "result", "attempts"
            )
        )
        return instance.status, instance.current_step, instance.context, instance.error, runs

    def assert_refused(self, response, status: int, error: str):
        assert response.status_code == status, response.content
        assert response["Content-Type"] == "application/json"
        assert response.json()["error"] == error
        assert response.json()["detail"]


class AuthorisationTests(CallbackCase):
    def test_a_correctly_signed_callback_completes_the_step(self):
        response = self.post_signed({"result": "ok", "data": {"ref": "V-7"}})
        assert response.status_code == 200
        self.queue.work()
        document = self.status()
        assert document["status"] == "completed"
        assert (
            document["history"][0] | {"by": "service:asyncSvc", "result": "ok"}
            == (document["history"][0])
        )
        self.instance.refresh_from_db()
        assert self.instance.context["check"] == {"ref": "V-7"}

    def test_a_bearer_token_with_the_tasks_scope_completes_the_step(self):
        response = self.post_with_token({"result": "ok"})
        assert response.status_code == 200
        assert response.json()["history"][0]["by"] == "token:portal"

    def test_a_token_without_the_tasks_scope_is_forbidden(self):
        before = self.snapshot()
        response = self.post_with_token(
            {"result": "ok"}, token=make_token("reader", scopes=["start"])
        )
        self.assert_refused(response, 403, "forbidden")
        assert self.snapshot() == before

    def test_no_credentials_at_all_is_unauthorized(self):
        self.assert_refused(self.post({"result": "ok"}, {}), 401, "unauthorized")

    def test_a_signature_made_with_another_secret_is_refused(self):
        before = self.snapshot()
        response = self.post_signed({"result": "ok"}, secret=OTHER_SECRET)
        self.assert_refused(response, 401, "bad_signature")
        assert self.snapshot() == before
        assert SeenWebhook.objects.count() == 0

    def test_a_body_changed_after_signing_is_refused(self):
        headers = signed_headers(json.dumps({"result": "rejected"}))
        self.assert_refused(self.post({"result": "ok"}, headers), 401, "bad_signature")

    def test_missing_signature_headers_are_refused(self):
        raw = json.dumps({"result": "ok"})
        for missing in ("webhook-id", "webhook-timestamp"):
            with self.subTest(missing=missing):
                headers = signed_headers(raw)
                del headers[missing]
                self.assert_refused(self.post(raw, headers), 401, "bad_signature")

    def test_malformed_signature_headers_are_refused_not_a_server_error(self):
        raw = json.dumps({"result": "ok"})
        for name, value in [
            ("webhook-signature", "nonsense"),
            ("webhook-signature", "v1,not base64!"),
            ("webhook-timestamp", "yesterday"),
        ]:
            with self.subTest(value=value):
                headers = signed_headers(raw) | {name: value}
                self.assert_refused(self.post(raw, headers), 401, "bad_signature")

    def test_a_timestamp_outside_five_minutes_is_refused_either_way(self):
        now = datetime.now(UTC)
        for at in (now - timedelta(minutes=6), now + timedelta(minutes=6)):
            with self.subTest(at=at):
                self.assert_refused(self.post_signed({"result": "ok"}, at=at), 401, "bad_signature")

    def test_a_timestamp_within_five_minutes_is_accepted(self):
        response = self.post_signed({"result": "ok"}, at=datetime.now(UTC) - timedelta(minutes=4))
        assert response.status_code == 200

    def test_a_replayed_webhook_id_is_refused(self):
        raw = json.dumps({"taskId": str(self.run.pk), "result": "ok"})
        headers = signed_headers(raw)
        assert self.post(raw, headers).status_code == 200
        self.assert_refused(self.post(raw, headers), 401, "replayed")

    def test_a_service_without_a_secret_cannot_sign(self):
        make_service("asyncSvc", "http", url="http://127.0.0.1:9/", secret="")
        catalog.clear()
        self.assert_refused(self.post_signed({"result": "ok"}), 401, "unauthorized")

    def test_old_webhook_ids_are_forgotten_once_they_can_no_longer_verify(self):
        from workflows_app.runtime.callbacks import forget_old_webhooks

        assert self.post_signed({"result": "ok"}).status_code == 200
        now = datetime.now(UTC)
        assert forget_old_webhooks(now=now) == 0
        assert forget_old_webhooks(now=now + timedelta(minutes=11)) == 1


class DuplicateAndLateCallbackTests(CallbackCase):
    step = {"timeout": "30s", "onTimeout": "fail"}

    def assert_refused_and_recorded(self, response, result: str):
        self.assert_refused(response, 409, "conflict")
        late = [e for e in self.status()["events"] if e["type"] == "late_callback"]
        assert len(late) == 1
        assert (late[0]["step"], late[0]["result"]) == ("check", result)
        assert late[0]["reason"]

    def test_a_second_callback_is_refused_and_recorded(self):
        assert self.post_with_token({"result": "ok"}).status_code == 200
        self.queue.work()
        before = self.snapshot()
        self.assert_refused_and_recorded(self.post_signed({"result": "rejected"}), "rejected")
        assert self.snapshot() == before

    def test_a_callback_after_the_step_timed_out_is_refused_and_recorded(self):
        self.queue.tick(self.run.due_at + timedelta(seconds=1))
        before = self.snapshot()
        assert before[0] == Status.FAILED
        self.assert_refused_and_recorded(self.post_with_token({"result": "ok"}), "ok")
        assert self.snapshot() == before

    def test_a_callback_after_the_instance_was_cancelled_is_refused_and_recorded(self):
        runtime.cancel_instance(instance_id=self.instance.pk, reason="withdrawn")
        before = self.snapshot()
        self.assert_refused_and_recorded(self.post_signed({"result": "ok"}), "ok")
        assert self.snapshot() == before


class CallbackAfterRetryTests(CallbackCase):
    step = {"timeout": "30s", "onTimeout": "retry", "retry": {"max": 2, "backoff": "5s"}}

    def test_a_callback_while_the_step_is_being_retried_is_refused_and_recorded(self):
        self.queue.tick(self.run.due_at + timedelta(seconds=1))
        assert StepRun.objects.get(pk=self.run.pk).state == RunState.QUEUED
        before = self.snapshot()
        response = self.post_with_token({"result": "ok"})
        self.assert_refused(response, 409, "conflict")
        assert self.snapshot() == before
        assert [e["type"] for e in self.status()["events"]][-1] == "late_callback"


class EarlyCallbackTests(CallbackCase):
    def test_a_callback_that_beats_the_worker_recording_the_202_completes_the_step(self):
        # The service answers 202 and calls back at once; the worker has not yet written
        # `waiting`. Replay that order: claim, callback, then the worker's 202.
        runtime.cancel_instance(instance_id=self.instance.pk, reason="setup")  # fresh instance
        definition = simple_workflow("permit2", steps=[{"id": "check", "service": "asyncSvc"}])
        self.instance = self.queue.start(definition, {})
        self.queue.messages.clear()
        run = StepRun.objects.get(instance=self.instance)
        claimed = runtime.claim_run(run_id=run.pk, attempts=0)
        response = self.post_signed({"result": "ok"}, task=run)
        assert response.status_code == 200, response.content
        self.queue.committed(runtime.record_outcome, claimed=claimed, outcome=Outcome("accepted"))
        self.instance.refresh_from_db()
        assert self.instance.status == Status.COMPLETED
        assert [e["type"] for e in self.status()["events"]] == []
