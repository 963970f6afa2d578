"""Status webhooks (CONTRACT R2; docs/webhooks.md): the outbox, signed delivery in order per
instance, retries with backoff, claims, a killed sender, "send again", the loader.

The receiver is a real HTTP server on 127.0.0.1 (pytest-httpserver). Time is driven by the
test: the delivery module's clock is replaced, so a retry's backoff passes when it says so.
"""

import base64
import json
from datetime import timedelta
from types import SimpleNamespace
from unittest.mock import patch

import pytest
from django.db import transaction
from django.test import TestCase, override_settings
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from tests.factories import make_definition, make_service, make_user
from tests.integration_helpers import OK, LocalServerMixin, Reply, ScriptedService, StandInQueue
from workflows_app import runtime
from workflows_app.authoring import publishing
from workflows_app.definitions import InvalidDefinition
from workflows_app.models import StepRun, Subscription, WebhookDelivery, WorkflowInstance
from workflows_app.runtime import webhooks

SECRET = "whsec_" + base64.b64encode(b"a subscriber's secret of 32 b..").decode()
REVIEW = {
    "id": "review",
    "steps": [
        {"id": "check", "service": "okSvc"},
        {"id": "approve", "service": "approvalSvc"},
        {"id": "notify", "service": "okSvc"},
    ],
}
WAIT = {"id": "wait", "steps": [{"id": "approve", "service": "approvalSvc"}]}  # one change
State = WebhookDelivery.State


class Clock:
    """The delivery module's clock, moved on by the test."""

    def __init__(self):
        self.at = timezone.now() + timedelta(minutes=1)  # after every change the test makes

    def now(self):
        return self.at

    def advance(self, **delta):
        self.at += timedelta(**delta)


class WebhookCase(LocalServerMixin, TestCase):
    def setUp(self):
        self.queue = StandInQueue(self)
        self.clock = Clock()
        patcher = patch.object(webhooks, "timezone", self.clock)
        patcher.start()
        self.addCleanup(patcher.stop)
        make_service("okSvc")
        make_service("approvalSvc", "human")
        self.definition = make_definition(REVIEW)
        self.waiting = make_definition(WAIT)

    def subscribe(self, *replies: Reply, **fields) -> ScriptedService:
        receiver = ScriptedService(self.server, path="/hooks", replies=replies or (OK,))
        fields = {"url": receiver.url, "secret": SECRET, "events": ["instance.updated"], **fields}
        self.subscription = Subscription.objects.create(name="portalHook", **fields)
        return receiver

    def run_review(self) -> WorkflowInstance:
        """Start, approve, finish: four changes (check, approve, notify, completed)."""
        instance = self.queue.start(self.definition, {"applicant": "Ada"})
        task = StepRun.objects.get(instance=instance, step_id="approve")
        make_user("rita", "plan-reviewers")
        self.queue.committed(
            runtime.complete_task, run_id=task.pk, result="approved", actor="user:rita"
        )
        return instance

    def drive(self, rounds: int = 10) -> None:
        """Work the queue; let each backoff pass and sweep, until nothing is due."""
        for _ in range(rounds):
            self.queue.work()
            pending = WebhookDelivery.objects.filter(state=State.PENDING).order_by("id").first()
            if pending is None:
                return
            self.clock.at = max(self.clock.at, pending.next_attempt_at) + timedelta(seconds=1)
            self.queue.committed(webhooks.sweep_deliveries, now=self.clock.at)


