"""GET /metrics (CONTRACT R2; docs/metrics.md): a seed flow's numbers, as Prometheus reads them.

The seed runs for real: validation over HTTP on a local server (one 503, then answers), a
review task that times out and escalates, a decision by the backup reviewer, the python
notification. The scrape is parsed with prometheus_client's own text parser.
"""

import json
import re
from datetime import timedelta
from pathlib import Path

from django.test import TestCase, override_settings
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import SEED, make_definition, make_service, make_token, make_user
from tests.integration_helpers import OK, LocalServerMixin, Reply, ScriptedService, StandInQueue
from workflows_app import runtime
from workflows_app.models import Heartbeat, StepRun
from workflows_app.queries import catalog

ROOT = Path(__file__).resolve().parent.parent
SCRAPE_QUERIES = 9  # one aggregate per family group (queries/metrics.py), however many rows


def scrape(client, **headers) -> dict[tuple[str, frozenset], float]:
    """{(sample name, labels): value} of one /metrics answer."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


class SeedFlowMetricsTests(LocalServerMixin, TestCase):
    def setUp(self):
        self.queue = StandInQueue(self)
        self.validation = ScriptedService(self.server, replies=[Reply(503), OK, OK])
        make_service("validationSvc", "http", url=self.validation.url, timeout_seconds=5)
        make_service("approvalSvc", "human")
        make_service("notificationSvc", "python", callable="workflows_app.builtin.notify_applicant")
        catalog.clear()
        self.definition = make_definition(SEED)

    def at_review(self):
        instance = self.queue.start(self.definition, {"applicant": "Ada", "address": "1 Main St"})
        self.queue.settle(instance)
        return StepRun.objects.get(instance=instance, step_id="approve")

    def run_seed_flow(self):
        """Two applications: one escalated and approved by the backup, one still waiting."""
        first = self.at_review()
        self.queue.tick(first.due_at + timedelta(seconds=1))  # escalates to backup-reviewers
        first.refresh_from_db()
        assert (first.assignee_group.name, first.escalation_level) == ("backup-reviewers", 1)
        make_user("bea", "backup-reviewers")
        self.queue.committed(
            runtime.complete_task, run_id=first.pk, result="approved", actor="user:bea"
        )
        self.queue.work()
        self.at_review()  # the second waits for plan-reviewers

    def test_a_seed_flow_shows_in_every_family(self):
        self.run_seed_flow()
        Heartbeat.objects.create(name="timer", last_tick=self.now() - timedelta(seconds=7))
        samples = scrape(self.client)
        wf = "building-permit"
        assert value(samples, "hms_instances_started_total", workflow=wf) == 2
        assert value(samples, "hms_instances_ended_total", workflow=wf, status="completed") == 1
        assert value(samples, "hms_instances_running", workflow=wf) == 1
        assert value(samples, "hms_escalations_total", workflow=wf, step="approve") == 1
        assert value(samples, "hms_tasks_open", group="plan-reviewers") == 1
        assert value(samples, "hms_tasks_overdue", group="plan-reviewers") == 0
        # Validation: the 503 was retried, then each application was validated.
        calls = {"service": "validationSvc"}
        assert value(samples, "hms_service_calls_total", outcome="retry", **calls) == 1
        assert value(samples, "hms_service_calls_total", outcome="done", **calls) == 2
        latency = "hms_service_call_duration_seconds_count"
        assert value(samples, latency, outcome="done", **calls) == 2
        assert (
            value(samples, latency.replace("_count", "_bucket"), le="+Inf", outcome="done", **calls)
            == 2
        )
        # Finished step runs: both validations, the one decision, the one notification.
        steps = "hms_step_duration_seconds_count"
        assert value(samples, steps, workflow=wf, step="validate") == 2
        assert value(samples, steps, workflow=wf, step="approve") == 1
        assert value(samples, steps, workflow=wf, step="notify") == 1
        assert (
            value(samples, "hms_step_duration_seconds_bucket", workflow=wf, step="notify", le="1.0")
            == 1
        )
        assert value(samples, "hms_queue_depth") == 0
        assert 7 <= value(samples, "hms_heartbeat_age_seconds", job="timer") < 60

    def test_an_overdue_task_is_counted_until_it_escalates(self):
        run = self.at_review()
        StepRun.objects.filter(pk=run.pk).update(due_at=self.now() - timedelta(minutes=1))
        samples = scrape(self.client)
        assert value(samples, "hms_tasks_overdue", group="plan-reviewers") == 1

    def test_a_scrape_costs_the_same_few_queries_however_many_instances(self):
        self.run_seed_flow()
        with self.assertNumQueries(SCRAPE_QUERIES):
            scrape(self.client)
        for _ in range(3):
            self.at_review()
        with self.assertNumQueries(SCRAPE_QUERIES):
            samples = scrape(self.client)
        assert value(samples, "hms_instances_started_total", workflow="building-permit") == 5

    def test_the_example_grafana_dashboard_uses_only_metrics_we_export(self):
        self.run_seed_flow()
        Heartbeat.objects.create(name="timer", last_tick=self.now())
        exported = {name for name, _ in scrape(self.client)}
        dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
        exprs = " ".join(t["expr"] for panel in dashboard["panels"] for t in panel["targets"])
        used = set(re.findall(r"hms_[a-z_]+", exprs))
        assert used and used <= exported, used - exported

    def now(self):
        from django.utils import timezone

        return timezone.now()


@override_settings(HMS_METRICS_ALLOW=[])
class MetricsAccessTests(TestCase):
    def test_without_a_token_from_an_address_not_allowed_the_answer_is_401(self):
        response = self.client.get("/metrics")
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"
        assert b"hms_" not in response.content

    def test_a_token_without_the_metrics_scope_is_refused_with_403(self):
        token = make_token("portal", scopes=["start"])
        response = self.client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 403

    def test_a_token_of_scope_metrics_reads_them(self):
        token = make_token("prometheus", scopes=["metrics"])
        samples = scrape(self.client, Authorization=f"Bearer {token}")
        assert ("hms_queue_depth", frozenset()) in samples

    @override_settings(HMS_METRICS_ALLOW=["10.0.0.0/8"])
    def test_an_allowed_address_reads_them_without_a_token(self):
        response = self.client.get("/metrics", REMOTE_ADDR="10.1.2.3")
        assert response.status_code == 200
        assert self.client.get("/metrics", REMOTE_ADDR="192.0.2.1").status_code == 401

    def test_only_get_is_allowed(self):
        token = make_token("prometheus", scopes=["metrics"])
        response = self.client.post("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 405
