"""Races around a request to the applicant (PostgreSQL, and an SQLite file): two answers at once (a double click,
two tabs), and an answer racing the lapse. Exactly one transition; no document left over."""

from datetime import timedelta
from pathlib import Path

from django.conf import settings

from tests.factories import start
from tests.requests_to_applicant import pdf, request_workflow
from tests.test_concurrency import REFUSALS, SharedDatabaseTestCase, race
from workflows_app import runtime
from workflows_app.models import CaseDocument, Event, RunState, StepRun, WorkflowInstance


class RequestRaceTests(SharedDatabaseTestCase):
    def setUp(self):
        self.definition = request_workflow()

    def waiting(self) -> StepRun:
        instance = start(self.definition, {"applicant": "Ada"})
        return StepRun.objects.select_related("instance").get(
            instance=instance, state=RunState.WAITING
        )

    def answer(self, run_id, name):
        run = StepRun.objects.select_related("instance").get(pk=run_id)
        uploads = {"sitePlan": pdf(name)}
        return runtime.answer_request(run=run, data={}, uploads=uploads, actor="applicant")

    def test_two_answers_at_once_complete_the_request_once_and_keep_one_document(self):
        for round_ in range(5):
            run = self.waiting()
            results = race(
                lambda run=run: self.answer(run.pk, "a.pdf"),
                lambda run=run: self.answer(run.pk, "b.pdf"),
            )
            winners = [r for r in results if isinstance(r, WorkflowInstance)]
            losers = [r for r in results if isinstance(r, REFUSALS)]
            assert (len(winners), len(losers)) == (1, 1), (round_, results)
            documents = CaseDocument.objects.filter(instance_id=run.instance_id)
            assert documents.count() == 1
            assert (
                StepRun.objects.filter(instance_id=run.instance_id, step_id="review").count() == 1
            )
        root = Path(settings.STORAGES["documents"]["OPTIONS"]["location"])
        assert len([p for p in root.rglob("*") if p.is_file()]) == CaseDocument.objects.count()

    def test_an_answer_racing_the_lapse_makes_one_transition(self):
        for _ in range(5):
            run = self.waiting()
            later = run.due_at + timedelta(seconds=1)
            race(
                lambda run=run: self.answer(run.pk, "a.pdf"),
                lambda later=later: runtime.process_due(now=later),
            )
            instance = WorkflowInstance.objects.get(pk=run.instance_id)
            run.refresh_from_db()
            assert (instance.status, run.result) in {
                ("running", "submitted"),
                ("rejected", "timeout"),
            }
            assert instance.awaiting_applicant_since is None
            documents = CaseDocument.objects.filter(instance_id=run.instance_id).count()
            assert documents == (1 if run.result == "submitted" else 0)
            assert Event.objects.filter(run=run, type=Event.Type.TIMED_OUT).count() == (
                1 if run.result == "timeout" else 0
            )
