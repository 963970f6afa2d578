"""The runtime's compiled statements (runtime/statements.py) do what the ORM's
`filter().update()` and `save()` do, row for row, on every shape they meet."""

import pytest
from django.db import connection
from django.db.models import F
from django.test import TestCase
from django.test.utils import CaptureQueriesContext

from tests.browser.scenarios import at_review, permit_workflow
from tests.factories import make_user
from workflows_app.models import Event, RunState, StepRun, Subscription, WorkflowInstance
from workflows_app.runtime import statements


class UpdateTests(TestCase):
    def setUp(self):
        self.instance = at_review(permit_workflow())
        self.run = StepRun.objects.get(instance=self.instance, state=RunState.WAITING)

    def test_a_guarded_update_changes_the_row_it_names_only_while_it_is_as_seen(self):
        where = {"pk": self.run.pk, "state": RunState.WAITING, "claimed_by_id": None}
        rita = make_user("rita")
        assert statements.update(StepRun, where, {"claimed_by_id": rita.pk}) == 1
        assert StepRun.objects.get(pk=self.run.pk).claimed_by_id == rita.pk
        # The same shape again: None is compared with IS NULL, so the claimed row is left alone.
        assert statements.update(StepRun, where, {"claimed_by_id": rita.pk}) == 0
        where_claimed = {**where, "claimed_by_id": rita.pk}
        assert statements.update(StepRun, where_claimed, {"claimed_by_id": None}) == 1
        assert StepRun.objects.get(pk=self.run.pk).claimed_by_id is None

    def test_expressions_json_and_times_are_written_as_the_orm_writes_them(self):
        before = WorkflowInstance.objects.get(pk=self.instance.pk)
        changes = {"context": {"é": [1, None]}, "revision": F("revision") + 2}
        assert statements.update(WorkflowInstance, {"pk": self.instance.pk}, changes) == 1
        after = WorkflowInstance.objects.get(pk=self.instance.pk)
        assert (after.context, after.revision) == ({"é": [1, None]}, before.revision + 2)
        moment = after.created_at
        statements.update(StepRun, {"pk": self.run.pk}, {"due_at": moment})
        assert StepRun.objects.get(pk=self.run.pk).due_at == moment

    def test_other_lookups_go_to_the_orm(self):
        changed = statements.update(
            StepRun,
            {"instance_id": self.instance.pk, "state__in": [RunState.WAITING]},
            {"note": "x"},
        )
        assert changed == 1

    def test_each_update_is_one_statement(self):
        statements.update(StepRun, {"pk": self.run.pk}, {"note": "warm"})
        with CaptureQueriesContext(connection) as queries:
            statements.update(StepRun, {"pk": self.run.pk}, {"note": "again"})
        assert len(queries) == 1 and queries[0]["sql"].startswith("UPDATE")


class InsertTests(TestCase):
    def setUp(self):
        self.instance = at_review(permit_workflow())

    def test_a_new_run_reads_back_its_database_defaults(self):
        run = StepRun(instance=self.instance, step_id="extra", state=RunState.SUCCEEDED)
        statements.insert(run)
        stored = StepRun.objects.get(pk=run.pk)
        assert (run.lane, stored.lane) == (stored.lane, "")
        assert not run._state.adding and run.created_at == stored.created_at

    def test_an_instance_gets_its_auto_primary_key_and_revision(self):
        twin = WorkflowInstance(
            definition=self.instance.definition, case_number="BP-2026-TWIN01", payload={"a": 1}
        )
        statements.insert(twin)
        stored = WorkflowInstance.objects.get(pk=twin.pk)
        assert (stored.case_number, stored.payload, twin.revision) == (
            "BP-2026-TWIN01",
            {"a": 1},
            stored.revision,
        )
        assert twin.legal_hold is False

    def test_events_keep_their_detail_and_stay_append_only(self):
        event = Event(instance=self.instance, type=Event.Type.REMINDED, detail={"k": "v"})
        statements.insert(event)
        assert Event.objects.get(pk=event.pk).detail == {"k": "v"}
        with pytest.raises(Exception, match="never changed"):
            event.save()

    def test_a_model_with_save_signals_takes_the_orms_path(self):
        from workflows_app.queries import subscriptions

        subscriptions.active_subscriptions()  # cached: only the save signal forgets it
        subscription = Subscription(name="portal", url="https://portal.example/hook", secret="s")
        statements.insert(subscription)
        assert Subscription.objects.filter(pk=subscription.pk).exists()
        assert subscription.pk in [s.pk for s in subscriptions.active_subscriptions()]


class AddTests(TestCase):
    def test_an_amount_added_is_a_parameter_not_a_new_shape(self):
        from workflows_app.models import ServiceCallCount
        from workflows_app.runtime import callcounts

        for seconds in (0.001, 0.002, 0.0015):  # one latency bucket
            callcounts.count_call(service="svc", outcome="done", seconds=seconds)
        row = ServiceCallCount.objects.get(service="svc", outcome="done")
        assert (row.count, row.seconds) == (3, pytest.approx(0.0045))
        shapes = [key for key in statements._PLANS if key[0] is ServiceCallCount]
        assert len(shapes) == 1

    def test_past_the_limit_of_shapes_new_ones_go_to_the_orm(self):
        instance = at_review(permit_workflow())
        saved = dict(statements._PLANS)
        statements._PLANS.update({("filler", n): ("", ()) for n in range(statements.MAX_SHAPES)})
        try:
            changed = statements.update(WorkflowInstance, {"pk": instance.pk}, {"error": {"x": 1}})
            assert changed == 1 and len(statements._PLANS) == statements.MAX_SHAPES + len(saved)
        finally:
            statements._PLANS.clear()
            statements._PLANS.update(saved)
        assert WorkflowInstance.objects.get(pk=instance.pk).error == {"x": 1}
