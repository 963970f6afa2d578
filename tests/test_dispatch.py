"""Automated steps over real HTTP (CONTRACT §2): requests, signatures, answers, retries.

Every service here is a real server on 127.0.0.1 (pytest-httpserver); nothing mocks `requests`.
Time is driven explicitly: a retry fires when the test's timer pass (runtime.process_due)
reaches the run's `wake_at`, and `specs.jitter` is fixed so that delays are exact.
"""

import base64
import os
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from unittest.mock import patch

import requests
from django.core import mail
from django.test import SimpleTestCase, TestCase, override_settings
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.factories import make_definition, make_service, make_token, simple_workflow
from tests.integration_helpers import (
    OK,
    LocalServerMixin,
    Reply,
    ScriptedService,
    StandInQueue,
    refused_url,
)
from workflows_app.management import demo_server
from workflows_app.models import Event, RunState, Status, StepRun, WorkflowInstance
from workflows_app.queries import catalog
from workflows_app.runtime import dispatch, outbound

SECRET = "whsec_" + base64.b64encode(b"a signing secret of 32 bytes....").decode()


class HttpStepCase(LocalServerMixin, TestCase):
    """One HTTP step `call` (service remoteSvc) followed by a python step `after`."""

    def setUp(self):
        self.queue = StandInQueue(self)
        self.token = make_token("ops")
        jitter = patch(
            "workflows_app.runtime.steps.jitter", return_value=1.0
        )  # delay = full backoff
        jitter.start()
        self.addCleanup(jitter.stop)

    def service(self, *replies: Reply, url: str = "", **fields) -> ScriptedService:
        """(Re)define remoteSvc, answering `replies` in order from the local server."""
        self.server.clear()
        catalog.clear()
        scripted = ScriptedService(self.server, replies=replies or (OK,))
        fields.setdefault("timeout_seconds", 5)
        make_service("remoteSvc", "http", url=url or scripted.url, **fields)
        return scripted

    def run_workflow(self, payload=None, **step) -> WorkflowInstance:
        """Start the workflow and work it until no retry is pending; return it refreshed."""
        definition = simple_workflow(
            "remote",
            steps=[
                {"id": "call", "service": "remoteSvc", **step},
                {"id": "after", "service": "okSvc"},
            ],
        )
        instance = self.queue.start(definition, payload or {"applicant": "Ada"})
        self.queue.settle(instance)
        instance.refresh_from_db()
        return instance

    def run_of(self, instance, step="call") -> StepRun:
        return StepRun.objects.get(instance=instance, step_id=step)

    def status(self, instance) -> dict:
        response = self.client.get(
            f"/api/workflows/{instance.uuid}/status",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert response.status_code == 200
        return response.json()

    def delays(self, instance) -> list[float]:
        events = Event.objects.filter(instance=instance, type=Event.Type.RETRY_SCHEDULED)
        return [event.detail["delay_seconds"] for event in events.order_by("pk")]


class RequestTests(HttpStepCase):
    @override_settings(HMS_PUBLIC_URL="https://hms.example.gov")
    def test_the_request_carries_the_contract_body_and_the_run_id_as_idempotency_key(self):
        service = self.service()
        make_service("checkSvc", callable="workflows_app.builtin.check_required_fields")
        definition = make_definition(
            {
                "id": "remote",
                "steps": [
                    {"id": "check", "service": "checkSvc"},
                    {"id": "call", "service": "remoteSvc"},
                ],
            }
        )
        payload = {"applicant": "Ada", "address": "1 Main St"}
        instance = self.queue.start(definition, payload)
        self.queue.work()
        run = self.run_of(instance)
        [request] = service.received
        assert request.json == {
            "instanceId": str(instance.uuid),
            "workflowId": "remote",
            "step": "call",
            "attempt": 1,
            "payload": payload,
            "context": {"check": {"checked": ["applicant", "address"]}},
            "callbackUrl": f"https://hms.example.gov/api/tasks/{run.pk}/complete",
        }
        assert request.headers["Content-Type"] == "application/json"
        assert request.idempotency_key == str(run.pk)

    def test_a_service_without_a_secret_gets_no_signature_headers(self):
        service = self.service()
        self.run_workflow()
        assert not any(name.lower().startswith("webhook-") for name in service.received[0].headers)

    def test_a_service_with_a_secret_gets_standard_webhooks_headers_that_verify(self):
        service = self.service(secret=SECRET)
        self.run_workflow()
        [request] = service.received
        Webhook(SECRET).verify(request.body, request.headers)  # raises if it does not verify
        assert request.headers["Webhook-Signature"].startswith("v1,")
        with self.assertRaises(WebhookVerificationError):
            Webhook(SECRET).verify(request.body.replace(b"Ada", b"Eve"), request.headers)

    def test_a_plain_text_secret_signs_with_its_own_bytes(self):
        service = self.service(secret="plain text secret")
        self.run_workflow()
        whsec = "whsec_" + base64.b64encode(b"plain text secret").decode()
        Webhook(whsec).verify(service.received[0].body, service.received[0].headers)

    def test_a_secret_from_the_environment_signs_the_request(self):
        service = self.service(secret_env="REMOTE_SVC_SECRET")
        with patch.dict(os.environ, {"REMOTE_SVC_SECRET": SECRET}):
            self.run_workflow()
        Webhook(SECRET).verify(service.received[0].body, service.received[0].headers)

    def test_a_missing_secret_variable_fails_the_step_instead_of_calling_unsigned(self):
        service = self.service(secret_env="HMS_TEST_UNSET_SECRET")
        instance = self.run_workflow()
        assert service.received == []
        assert instance.status == Status.FAILED
        assert "HMS_TEST_UNSET_SECRET, which is not set" in instance.error["detail"]

    def test_every_retry_carries_the_same_idempotency_key_and_the_next_attempt(self):
        service = self.service(Reply(503), Reply(503), OK, secret=SECRET)
        instance = self.run_workflow(retry={"max": 2, "backoff": "2s"})
        run = self.run_of(instance)
        assert [r.idempotency_key for r in service.received] == [str(run.pk)] * 3
        assert [r.attempt for r in service.received] == [1, 2, 3]
        webhook_ids = [r.headers["Webhook-Id"] for r in service.received]
        assert len(set(webhook_ids)) == 3  # each attempt is its own signed message
        assert instance.status == Status.COMPLETED


class AnswerTests(HttpStepCase):
    def test_a_2xx_answer_completes_the_step_and_its_data_goes_to_the_context(self):
        for status in (200, 201):
            with self.subTest(status=status):
                self.service(Reply(status, {"result": "ok", "data": {"score": 7}}))
                instance = self.run_workflow()
                assert instance.status == Status.COMPLETED
                assert instance.context["call"] == {"score": 7}
                run = self.run_of(instance)
                assert (run.state, run.result, run.attempts) == (RunState.SUCCEEDED, "ok", 1)

    def test_the_result_of_an_answer_routes_the_instance(self):
        self.service(Reply(200, {"result": "rejected", "data": {"reasons": ["no plans"]}}))
        instance = self.run_workflow(on={"rejected": "reject"})
        assert instance.status == Status.REJECTED
        assert instance.context["call"] == {"reasons": ["no plans"]}

    def test_a_202_answer_waits_and_the_callback_completes_the_step(self):
        self.service(Reply(202, {"status": "accepted"}))
        instance = self.run_workflow()
        run = self.run_of(instance)
        assert (instance.status, run.state) == (Status.RUNNING, RunState.WAITING)
        document = self.status(instance)
        assert document["steps"][0]["state"] == "waiting"
        assert document["currentTask"]["taskId"] == str(run.pk)
        response = self.queue.committed(
            self.client.post,
            f"/api/tasks/{run.pk}/complete",
            {"result": "ok", "data": {"permit": "P-1"}},
            content_type="application/json",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert response.status_code == 200
        self.queue.work()
        instance.refresh_from_db()
        assert instance.status == Status.COMPLETED
        assert instance.context["call"] == {"permit": "P-1"}

    def test_malformed_2xx_answers_fail_the_step_at_once_with_a_clear_error(self):
        cases = [
            (Reply(200, body="<html>hello</html>"), "answered 200 with a body that is not JSON"),
            (Reply(204), "answered 204 with a body that is not JSON"),
            (Reply(200, ["ok"]), 'answered without a "result" string'),
            (Reply(200, {"result": 3}), 'answered without a "result" string'),
            (Reply(200, {"result": " "}), 'answered with an empty "result"'),
            (
                Reply(200, {"result": "ok", "data": [1]}),
                'answered with "data" that is not an object',
            ),
        ]
        for reply, message in cases:
            with self.subTest(message=message, reply=reply):
                service = self.service(reply)
                instance = self.run_workflow(retry={"max": 2, "backoff": "2s"})
                assert len(service.received) == 1
                assert instance.status == Status.FAILED
                assert instance.error == {
                    "step": "call",
                    "detail": f"service 'remoteSvc' {message}",
                }

    def test_an_answer_over_1_mib_fails_the_step(self):
        self.service(
            Reply(200, body=b'{"result": "ok", "data": {"x": "' + b"a" * 1_100_000 + b'"}}')
        )
        instance = self.run_workflow()
        assert instance.status == Status.FAILED
        assert instance.error["detail"] == "service 'remoteSvc' answered more than 1 MiB"


class RetryTests(HttpStepCase):
    def test_retryable_answers_are_retried_up_to_retry_max_then_the_failure_is_visible(self):
        for status in (408, 429, 500, 502, 503, 504):
            with self.subTest(status=status):
                service = self.service(Reply(status, body="busy, try later"))
                instance = self.run_workflow(retry={"max": 2, "backoff": "2s"})
                assert len(service.received) == 3  # max: 2 means three requests
                assert self.delays(instance) == [2.0, 4.0]
                document = self.status(instance)
                assert document["status"] == "failed"
                assert document["error"] == {
                    "step": "call",
                    "detail": f"service 'remoteSvc' answered {status}: busy, try later "
                    "(gave up after 3 attempts)",
                }
                assert [s["state"] for s in document["steps"]] == ["failed", "upcoming"]
                retries = [e for e in document["events"] if e["type"] == "retry_scheduled"]
                assert [e["attempt"] for e in retries] == [1, 2]

    def test_a_refused_connection_is_retried(self):
        self.service(url=refused_url())
        instance = self.run_workflow(retry={"max": 2, "backoff": "2s"})
        assert self.run_of(instance).attempts == 3
        assert instance.status == Status.FAILED
        assert instance.error["detail"].startswith("cannot reach http://127.0.0.1:")
        assert "ConnectionError (gave up after 3 attempts)" in instance.error["detail"]

    def test_a_service_that_does_not_answer_in_time_is_retried(self):
        service = self.service(Reply(200, {"result": "late"}, delay=1.6), OK, timeout_seconds=1)
        instance = self.run_workflow(retry={"max": 2, "backoff": "2s"})
        assert len(service.received) == 2
        assert instance.status == Status.COMPLETED
        event = Event.objects.get(instance=instance, type=Event.Type.RETRY_SCHEDULED)
        assert event.detail["error"].endswith("did not answer within 1s")

    def test_a_timed_out_service_is_retried_until_retry_max(self):
        service = self.service(Reply(200, OK.json, delay=1.6), timeout_seconds=1)
        instance = self.run_workflow(retry={"max": 2, "backoff": "2s"})
        assert len(service.received) == 3
        assert instance.status == Status.FAILED

    def test_other_4xx_answers_fail_the_step_after_one_request(self):
        for status in (400, 401, 403, 404, 409, 410, 422):
            with self.subTest(status=status):
                service = self.service(Reply(status, {"error": "no such applicant"}))
                instance = self.run_workflow(retry={"max": 2, "backoff": "2s"})
                assert len(service.received) == 1
                assert instance.status == Status.FAILED
                assert instance.error["detail"] == (
                    f'service \'remoteSvc\' answered {status}: {{"error": "no such applicant"}}'
                )
                assert self.delays(instance) == []

    def test_an_operator_retry_resumes_the_failed_step_as_a_new_run_with_a_new_key(self):
        service = self.service(Reply(400, {"error": "bad"}), OK)
        instance = self.run_workflow()
        assert instance.status == Status.FAILED
        response = self.queue.committed(
            self.client.post,
            f"/api/workflows/{instance.uuid}/retry",
            content_type="application/json",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert response.status_code == 200
        self.queue.work()
        document = self.status(instance)
        assert document["status"] == "completed" and "error" not in document
        first, second = service.received
        assert first.idempotency_key != second.idempotency_key
        assert [(h["step"], h["state"]) for h in document["history"]] == [
            ("call", "failed"),
            ("call", "succeeded"),
            ("after", "succeeded"),
        ]

    def test_a_redirect_is_not_followed_and_fails_the_step(self):
        service = self.service(Reply(302, headers={"Location": "/elsewhere"}))
        instance = self.run_workflow()
        assert len(service.received) == 1
        assert instance.error["detail"].startswith("service 'remoteSvc' answered 302")

    def test_retry_after_in_seconds_is_honoured(self):
        self.service(Reply(429, headers={"Retry-After": "120"}), OK)
        instance = self.run_workflow(retry={"max": 2, "backoff": "2s"})
        assert self.delays(instance) == [120.0]
        assert instance.status == Status.COMPLETED

    def test_retry_after_as_an_http_date_is_honoured(self):
        later = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
        self.service(Reply(503, headers={"Retry-After": later}), OK)
        instance = self.run_workflow(retry={"max": 2, "backoff": "2s"})
        [delay] = self.delays(instance)
        assert 87 <= delay <= 90

    def test_a_retry_after_shorter_than_the_backoff_does_not_shorten_it(self):
        self.service(Reply(503, headers={"Retry-After": "1"}), OK)
        instance = self.run_workflow(retry={"max": 2, "backoff": "10s"})
        assert self.delays(instance) == [10.0]

    def test_backoff_doubles_and_jitter_keeps_each_delay_between_half_and_all_of_it(self):
        policy = {"max": 3, "backoff": "2s"}
        for jitter, expected in ((0.0, [1.0, 2.0, 4.0]), (1.0, [2.0, 4.0, 8.0])):
            with (
                self.subTest(jitter=jitter),
                patch("workflows_app.runtime.steps.jitter", return_value=jitter),
            ):
                self.service(Reply(503))
                assert self.delays(self.run_workflow(retry=policy)) == expected
        randoms = patch("workflows_app.runtime.steps.jitter", side_effect=[0.25, 0.5, 0.75])
        with self.subTest(jitter="random"), randoms:
            self.service(Reply(503))
            assert self.delays(self.run_workflow(retry=policy)) == [1.25, 3.0, 7.0]

    def test_a_step_without_retry_gets_three_retries_starting_at_ten_seconds(self):
        service = self.service(Reply(500))
        instance = self.run_workflow()
        assert len(service.received) == 4
        assert self.delays(instance) == [10.0, 20.0, 40.0]

    def test_no_retry_is_sent_before_it_is_due_and_one_is_sent_when_it_is(self):
        service = self.service(Reply(503), OK)
        definition = simple_workflow(
            "remote",
            steps=[{"id": "call", "service": "remoteSvc", "retry": {"max": 2, "backoff": "30s"}}],
        )
        instance = self.queue.start(definition)
        self.queue.work()
        run = self.run_of(instance)
        assert run.state == RunState.QUEUED and self.queue.messages == []
        assert self.queue.tick(run.wake_at - timedelta(milliseconds=1)) == 0
        assert self.queue.messages == []  # nothing sent early
        assert self.queue.tick(run.wake_at) == 1
        assert self.queue.messages == [(StandInQueue.RUN_STEP, (str(run.pk), 1))]
        self.queue.work()
        assert len(service.received) == 2
        assert WorkflowInstance.objects.get(pk=instance.pk).status == Status.COMPLETED


class DispatchNeverRaisesTests(SimpleTestCase):
    def test_an_unusable_secret_is_a_failure_not_an_exception(self):
        service = type("S", (), {"name": "x", "secret": "whsec_!!!", "secret_env": ""})()
        with self.assertRaises(outbound.UnusableSecret):
            outbound.signature_headers(service, msg_id="m", body="{}")

    def test_retry_after_reads_seconds_and_http_dates(self):
        now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
        assert dispatch.retry_after("30", now=now) == 30.0
        assert dispatch.retry_after("Mon, 02 Mar 2026 12:01:00 GMT", now=now) == 60.0
        assert dispatch.retry_after("Mon, 02 Mar 2026 12:01:00 -0000", now=now) == 60.0
        assert dispatch.retry_after("Mon, 02 Mar 2026 11:00:00 GMT", now=now) == 0.0
        assert dispatch.retry_after("soon", now=now) is None
        assert dispatch.retry_after(None, now=now) is None


class DemoServiceTests(TestCase):
    """The demo validationSvc of `make run`, and the seed example over real HTTP."""

    def setUp(self):
        self.demo = demo_server.serve(port=0)
        thread = threading.Thread(target=self.demo.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(self.demo.server_close)
        self.addCleanup(self.demo.shutdown)
        self.url = f"http://127.0.0.1:{self.demo.server_address[1]}"

    def test_validation_answers_ok_for_a_complete_application(self):
        answer = requests.post(
            f"{self.url}/validate",
            json={"payload": {"applicant": "Ada", "address": "1 Main St"}},
            timeout=5,
        )
        assert answer.status_code == 200
        assert answer.json() == {"result": "ok", "data": {"checked": ["address", "applicant"]}}

    def test_validation_answers_rejected_with_reasons(self):
        answer = requests.post(
            f"{self.url}/validate", json={"payload": {"applicant": " "}}, timeout=5
        )
        assert answer.json() == {
            "result": "rejected",
            "data": {
                "reasons": ["the applicant's name is missing", "the address of the site is missing"]
            },
        }

    def test_unknown_paths_and_malformed_bodies_are_refused(self):
        assert requests.post(f"{self.url}/nothing", json={}, timeout=5).status_code == 404
        assert requests.post(f"{self.url}/validate", data=b"{oops", timeout=5).status_code == 400

    def test_the_seed_example_runs_over_http_and_emails_the_applicant(self):
        make_service("validationSvc", "http", url=f"{self.url}/validate", timeout_seconds=10)
        make_service(
            "approvalSvc", "human", group="plan-reviewers", backup_group="backup-reviewers"
        )
        make_service("notificationSvc", callable="workflows_app.builtin.notify_applicant")
        queue = StandInQueue(self)
        payload = {"applicant": "Ada", "address": "1 Main St", "email": "ada@example.org"}
        instance = queue.start(make_definition(), payload)
        queue.work()
        task = StepRun.objects.get(instance=instance, step_id="approve")
        assert task.state == RunState.WAITING
        token = make_token("portal")
        response = queue.committed(
            self.client.post,
            f"/api/tasks/{task.pk}/complete",
            {"result": "approved"},
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200
        queue.work()
        instance.refresh_from_db()
        assert instance.status == Status.COMPLETED
        assert instance.context["validate"] == {"checked": ["address", "applicant"]}
        [email] = [m for m in mail.outbox if m.to == ["ada@example.org"]]
        assert instance.case_number in email.subject
        assert instance.tracker_url in email.body
