"""The SQL budget per instance and per request (issue 8): a regression here fails `make test`.

Counts are data statements (SELECT, INSERT, UPDATE, DELETE) made by the engine in steady state
(process caches warm, task emails off); transaction control (BEGIN, SAVEPOINT, ...) is not
counted and the queue is patched out, so broker statements are not counted either
(docs/BENCHMARKS.md reports them separately). Each capture wraps only the calls a client, a
worker or a person makes, never the test's own look-ups.
"""

from unittest.mock import patch

import pytest
from django.db import connection
from django.test import TestCase, override_settings
from django.test.utils import CaptureQueriesContext

from tests.factories import (
    make_definition,
    make_seed_services,
    make_service,
    make_token,
    simple_workflow,
)
from workflows_app import runtime, tasks
from workflows_app.models import RunState, Status, StepRun
from workflows_app.web import rendered

DATA_VERBS = ("SELECT", "INSERT", "UPDATE", "DELETE")
THREE_PYTHON_STEPS = [
    {"id": "one", "service": "okSvc"},
    {"id": "two", "service": "okSvc"},
    {"id": "three", "service": "okSvc"},
]


def data_statements(queries: CaptureQueriesContext) -> list[str]:
    """The captured data statements (what a database does work for), in order."""
    return [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(DATA_VERBS)
    ]


@override_settings(HMS_NOTIFY_TASKS=False)
@pytest.mark.worker_path
class StatementsPerInstanceTests(TestCase):
    """Whole life of one instance on the worker path (HMS_INLINE_PYTHON_STEPS off: every step
    after a start or a decision goes through the queue): start, each worker pass, each
    person's decision. The default path, with no queue hop, is counted in test_inline.py."""

    def setUp(self):
        patcher = patch("workflows_app.runtime.queue.async_task")
        self.enqueue = patcher.start()
        self.addCleanup(patcher.stop)

    def count(self, call) -> int:
        with (
            CaptureQueriesContext(connection) as queries,
            self.captureOnCommitCallbacks(execute=True),
        ):
            call()
        return len(data_statements(queries))

    def life(self, definition) -> dict[str, int]:
        """Statements by phase for one instance, run to its end the way workers and people do."""
        phases: dict[str, int] = {}
        holder: dict = {}

        def start():
            holder["instance"], _ = runtime.start_instance(
                definition=definition, payload={"applicant": "Ada"}
            )

        phases["start"] = self.count(start)
        instance = holder["instance"]
        for _ in range(10):
            run = StepRun.objects.filter(
                instance=instance, state__in=[RunState.QUEUED, RunState.WAITING]
            ).first()
            if run is None:
                break
            if run.state == RunState.QUEUED:
                phases[run.step_id] = self.count(
                    lambda run=run: tasks.run_step(str(run.pk), run.attempts)
                )
            else:
                phases[run.step_id] = self.count(
                    lambda run=run: runtime.complete_task(
                        run_id=run.pk, result="approved", actor="user:rev"
                    )
                )
        instance.refresh_from_db()
        assert instance.status == Status.COMPLETED
        return phases

    def test_the_seed_shape_takes_seventeen_data_statements_in_steady_state(self):
        make_seed_services()
        definition = make_definition()
        self.life(definition)  # warms the per-process caches, as a running worker has them
        phases = self.life(definition)
        # A worker's claim bumps the instance's revision (its ETag) in a statement of its own:
        # +1 for each of validate and notify (docs/api.md "ETag").
        assert phases == {"start": 2, "validate": 6, "approve": 4, "notify": 5}
        assert sum(phases.values()) == 17

    def test_three_python_steps_take_thirteen_data_statements_and_one_queue_message(self):
        definition = simple_workflow("three", steps=THREE_PYTHON_STEPS)
        self.life(definition)
        self.enqueue.reset_mock()
        phases = self.life(definition)
        # Read and claim the first run (and bump the revision); per step route the instance
        # and close its run; open the next two runs already claimed (inline, no queue hop).
        assert phases == {"start": 2, "one": 11}
        assert self.enqueue.call_count == 1


