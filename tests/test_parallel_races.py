"""Joins under concurrent completions, on PostgreSQL and on an SQLite file: two branches
ending at the same moment in two threads (each its own connection and transaction) fire the
join exactly once.

Each race runs HMS_RACE_ROUNDS times (200 by default, 40 on SQLite) and asserts what each
side was told.
"""

import os
from collections import Counter

from django.db import connection

from tests.factories import make_definition, make_service, start
from tests.test_concurrency import SharedDatabaseTestCase, race
from workflows_app import runtime
from workflows_app.engine import TransitionNotAllowed
from workflows_app.models import RunState, Status, StepRun, WorkflowInstance


def rounds() -> int:
    """HMS_RACE_ROUNDS, else 200 on PostgreSQL and 40 on SQLite, whose writers take turns
    (each round costs more there, and the orderings it can produce are fewer)."""
    return int(os.environ.get("HMS_RACE_ROUNDS", 200 if connection.vendor == "postgresql" else 40))


def permit(join: str, zoning: dict, fire: dict) -> dict:
    return {
        "id": f"permit-{join}",
        "steps": [
            {"id": "validate", "service": "okSvc"},
            {
                "id": "reviews",
                "join": join,
                "parallel": [
                    {"id": "zoning", "steps": [zoning]},
                    {"id": "fire", "steps": [fire]},
                ],
            },
            {"id": "notify", "service": "okSvc"},
        ],
    }


class JoinRaceTests(SharedDatabaseTestCase):
    def setUp(self):
        make_service("okSvc")
        make_service("approvalSvc", "human")

    def tasks_of(self, instance) -> tuple[StepRun, StepRun]:
        waiting = StepRun.objects.filter(instance=instance, state=RunState.WAITING)
        by_step = {run.step_id: run for run in waiting}
        return by_step["zoning-review"], by_step["fire-review"]

    def complete_both(self, instance) -> list[object]:
        zoning, fire = self.tasks_of(instance)
        return race(
            lambda: runtime.complete_task(run_id=zoning.pk, result="approved", actor="user:z"),
            lambda: runtime.complete_task(run_id=fire.pk, result="approved", actor="user:f"),
        )

    def assert_joined_once(self, instance) -> None:
        instance.refresh_from_db()
        runs = Counter(StepRun.objects.filter(instance=instance).values_list("step_id", "state"))
        assert runs[("reviews", RunState.SUCCEEDED)] == 1
        assert runs[("notify", RunState.SUCCEEDED)] == 1
        assert sum(n for (step, _), n in runs.items() if step == "notify") == 1
        assert instance.status == Status.COMPLETED

    def test_join_all_fires_once_when_both_branches_end_at_the_same_moment(self):
        definition = make_definition(
            permit(
                "all",
                {"id": "zoning-review", "service": "approvalSvc"},
                {"id": "fire-review", "service": "approvalSvc"},
            )
        )
        for _ in range(rounds()):
            instance = start(definition)
            results = self.complete_both(instance)
            # Both reviewers' decisions count: each side was told it succeeded.
            assert all(isinstance(r, WorkflowInstance) for r in results), results
            self.assert_joined_once(instance)
            zoning, fire = (
                StepRun.objects.get(instance=instance, step_id=s)
                for s in ("zoning-review", "fire-review")
            )
            assert (zoning.state, fire.state) == (RunState.SUCCEEDED, RunState.SUCCEEDED)
            assert set(instance.context) >= {"zoning-review", "fire-review"}

    def test_join_any_lets_exactly_one_branch_win(self):
        definition = make_definition(
            permit(
                "any",
                {"id": "zoning-review", "service": "approvalSvc"},
                {"id": "fire-review", "service": "approvalSvc"},
            )
        )
        winners: Counter = Counter()
        for _ in range(rounds()):
            instance = start(definition)
            results = self.complete_both(instance)
            won = [r for r in results if isinstance(r, WorkflowInstance)]
            lost = [r for r in results if isinstance(r, TransitionNotAllowed)]
            assert (len(won), len(lost)) == (1, 1), results
            assert "was cancelled: branch '" in str(lost[0]) and "finished first" in str(lost[0])
            self.assert_joined_once(instance)
            states = dict(
                StepRun.objects.filter(
                    instance=instance, step_id__in=["zoning-review", "fire-review"]
                ).values_list("step_id", "state")
            )
            assert sorted(states.values()) == [RunState.CANCELLED, RunState.SUCCEEDED]
            winners[next(s for s, state in states.items() if state == RunState.SUCCEEDED)] += 1
        print(f"join any: the branch that won, over {rounds()} rounds: {dict(winners)}")

    def test_two_children_ending_at_once_fire_their_parents_join_once(self):
        make_definition({"id": "check", "steps": [{"id": "look", "service": "approvalSvc"}]})
        definition = make_definition(
            permit(
                "all",
                {"id": "zoning-review", "workflow": "check"},
                {"id": "fire-review", "workflow": "check"},
            )
        )
        for _ in range(rounds()):
            instance = start(definition)
            children = WorkflowInstance.objects.filter(root=instance)
            looks = list(StepRun.objects.filter(instance__in=children, step_id="look"))
            assert len(looks) == 2
            results = race(
                *[
                    lambda run=run: runtime.complete_task(run_id=run.pk, result="ok")
                    for run in looks
                ]
            )
            assert all(isinstance(r, WorkflowInstance) for r in results), results
            assert set(children.values_list("status", flat=True)) == {Status.COMPLETED}
            self.assert_joined_once(instance)
