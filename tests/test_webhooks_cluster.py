"""Status webhooks sent by a real qcluster (SQLite + the ORM broker): the outbox rows a start
and a decision write here reach a local receiver through the workers, in order, signed; a
503 is retried once the sweep finds the message due again."""

import base64

import pytest
from standardwebhooks.webhooks import Webhook

from tests.factories import make_definition, make_service, make_user
from tests.integration_helpers import (
    OK,
    Reply,
    ScriptedService,
    file_database,
    local_http_server,
    running_cluster,
    wait_until,
)
from workflows_app import runtime
from workflows_app.models import StepRun, Subscription, WebhookDelivery
from workflows_app.runtime import webhooks

SECRET = "whsec_" + base64.b64encode(b"a cluster test secret, 32 bytes.").decode()
REVIEW = {
    "id": "review",
    "steps": [{"id": "approve", "service": "approvalSvc"}, {"id": "notify", "service": "okSvc"}],
}


@pytest.mark.integration
def test_a_cluster_delivers_an_instances_messages_in_order_after_a_503(tmp_path, django_db_blocker):
    with local_http_server() as server, file_database(tmp_path, django_db_blocker) as env:
        receiver = ScriptedService(server, path="/hooks", replies=[Reply(503), OK])
        Subscription.objects.create(
            name="portalHook", url=receiver.url, secret=SECRET, events=["instance.updated"]
        )
        make_service("okSvc")
        make_service("approvalSvc", "human")
        make_user("rita", "plan-reviewers")
        instance, _ = runtime.start_instance(definition=make_definition(REVIEW), payload={})
        task = StepRun.objects.get(instance=instance, step_id="approve")
        runtime.complete_task(run_id=task.pk, result="approved", actor="user:rita")
        with running_cluster(env) as cluster:
            wait_until(lambda: receiver.received, timeout=30, what="the first attempt")

            def all_delivered():
                webhooks.sweep_deliveries()  # as the hms-webhooks schedule does every minute
                states = set(WebhookDelivery.objects.values_list("state", flat=True))
                return states == {WebhookDelivery.State.DELIVERED}

            wait_until(all_delivered, timeout=60, interval=1.0, what="every message delivered")
            output = cluster.output
        bodies = [r.json for r in receiver.received]
        assert [(b["status"], b["currentSteps"]) for b in bodies] == [
            ("running", ["approve"]),  # 503
            ("running", ["approve"]),
            ("running", ["notify"]),
            ("completed", []),
        ], output
        verifier = Webhook(SECRET)
        for request in receiver.received:
            headers = {k.lower(): v for k, v in request.headers.items()}
            verifier.verify(request.body, headers)