class StatementsPerRequestTests(TestCase):
    """The API's hot paths, through the test client with a bearer token. Validation is an
    HTTP service here, so a start is the start alone (python steps that run in the request
    after a start are counted in test_inline.py)."""

    def setUp(self):
        make_seed_services("http")
        self.definition = make_definition()
        self.auth = {"HTTP_AUTHORIZATION": f"Bearer {make_token()}"}

    def request(self, method: str, path: str, **kwargs):
        with (
            CaptureQueriesContext(connection) as queries,
            patch("workflows_app.runtime.queue.async_task"),
        ):
            response = getattr(self.client, method)(path, **kwargs, **self.auth)
        return response, data_statements(queries)

    def start(self):
        body = {"workflowId": "building-permit", "payload": {"applicant": "Ada"}}
        return self.request(
            "post", "/api/workflows/start", data=body, content_type="application/json"
        )

    def test_start_takes_three_data_statements(self):
        self.start()  # warm caches
        response, statements = self.start()
        assert response.status_code == 201
        # The newest definition with the token's row (one query), the instance, its first run.
        assert len(statements) == 3, statements

    def test_status_takes_three_data_statements(self):
        response, _ = self.start()
        path = f"/api/workflows/{response.json()['instanceId']}/status"
        self.request("get", path)  # warm caches
        rendered.clear()  # a revision this process has not rendered yet
        response, statements = self.request("get", path)
        assert response.status_code == 200
        # The revision with the token (one query, web/conditional.py), the instance with its
        # runs, its events, its documents.
        assert len(statements) == 4, statements

    def test_a_status_read_again_unchanged_takes_one_data_statement(self):
        response, _ = self.start()
        path = f"/api/workflows/{response.json()['instanceId']}/status"
        first = self.request("get", path)[0]
        again, statements = self.request("get", path)
        # A portal polling without If-None-Match: the revision with the token, then the
        # document this process built for the same ETag (web/rendered.py).
        assert len(statements) == 1, statements
        assert (again.status_code, again.content) == (200, first.content)
        assert again["ETag"] == first["ETag"]

    def test_an_unchanged_status_poll_takes_one_data_statement(self):
        response, _ = self.start()
        path = f"/api/workflows/{response.json()['instanceId']}/status"
        tag = self.request("get", path)[0]["ETag"]
        response, statements = self.request("get", path, HTTP_IF_NONE_MATCH=tag)
        assert response.status_code == 304
        # The instance's revision with the token's row (web/conditional.py).
        assert len(statements) == 1, statements

    def test_a_tracker_poll_takes_one_statement_unchanged_and_two_after_a_change(self):
        from workflows_app.models import WorkflowInstance

        response, _ = self.start()
        instance = WorkflowInstance.objects.get(uuid=response.json()["instanceId"])
        htmx = {"HTTP_HX_REQUEST": "true"}
        self.request("get", instance.tracker_url, **htmx)  # warm caches
        response, statements = self.request("get", instance.tracker_url, **htmx)
        assert response.status_code == 200
        # The instance with its runs (one join), the step's typical duration (cached after).
        assert len(statements) <= 2, statements
        unchanged = {**htmx, "HTTP_IF_NONE_MATCH": response["ETag"]}
        response, statements = self.request("get", instance.tracker_url, **unchanged)
        assert (response.status_code, len(statements)) == (304, 1), statements


SEQUENTIAL_REVIEWS = {
    "id": "sequential-reviews",
    "steps": [
        {"id": "validate", "service": "okSvc"},
        {"id": "zoning-review", "service": "approvalSvc"},
        {"id": "fire-review", "service": "approvalSvc"},
        {"id": "notify", "service": "okSvc"},
    ],
}
PARALLEL_REVIEWS = {
    "id": "parallel-reviews",
    "steps": [
        {"id": "validate", "service": "okSvc"},
        {
            "id": "reviews",
            "parallel": [
                {"id": "zoning", "steps": [{"id": "zoning-review", "service": "approvalSvc"}]},
                {"id": "fire", "steps": [{"id": "fire-review", "service": "approvalSvc"}]},
            ],
        },
        {"id": "notify", "service": "okSvc"},
    ],
}


@override_settings(HMS_NOTIFY_TASKS=False)
class ParallelReviewsTests(TestCase):
    """A seed-shaped workflow with two human reviews, one after the other or in parallel
    (docs/parallel.md), on the default path: the start runs validate in the caller, each
    decision the steps after it. The parallel one pays for its join: the parallel step's own
    run, the tree's lock and the read of the open runs in a branch."""

    def setUp(self):
        patcher = patch("workflows_app.runtime.queue.async_task")
        patcher.start()
        self.addCleanup(patcher.stop)
        make_service("okSvc")
        make_service("approvalSvc", "human")

    def count(self, call) -> int:
        with (
            CaptureQueriesContext(connection) as queries,
            self.captureOnCommitCallbacks(execute=True),
        ):
            call()
        return len(data_statements(queries))

    def life(self, document) -> dict[str, int]:
        definition = make_definition(document)
        holder: dict = {}

        def begin():
            holder["instance"], _ = runtime.start_instance(definition=definition, payload={})

        phases = {"start": self.count(begin)}
        for step in ("zoning-review", "fire-review"):
            run = StepRun.objects.get(instance=holder["instance"], step_id=step)
            phases[step] = self.count(
                lambda run=run: runtime.complete_task(
                    run_id=run.pk, result="approved", actor="user:rev"
                )
            )
        holder["instance"].refresh_from_db()
        assert holder["instance"].status == Status.COMPLETED
        return phases

    def test_two_parallel_reviews_cost_at_most_one_and_a_half_times_the_sequential_ones(self):
        self.life(SEQUENTIAL_REVIEWS), self.life(PARALLEL_REVIEWS)  # warm the caches
        sequential, parallel = self.life(SEQUENTIAL_REVIEWS), self.life(PARALLEL_REVIEWS)
        print(f"statements: sequential {sequential}, parallel {parallel}")
        assert sum(parallel.values()) <= 1.5 * sum(sequential.values())
        assert (sum(sequential.values()), sum(parallel.values())) == (15, 21)