class DeliveryTests(WebhookCase):
    def test_a_receiver_failing_twice_gets_every_event_in_order_once_after_success(self):
        receiver = self.subscribe(Reply(503), Reply(500), OK)
        instance = self.run_review()
        self.drive()
        bodies = [r.json for r in receiver.received]
        # The first message three times (503, 500, then 200); each later one once, in order.
        assert [b["currentSteps"] for b in bodies] == [
            ["check"],
            ["check"],
            ["check"],
            ["approve"],
            ["notify"],
            [],
        ]
        assert [b["status"] for b in bodies[2:]] == ["running", "running", "running", "completed"]
        ids = [r.headers["Webhook-Id"] for r in receiver.received]
        assert ids[0] == ids[1] == ids[2] and len(set(ids[2:])) == 4
        last = bodies[-1]
        assert last == {
            "type": "instance.updated",
            "instanceId": str(instance.uuid),
            "caseNumber": instance.case_number,
            "workflowId": "review",
            "status": "completed",
            "currentSteps": [],
            "outcome": last["outcome"],
            "time": last["time"],
        }
        assert last["outcome"]["result"] == "approved"
        # Nothing more is sent once every message was taken.
        self.clock.advance(hours=2)
        self.queue.committed(webhooks.sweep_deliveries, now=self.clock.at)
        self.queue.work()
        assert len(receiver.received) == 6
        assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {State.DELIVERED}

    def test_every_message_carries_a_standard_webhooks_signature_that_verifies(self):
        receiver = self.subscribe()
        self.run_review()
        self.drive()
        verifier = Webhook(SECRET)
        for request in receiver.received:
            headers = {k.lower(): v for k, v in request.headers.items()}
            assert headers["webhook-signature"].startswith("v1,")
            assert verifier.verify(request.body, headers) == json.loads(request.body)

    def test_a_retry_waits_longer_each_time(self):
        self.subscribe(Reply(503))
        self.queue.start(self.waiting, {})
        delays = []
        for _ in range(3):
            self.queue.work()
            message = WebhookDelivery.objects.order_by("id").first()
            delays.append((message.next_attempt_at - self.clock.at).total_seconds())
            self.clock.at = message.next_attempt_at
            self.queue.committed(webhooks.sweep_deliveries, now=self.clock.at)
        assert 4 <= delays[0] <= 6 and 8 <= delays[1] <= 12 and 16 <= delays[2] <= 24
        assert message.last_status == 503 and message.last_error == "answered 503"

    def test_the_outbox_row_is_written_with_the_change_and_rolls_back_with_it(self):
        self.subscribe()
        with pytest.raises(RuntimeError), transaction.atomic():
            runtime.start_instance(definition=self.definition, payload={})
            assert WebhookDelivery.objects.count() == 1
            raise RuntimeError("the change is rolled back")
        assert WebhookDelivery.objects.count() == 0
        assert WorkflowInstance.objects.count() == 0

    def test_subscriptions_of_other_workflows_or_inactive_ones_get_nothing(self):
        self.subscribe(workflows=["building-permit"])
        Subscription.objects.create(name="off", url="http://127.0.0.1:9/", secret=SECRET, events=["instance.updated"], active=False)  # fmt: skip
        self.run_review()
        assert WebhookDelivery.objects.count() == 0


class SlowReceiverTests(WebhookCase):
    def test_a_job_stops_within_half_the_task_time_out_and_a_new_job_goes_on_in_order(self):
        receiver = self.subscribe()
        ticks = iter(range(0, 10_000, 30))  # every look at the clock: 30 s later
        clock = SimpleNamespace(monotonic=lambda: next(ticks))  # the delivery module's only
        with patch.object(webhooks, "time", clock):
            self.run_review()
            self.drive()
        assert [r.json["currentSteps"] for r in receiver.received] == [
            ["check"],
            ["approve"],
            ["notify"],
            [],
        ]
        assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {State.DELIVERED}


class ClaimTests(WebhookCase):
    def test_two_senders_never_send_one_instances_messages_at_once(self):
        self.subscribe()
        instance = self.queue.start(self.waiting, {})
        key = (self.subscription.pk, instance.pk)
        first = webhooks._claim_head(*key, self.clock.at)
        assert first is not None
        assert webhooks._claim_head(*key, self.clock.at) is None  # held by the first sender

    def test_a_sender_killed_mid_call_leaves_its_message_to_the_sweep_once_the_lease_ends(self):
        receiver = self.subscribe()
        instance = self.queue.start(self.waiting, {})
        self.queue.messages.clear()  # the job's message is lost with the worker
        assert webhooks._claim_head(self.subscription.pk, instance.pk, self.clock.at)  # then killed
        assert self.queue.committed(webhooks.sweep_deliveries, now=self.clock.at) == 0
        self.clock.advance(seconds=61)  # HMS_WEBHOOK_LEASE_SECONDS passed
        assert self.queue.committed(webhooks.sweep_deliveries, now=self.clock.at) == 1
        self.queue.work()
        assert len(receiver.received) == 1
        assert WebhookDelivery.objects.get().state == State.DELIVERED

    @override_settings(HMS_WEBHOOK_MAX_ATTEMPTS=2)
    def test_a_message_given_up_holds_the_later_ones_until_sent_again(self):
        receiver = self.subscribe(Reply(503), Reply(503), OK)
        self.run_review()
        self.drive()
        first, *later = WebhookDelivery.objects.order_by("id")
        assert first.state == State.FAILED and first.attempts == 2
        assert {m.state for m in later} == {State.PENDING}
        assert len(receiver.received) == 2
        self.queue.committed(webhooks.send_again, delivery_ids=[first.pk])
        self.drive()
        assert len(receiver.received) == 6
        assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {State.DELIVERED}

    @override_settings(HMS_PRIVATE_URL_ALLOW=[])
    def test_a_private_address_is_refused_as_for_services(self):
        receiver = self.subscribe()
        self.queue.start(self.waiting, {})
        self.queue.work()
        message = WebhookDelivery.objects.get()
        assert message.state == State.FAILED
        assert "127.0.0.1" in message.last_error or "private" in message.last_error.lower()
        assert receiver.received == []


