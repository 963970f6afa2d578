"""workflows/building-permit-full.yaml over real HTTP: the demo validation finds the site plan
missing, the applicant is asked for it through the emailed link, validation runs again."""

import re
import threading
from pathlib import Path

from django.core import mail
from django.test import TestCase

from tests.integration_helpers import StandInQueue
from tests.requests_to_applicant import pdf
from workflows_app import runtime
from workflows_app.authoring import publishing
from workflows_app.management import demo_server
from workflows_app.models import RunState, Service, StepRun, WorkflowDefinition, WorkflowInstance
from workflows_app.queries import catalog

ROOT = Path(__file__).resolve().parents[1]


class SitePlanExampleTests(TestCase):
    def setUp(self):
        demo = demo_server.serve(port=0)
        threading.Thread(target=demo.serve_forever, daemon=True).start()
        self.addCleanup(demo.server_close)
        self.addCleanup(demo.shutdown)
        publishing.load_files(
            [
                ROOT / "workflows" / "services.yaml",
                ROOT / "workflows" / "site-inspection.yaml",
                ROOT / "workflows" / "building-permit-full.yaml",
            ]
        )
        url = f"http://127.0.0.1:{demo.server_address[1]}/validate"
        Service.objects.filter(name="validationSvc").update(url=url)
        catalog.clear()
        self.queue = StandInQueue(self)

    def test_a_missing_site_plan_is_asked_for_and_validation_runs_again(self):
        definition = WorkflowDefinition.objects.get(key="building-permit-full")
        payload = {"applicant": "Ada", "address": "1 Main St", "email": "ada@example.org"}
        instance = self.queue.start(definition, payload)
        self.queue.work()
        request = StepRun.objects.get(instance=instance, state=RunState.WAITING)
        assert request.step_id == "upload-site-plan"
        [email] = [m for m in mail.outbox if m.to == ["ada@example.org"]]
        link = re.search(r"https?://[^/\s]+(/track/\S+/respond/\S+/)", email.body).group(1)

        response = self.queue.committed(self.client.post, link, {"sitePlan": pdf()})
        assert response.status_code == 302
        self.queue.work()

        instance.refresh_from_db()
        runs = StepRun.objects.filter(instance=instance).order_by("created_at")
        assert [(r.step_id, r.result) for r in runs] == [
            ("validate", "incomplete"),
            ("upload-site-plan", "submitted"),
            ("validate", "ok"),
            ("reviews", ""),
            ("zoning-review", ""),
            ("fire-review", ""),
        ]
        assert instance.current_step == "reviews"
        assert instance.awaiting_applicant_since is None and instance.deadline_at is not None

    def test_the_parallel_reviews_and_the_site_inspection_run_to_the_end(self):
        definition = WorkflowDefinition.objects.get(key="building-permit-full")
        payload = {"applicant": "Ada", "address": "1 Main St", "sitePlan": "plan.pdf"}
        instance = self.queue.start(definition, payload)
        self.queue.work()
        for step in ("fire-review", "zoning-review"):
            task = StepRun.objects.get(instance=instance, step_id=step, state=RunState.WAITING)
            self.queue.committed(
                runtime.complete_task, run_id=task.pk, result="approved", actor="user:r"
            )
            self.queue.work()
        child = WorkflowInstance.objects.get(parent_run__instance=instance)
        assert child.definition.key == "site-inspection" and child.payload == payload
        visit = StepRun.objects.get(instance=child, step_id="visit", state=RunState.WAITING)
        self.queue.committed(runtime.complete_task, run_id=visit.pk, result="approved")
        self.queue.work()
        child.refresh_from_db()
        instance.refresh_from_db()
        assert (child.status, instance.status) == ("completed", "completed")
        results = dict(StepRun.objects.filter(instance=instance).values_list("step_id", "result"))
        assert (results["inspection"], results["reviews"], results["notify"]) == (
            "ok",
            "ok",
            "skipped",
        )
