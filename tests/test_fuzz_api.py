"""Schemathesis fuzzes the JSON API through its own OpenAPI document, on the WSGI app.

Every operation gets generated requests, valid and invalid, from four callers (a token with
every scope, a start-only token, a revoked token, anonymous), with real instance and task ids
mixed in; a stateful run chains start -> status -> complete/cancel/retry through OpenAPI links. Every answer must be JSON, documented, valid against the document's
schema, and never a 5xx. FUZZ_EXAMPLES=500 runs it bigger (see docs/security.md).
"""

import copy
import json
import os
from contextlib import contextmanager
from pathlib import Path

import hypothesis.strategies as st
import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from werkzeug.test import Client as WsgiClient

from hms_site.wsgi import application
from tests.factories import make_token, simple_workflow, start
from workflows_app import runtime
from workflows_app.authoring import publishing
from workflows_app.models import ApiToken, RunState, StepRun
from workflows_app.queries import catalog
from workflows_app.web.openapi import OPENAPI

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))
STATEFUL_EXAMPLES = max(5, EXAMPLES // 3)
# Every operation but the document itself, which schemathesis leaves out.
OPERATIONS = [
    (path, method.upper())
    for path, methods in OPENAPI["paths"].items()
    for method in methods
    if path != "/api/openapi.json"
]
WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # no example database: -p no:cacheprovider runs stay read-only
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)

# Real ids and keys the generators mix in; filled by the `world` fixture, read while drawing.
KNOWN: dict[str, list[str]] = {"instanceId": [], "taskId": [], "workflowId": []}

# Links the stateful run follows; added only where the served document has none of its own.
LINKS = {
    ("/api/workflows/start", "post", "201"): {
        "status": ("getStatus", {"instanceId": "$response.body#/instanceId"}),
        "cancel": ("cancelInstance", {"instanceId": "$response.body#/instanceId"}),
        "retry": ("retryInstance", {"instanceId": "$response.body#/instanceId"}),
    },
    ("/api/workflows/{instanceId}/status", "get", "200"): {
        "complete": ("completeTask", {"taskId": "$response.body#/currentTask/taskId"}),
        "cancel": ("cancelInstance", {"instanceId": "$response.body#/instanceId"}),
    },
    ("/api/workflows/{instanceId}/cancel", "post", "200"): {
        "retry": ("retryInstance", {"instanceId": "$response.body#/instanceId"}),
        "status": ("getStatus", {"instanceId": "$response.body#/instanceId"}),
    },
}


def document_with_links(document: dict) -> dict:
    """The served OpenAPI document, with the links above where it declares none."""
    document = copy.deepcopy(document)
    for (path, method, code), links in LINKS.items():
        response = document["paths"][path][method]["responses"][code]
        if response.get("links"):
            continue
        response["links"] = {
            name: {"operationId": operation, "parameters": parameters}
            for name, (operation, parameters) in links.items()
        }
    return document


def served_document() -> dict:
    """The document as the WSGI app serves it (Django's test client would reconnect the
    connection-closing signal that `wsgi_in_test_transaction` took away)."""
    return json.loads(WsgiClient(application).get("/api/openapi.json").get_data())


@contextmanager
def rolled_back():
    """Undo what one example wrote, so that every example starts from the same world and
    Hypothesis can replay and shrink it."""
    savepoint = transaction.savepoint_create()
    try:
        yield
    finally:
        transaction.savepoint_rollback(savepoint)


@pytest.fixture
def wsgi_in_test_transaction():
    """Call the WSGI app directly, as Django's test client does, without closing the test's
    connection at the end of each request (it would end the test transaction on PostgreSQL)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(db, wsgi_in_test_transaction):
    """The repo's example workflows, instances in every state, and headers of four callers."""
    publishing.load_files(sorted(WORKFLOWS.glob("*.*")))
    review = simple_workflow("review", [{"id": "decide", "service": "approvalSvc"}])
    failing = simple_workflow("failing", [{"id": "one", "service": "okSvc", "on": {"ok": "fail"}}])
    automated = catalog.latest_definition("address-change")
    instances = [start(review) for _ in range(3)]
    # python steps run in the caller: these two are failed and completed once started
    instances += [start(failing), start(automated, {"applicant": "A", "address": "B"})]
    runtime.cancel_instance(instance_id=instances[0].pk, reason="fuzzing")
    KNOWN["instanceId"][:] = [str(instance.uuid) for instance in instances]
    KNOWN["taskId"][:] = [str(run.pk) for run in StepRun.objects.filter(state=RunState.WAITING)]
    KNOWN["workflowId"][:] = ["review", "address-change", "building-permit", "failing"]
    _, raw_revoked = ApiToken.issue("revoked", revoked_at=timezone.now())
    tokens = {
        "every-scope": make_token("fuzzer"),
        "start-only": make_token("portal", scopes=["start"]),
        "revoked": raw_revoked,
    }
    callers = {name: {"Authorization": f"Bearer {raw}"} for name, raw in tokens.items()}
    return {**callers, "anonymous": {}}


def load_schema(world):
    schema = schemathesis.openapi.from_dict(document_with_links(served_document()))
    schema.app = application
    schema.location = "/api/openapi.json"

    @schema.hook
    def flatmap_path_parameters(context, path_parameters):
        """Most ids are real ones, so that the fuzzer reaches past 404."""
        choices = [path_parameters]
        for name in path_parameters or {}:
            choices += [{**path_parameters, name: known} for known in KNOWN.get(name, [])]
        return st.sampled_from(choices)

    @schema.hook
    def flatmap_body(context, body):
        """Start bodies name a published workflow most of the time."""
        if not (isinstance(body, dict) and isinstance(body.get("workflowId"), str)):
            return st.just(body)
        keys = KNOWN["workflowId"]
        return st.sampled_from([body] + [{**body, "workflowId": key} for key in keys])

    return schema


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_no_generated_request_gets_a_server_error_or_an_undocumented_answer(path, method, world):
    operation = load_schema(world)[path][method]

    valid_or_not = st.one_of(*(operation.as_strategy(mode) for mode in GenerationMode))

    @FUZZ_SETTINGS
    @given(case=valid_or_not, caller=st.sampled_from(sorted(world)))
    def call(case, caller):
        with rolled_back():
            case.call_and_validate(headers=world[caller], checks=CHECKS)

    call()


def test_chains_of_start_status_complete_cancel_retry_keep_to_the_contract(world):
    machine = load_schema(world).as_state_machine()

    class Fuzzer(machine):
        def setup(self):
            self.savepoint = transaction.savepoint_create()

        def teardown(self):
            transaction.savepoint_rollback(self.savepoint)

        def get_call_kwargs(self, case):
            return {"headers": world["every-scope"]}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS)

    Fuzzer.run(
        settings=settings(FUZZ_SETTINGS, max_examples=STATEFUL_EXAMPLES, stateful_step_count=6)
    )