class AdminTests(WebhookCase):
    def test_staff_see_failures_and_send_again(self):
        self.subscribe(Reply(503), OK)
        self.queue.start(self.waiting, {})
        self.queue.work()
        message = WebhookDelivery.objects.get()
        admin_user = make_user("admin", is_staff=True, is_superuser=True)
        self.client.force_login(admin_user)
        page = self.client.get("/admin/workflows_app/webhookdelivery/")
        assert page.status_code == 200 and "answered 503" in page.content.decode()
        self.client.post(
            "/admin/workflows_app/webhookdelivery/",
            {"action": "send_again", "_selected_action": [message.pk]},
        )
        self.queue.work()
        message.refresh_from_db()
        assert message.state == State.DELIVERED

    @override_settings(HMS_WEBHOOK_MAX_ATTEMPTS=1)
    def test_the_subscription_list_counts_failed_and_pending_messages(self):
        self.subscribe(Reply(503))
        self.run_review()
        self.queue.work()
        self.client.force_login(make_user("admin", is_staff=True, is_superuser=True))
        with self.assertNumQueries(5):  # session, user, two counts, the rows with their counts
            page = self.client.get("/admin/workflows_app/subscription/")
        cells = page.content.decode()
        assert '<td class="field-failed">1</td>' in cells
        assert '<td class="field-pending">3</td>' in cells
        history = self.client.get(
            f"/admin/workflows_app/subscription/{self.subscription.pk}/history/"
        )
        assert history.status_code == 200

    def test_staff_without_the_change_permission_cannot_send_again(self):
        from django.contrib.auth.models import Permission

        self.subscribe(Reply(503))
        self.queue.start(self.waiting, {})
        self.queue.work()
        viewer = make_user("viewer", is_staff=True)
        viewer.user_permissions.add(Permission.objects.get(codename="view_webhookdelivery"))
        self.client.force_login(viewer)
        page = self.client.get("/admin/workflows_app/webhookdelivery/")
        assert page.status_code == 200 and "send_again" not in page.content.decode()
        message = WebhookDelivery.objects.get()
        self.client.post(
            "/admin/workflows_app/webhookdelivery/",
            {"action": "send_again", "_selected_action": [message.pk]},
        )
        message.refresh_from_db()
        assert message.attempts == 1 and message.next_attempt_at > self.clock.at


class LoaderTests(TestCase):
    def test_a_services_file_registers_its_subscriptions(self, tmp_path=None):
        import tempfile
        from pathlib import Path

        folder = Path(tempfile.mkdtemp())
        services = folder / "services.yaml"
        services.write_text(
            "services:\n  okSvc: {kind: python, callable: workflows_app.builtin.accept}\n"
            "subscriptions:\n"
            f"  portalHook: {{url: 'http://127.0.0.1:9/hooks', secret: '{SECRET}',"
            " events: [instance.updated], workflows: [building-permit]}\n"
        )
        report = publishing.load_files([services])
        sub = Subscription.objects.get(name="portalHook")
        assert (sub.url, sub.events, sub.workflows) == (
            "http://127.0.0.1:9/hooks",
            ["instance.updated"],
            ["building-permit"],
        )
        assert "subscription portalHook: created" in "\n".join(report.lines)

    def test_a_bad_subscription_is_refused_with_each_problem(self):
        import tempfile
        from pathlib import Path

        path = Path(tempfile.mkdtemp()) / "services.yaml"
        path.write_text("subscriptions:\n  hook: {url: 'ftp://x', secret: 'plain', events: [x]}\n")
        with pytest.raises(InvalidDefinition) as refused:
            publishing.parse_files([path])
        text = str(refused.value)
        assert "url" in text and "whsec_" in text and "event 'x'" in text


class ScheduleTests(TestCase):
    def test_a_schedule_drives_due_queues_every_minute_through_the_task(self):
        from django_q.models import Schedule

        from workflows_app import tasks
        from workflows_app.runtime import schedules

        schedules.ensure_schedules()
        row = Schedule.objects.get(name=schedules.WEBHOOKS)
        assert (row.func, row.schedule_type, row.minutes) == (
            "workflows_app.tasks.sweep_webhooks",
            "I",
            1,
        )
        with patch.object(webhooks, "sweep_deliveries", return_value=3) as sweep:
            assert tasks.sweep_webhooks() == 3
        sweep.assert_called_once_with()
