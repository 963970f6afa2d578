"""Queries compiled once per process (queries/prepared.py) answer exactly what their
querysets answer, for every argument, and refuse a shape whose parameters they cannot place."""

from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext

from tests.browser.scenarios import at_review, permit_workflow, review
from tests.factories import make_token
from workflows_app.models import ApiToken, CaseDocument, StepRun, WorkflowInstance
from workflows_app.queries import catalog, progress
from workflows_app.queries.prepared import Prepared


class PreparedTests(TestCase):
    def test_runs_with_their_instance_and_assignees_are_what_the_orm_reads(self):
        waiting, done = at_review(permit_workflow()), review(at_review(permit_workflow()))
        for instance in (waiting, done):
            found, runs = progress.instance_with_runs(instance.uuid)
            expected = list(
                StepRun.objects.filter(instance=instance)
                .select_related("instance", "assignee_group", "assignee_user")
                .order_by("created_at", "pk")
            )
            assert found == instance
            assert [(r.pk, r.state, r.output, r.due_at) for r in runs] == [
                (r.pk, r.state, r.output, r.due_at) for r in expected
            ]
            assert [r.assignee_group for r in runs] == [r.assignee_group for r in expected]
            with self.assertNumQueries(0):  # the related rows came with the one query
                [(r.instance.payload, r.assignee_group, r.assignee_user) for r in runs]

    def test_events_and_documents_of_each_instance_are_its_own(self):
        first, second = at_review(permit_workflow()), review(at_review(permit_workflow()))
        for instance in (first, second):
            assert progress.events_of(instance) == list(instance.events.order_by("pk"))
        document = CaseDocument.objects.create(
            instance=second, name="plan.pdf", size=3, content_type="application/pdf", path="p"
        )
        assert (progress.documents_of(first), progress.documents_of(second)) == ([], [document])

    def test_the_newest_version_and_the_token_are_read_in_one_statement(self):
        definition = permit_workflow()
        raw = make_token()
        catalog.latest_for_start(definition.key, token_hash=None)  # the version, now cached
        with CaptureQueriesContext(connection) as queries:
            found, token = catalog.latest_for_start(definition.key, token_hash=ApiToken.hash(raw))
        assert (found.pk, token.pk) == (definition.pk, ApiToken.objects.get().pk)
        assert len(queries) == 1
        ApiToken.objects.update(revoked_at="2026-01-01T00:00:00Z")
        _, revoked = catalog.latest_for_start(definition.key, token_hash=ApiToken.hash(raw))
        assert revoked.revoked_at is not None
        assert catalog.latest_for_start("no-such-workflow", token_hash=None) == (None, None)
        assert catalog.latest_for_start(definition.key, token_hash="unknown")[1] is None

    def test_a_shape_whose_parameters_it_cannot_place_is_left_to_the_orm_with_a_warning(self):
        instance = at_review(permit_workflow())
        wrong = Prepared(
            lambda key: WorkflowInstance.objects.filter(case_number=key, status="running"),
            prepare=lambda _, key: [key],
            sample=("BP-1",),
        )
        with self.assertLogs("workflows_app.queries.prepared", "WARNING") as logs:
            assert wrong(instance.case_number) == [instance]
        assert "parameters" in logs.output[0]
        assert wrong("BP-2") == []  # still the ORM's answer, no second warning needed

    def test_a_prefetching_shape_is_left_to_the_orm(self):
        instance = at_review(permit_workflow())
        prefetching = Prepared(
            lambda pk: WorkflowInstance.objects.filter(pk=pk).prefetch_related("runs"),
            prepare=lambda _, pk: [pk],
            sample=(1,),
        )
        runs = StepRun.objects.filter(instance=instance).count()
        with self.assertLogs("workflows_app.queries.prepared", "WARNING"):
            [found] = prefetching(instance.pk)
        with self.assertNumQueries(0):  # the runs came prefetched, as the queryset asks
            assert len(found.runs.all()) == runs
