"""The HTTP API of CONTRACT §3, through Django's test client.

Every call goes through `ApiCase.call`, which also checks the answer against the OpenAPI
document: JSON always, the status documented for that operation, the body valid against the
documented schema. So the document cannot drift from what the tests observe.
"""

import json
from datetime import datetime, timedelta
from unittest.mock import patch

from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest
from django.db import connection
from django.test import TestCase
from django.test.client import FakePayload
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone
from jsonschema import Draft202012Validator

from tests.factories import (
    http_workflow,
    make_definition,
    make_seed_services,
    make_service,
    make_token,
    run_queued,
    simple_workflow,
    start,
)
from workflows_app import runtime
from workflows_app.models import ApiToken, Event, RunState, StepRun, WorkflowInstance
from workflows_app.web import rendered
from workflows_app.web.openapi import OPENAPI

MiB = 1024 * 1024


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def openapi_path(route: str) -> str:
    """'api/workflows/<str:instance_id>/status' -> '/api/workflows/{instanceId}/status'."""
    parts = []
    for part in route.split("/"):
        if part.startswith("<"):
            name = part.strip("<>").partition(":")[2] or part.strip("<>")
            head, *rest = name.split("_")
            part = "{" + head + "".join(word.title() for word in rest) + "}"
        parts.append(part)
    return "/" + "/".join(parts)


def api_routes(patterns=None, prefix: str = "") -> set[str]:
    """Every named route under /api/ in the URLconf, in OpenAPI's spelling."""
    found = set()
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            found |= api_routes(entry.url_patterns, route)
        elif isinstance(entry, URLPattern) and route.startswith("api/") and entry.name:
            found.add(openapi_path(route))
    return found


class ApiCase(TestCase):
    """Calls the API and checks each answer against the OpenAPI document."""

    def call(self, method, path, body=None, *, token=None, headers=None, raw=None, **extra):
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (json.dumps(body) if body is not None else "")
        extra.setdefault("content_type", "application/json")
        response = self.client.generic(method, path, data, headers=headers, **extra)
        self.check_documented(method, path, response)
        return response

    def post(self, path, body=None, **kwargs):
        return self.call("POST", path, body, **kwargs)

    def get(self, path, **kwargs):
        return self.call("GET", path, **kwargs)

    def check_documented(self, method, path, response):
        assert response["Content-Type"] == "application/json", response.content[:200]
        body = json.loads(response.content)
        operation = _operation(method, path)
        if operation is None:  # unknown path or method: only the error shape is promised
            _validate(body, {"$ref": "#/components/schemas/Error"})
            return
        answers = operation["responses"]
        assert str(response.status_code) in answers, (
            f"{method} {path} answered {response.status_code}, undocumented in openapi.py"
        )
        schema = answers[str(response.status_code)]["content"]["application/json"]["schema"]
        _validate(body, schema)


def _operation(method: str, path: str) -> dict | None:
    match = resolve(path)
    if not match.route or not match.url_name:
        return None
    return OPENAPI["paths"].get(openapi_path(match.route), {}).get(method.lower())


def _validate(body, schema) -> None:
    validator = Draft202012Validator({**schema, "components": OPENAPI["components"]})
    problems = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
    assert not problems, problems


START = "/api/workflows/start"


def status_url(instance) -> str:
    return f"/api/workflows/{instance.uuid}/status"


def complete_url(run) -> str:
    return f"/api/tasks/{run.pk}/complete"


class StartTests(ApiCase):
    def setUp(self):
        make_seed_services()
        self.definition = make_definition()
        self.token = make_token()

    def test_start_answers_201_with_the_new_instance(self):
        response = self.post(
            START, {"workflowId": "building-permit", "payload": {"a": 1}}, token=self.token
        )
        instance = WorkflowInstance.objects.get()
        year = timezone.localdate().year
        assert response.status_code == 201
        assert response.json() == {
            "instanceId": str(instance.uuid),
            "caseNumber": instance.case_number,
            "status": "running",
            "trackerUrl": f"/track/{instance.uuid}/",
        }
        assert instance.payload == {"a": 1} and instance.started_by == "token:portal"
        assert instance.case_number.startswith(f"BP-{year}-")

    def test_the_same_idempotency_key_and_body_answers_200_with_the_same_instance(self):
        body = {"workflowId": "building-permit", "payload": {"a": 1}}
        key = {"Idempotency-Key": "order-17"}
        first = self.post(START, body, token=self.token, headers=key)
        again = self.post(START, body, token=self.token, headers=key)
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json() == first.json()
        assert WorkflowInstance.objects.count() == 1

    def test_the_same_idempotency_key_with_another_body_is_422(self):
        key = {"Idempotency-Key": "order-17"}
        self.post(
            START,
            {"workflowId": "building-permit", "payload": {"a": 1}},
            token=self.token,
            headers=key,
        )
        response = self.post(
            START,
            {"workflowId": "building-permit", "payload": {"a": 2}},
            token=self.token,
            headers=key,
        )
        assert response.status_code == 422
        assert response.json() == {
            "error": "idempotency_conflict",
            "detail": "this Idempotency-Key was already used with a different body; use a new key",
        }
        assert WorkflowInstance.objects.count() == 1

    def test_idempotency_keys_of_two_tokens_do_not_collide(self):
        body = {"workflowId": "building-permit", "payload": {}}
        key = {"Idempotency-Key": "1"}
        self.post(START, body, token=self.token, headers=key)
        response = self.post(START, body, token=make_token("other"), headers=key)
        assert response.status_code == 201
        assert WorkflowInstance.objects.count() == 2

    def test_anyone_may_start_a_public_workflow_without_a_token(self):
        simple_workflow("open-door", public=True)
        response = self.post(START, {"workflowId": "open-door", "payload": {}})
        assert response.status_code == 201
        assert WorkflowInstance.objects.get().started_by == "public"

    def test_starting_a_non_public_workflow_without_a_token_is_401(self):
        response = self.post(START, {"workflowId": "building-permit", "payload": {}})
        assert response.status_code == 401
        assert response.json() == {
            "error": "unauthorized",
            "detail": "send Authorization: Bearer TOKEN",
        }
        assert WorkflowInstance.objects.count() == 0

    def test_an_unknown_workflow_is_404(self):
        response = self.post(START, {"workflowId": "no-such", "payload": {}}, token=self.token)
        assert response.status_code == 404
        assert response.json() == {
            "error": "unknown_workflow",
            "detail": "no workflow 'no-such' is published",
        }

    def test_a_missing_or_mistyped_field_is_400_naming_it(self):
        cases = [
            ({"payload": {}}, "'workflowId' is required"),
            ({"workflowId": 7}, "'workflowId' must be a JSON string"),
            ({"workflowId": None}, "'workflowId' must be a JSON string"),
            ({"workflowId": "building-permit", "payload": [1]}, "'payload' must be a JSON object"),
            ({"workflowId": "building-permit", "payload": None}, "'payload' must be a JSON object"),
        ]
        for body, detail in cases:
            with self.subTest(body=body):
                response = self.post(START, body, token=self.token)
                assert response.status_code == 400
                assert response.json() == {"error": "invalid_request", "detail": detail}
        assert WorkflowInstance.objects.count() == 0

    def test_a_payload_breaking_the_input_schema_is_422_listing_every_problem(self):
        schema = {
            "type": "object",
            "required": ["applicant", "address"],
            "properties": {"applicant": {"type": "string"}},
        }
        simple_workflow("checked", input=schema)
        response = self.post(
            START, {"workflowId": "checked", "payload": {"applicant": 5}}, token=self.token
        )
        assert response.status_code == 422
        assert response.json()["error"] == "invalid_payload"
        assert response.json()["problems"] == [
            "payload: 'address' is a required property",
            "payload/applicant: 5 is not of type 'string'",
        ]

    def test_malformed_json_is_400_with_line_and_column(self):
        response = self.post(
            START, raw='{\n  "workflowId": "building-permit",,\n}', token=self.token
        )
        assert response.status_code == 400
        assert response.json() == {
            "error": "malformed_json",
            "detail": "the body is not valid JSON: Expecting property name enclosed in double "
            "quotes at line 2 column 35",
            "line": 2,
            "column": 35,
        }

    def test_json_python_accepts_but_databases_refuse_is_400(self):
        cases = {
            "NaN": '{"workflowId": "building-permit", "payload": {"n": NaN}}',
            "nesting": '{"workflowId": "building-permit", "payload": '
            + "[" * 100_000
            + "]" * 100_000
            + "}",
            "a 5000-digit number": '{"workflowId": "building-permit", "payload": {"n": '
            + "9" * 5000
            + "}}",
            "a NUL character": '{"workflowId": "building-permit", "payload": {"n": "a\\u0000b"}}',
            "a lone surrogate": '{"workflowId": "building-permit", "payload": {"\\ud800": 1}}',
        }
        for name, raw in cases.items():
            with self.subTest(name):
                response = self.post(START, raw=raw, token=self.token)
                assert response.status_code == 400
                assert response.json()["error"] == "malformed_json"
        assert WorkflowInstance.objects.count() == 0

    def test_a_body_that_is_not_an_object_is_400(self):
        for raw in ("[]", '"building-permit"', "null", "", "  "):
            with self.subTest(raw=raw):
                response = self.post(START, raw=raw, token=self.token)
                assert response.status_code == 400
                assert response.json()["error"] == "invalid_request"

    def test_a_body_that_is_not_json_by_content_type_is_415(self):
        response = self.post(
            START,
            raw="workflowId=building-permit",
            token=self.token,
            content_type="application/x-www-form-urlencoded",
        )
        assert response.status_code == 415
        assert response.json() == {
            "error": "unsupported_media_type",
            "detail": "send the body as application/json",
        }

    def test_a_body_over_1_mib_is_413_without_being_read(self):
        body = json.dumps({"workflowId": "building-permit", "payload": {"x": "a" * MiB}})
        with patch.object(WSGIRequest, "read", side_effect=AssertionError("read")) as read:
            response = self.post(START, raw=body, token=self.token)
        assert response.status_code == 413
        assert response.json() == {
            "error": "body_too_large",
            "detail": "the request body is over 1048576 bytes (1 MiB)",
        }
        read.assert_not_called()

    async def test_a_body_over_1_mib_without_content_length_is_413_when_read(self):
        # A chunked upload on an ASGI server carries no Content-Length.
        body = json.dumps({"workflowId": "building-permit", "payload": {"x": "a" * MiB}})
        response = await self.async_client.request(
            method="POST",
            path=START,
            headers=[(b"content-type", b"application/json")],
            _body_file=FakePayload(body.encode()),
        )
        assert response.status_code == 413
        assert response.json()["error"] == "body_too_large"

    def test_a_body_of_exactly_1_mib_is_read(self):
        padding = MiB - len(json.dumps({"workflowId": "building-permit", "payload": {"x": ""}}))
        body = json.dumps({"workflowId": "building-permit", "payload": {"x": "a" * padding}})
        assert len(body) == MiB
        assert self.post(START, raw=body, token=self.token).status_code == 201

    def test_get_on_start_is_405_naming_the_allowed_method(self):
        response = self.get(START, token=self.token)
        assert response.status_code == 405
        assert response["Allow"] == "POST"
        assert response.json() == {"error": "method_not_allowed", "detail": "use POST"}


class TokenTests(ApiCase):
    def setUp(self):
        make_seed_services()
        self.definition = make_definition()
        self.instance = start(self.definition)

    def test_no_token_is_401_on_every_endpoint_that_is_not_public(self):
        task = StepRun.objects.get(instance=self.instance, step_id="approve")
        calls = [
            ("POST", START, {"workflowId": "building-permit", "payload": {}}),
            ("GET", status_url(self.instance), None),
            ("POST", f"/api/workflows/{self.instance.uuid}/cancel", {}),
            ("POST", f"/api/workflows/{self.instance.uuid}/retry", {}),
            ("POST", complete_url(task), {"result": "ok"}),
            ("POST", "/api/tasks/00000000-0000-0000-0000-000000000000/complete", {"result": "ok"}),
        ]
        for method, path, body in calls:
            with self.subTest(path=path):
                response = self.call(method, path, body)
                assert response.status_code == 401
                assert response.json() == {
                    "error": "unauthorized",
                    "detail": "send Authorization: Bearer TOKEN",
                }

    def test_a_malformed_authorization_header_is_401(self):
        for header in ("Token abc", "Bearer", "Bearer   ", "Basic dXNlcjpwdw=="):
            with self.subTest(header=header):
                response = self.get(status_url(self.instance), headers={"Authorization": header})
                assert response.status_code == 401
                assert response.json() == {
                    "error": "unauthorized",
                    "detail": "the Authorization header must be 'Bearer TOKEN'",
                }

    def test_an_unknown_token_is_401(self):
        response = self.get(status_url(self.instance), token="hms_not-a-real-token")
        assert response.status_code == 401
        assert response.json() == {"error": "unauthorized", "detail": "this token is not known"}

    def test_a_revoked_token_is_401(self):
        raw = make_token()
        ApiToken.objects.update(revoked_at=timezone.now())
        response = self.get(status_url(self.instance), token=raw)
        assert response.status_code == 401
        assert response.json() == {"error": "unauthorized", "detail": "this token has been revoked"}

    def test_a_token_without_the_scope_is_403_on_every_endpoint(self):
        task = StepRun.objects.get(instance=self.instance, step_id="approve")
        uuid = self.instance.uuid
        calls = [
            (
                "POST",
                START,
                {"workflowId": "building-permit", "payload": {}},
                ["tasks"],
                "start or read instances of",
            ),
            (
                "GET",
                status_url(self.instance),
                None,
                ["tasks", "operate"],
                "start or read instances of",
            ),
            (
                "POST",
                f"/api/workflows/{uuid}/cancel",
                {},
                ["start", "tasks"],
                "cancel or retry instances of",
            ),
            (
                "POST",
                f"/api/workflows/{uuid}/retry",
                {},
                ["start", "tasks"],
                "cancel or retry instances of",
            ),
            (
                "POST",
                complete_url(task),
                {"result": "ok"},
                ["start", "operate", "tasks"],
                "decide human tasks (scope decide) of",
            ),
        ]
        for method, path, body, scopes, verb in calls:
            with self.subTest(path=path):
                token = make_token(scopes=scopes)
                response = self.call(method, path, body, token=token)
                assert response.status_code == 403
                assert response.json() == {
                    "error": "forbidden",
                    "detail": f"this token may not {verb} 'building-permit'",
                }
        self.instance.refresh_from_db()
        assert self.instance.status == "running" and WorkflowInstance.objects.count() == 1

    def test_a_token_limited_to_other_workflows_is_403(self):
        token = make_token(workflows=["address-change"])
        response = self.get(status_url(self.instance), token=token)
        assert response.status_code == 403
        start_response = self.post(START, {"workflowId": "building-permit"}, token=token)
        assert start_response.status_code == 403

    def test_a_token_with_every_scope_may_read_the_status(self):
        token = make_token(scopes=["start", "tasks", "operate"], workflows=["building-permit"])
        assert self.get(status_url(self.instance), token=token).status_code == 200


class StatusTests(ApiCase):
    def setUp(self):
        make_seed_services()
        self.definition = make_definition()
        self.token = make_token()

    def reach_approve(self):
        instance = start(self.definition, {"applicant": "Ada"})
        run_queued(instance)
        return instance, StepRun.objects.get(instance=instance, step_id="approve")

    def test_the_status_document_of_an_instance_waiting_for_a_person(self):
        instance, task = self.reach_approve()
        validate = StepRun.objects.get(instance=instance, step_id="validate")
        response = self.get(status_url(instance), token=self.token)
        assert response.status_code == 200
        current_task = {
            "taskId": str(task.pk),
            "step": "approve",
            "state": "waiting",
            "assignee": "group:plan-reviewers",
            "escalationLevel": 0,
            "dueAt": iso(task.due_at),
            "attempts": 0,
        }
        assert response.json() == {
            "instanceId": str(instance.uuid),
            "caseNumber": instance.case_number,
            "workflowId": "building-permit",
            "version": 1,
            "status": "running",
            "currentStep": "approve",
            "createdAt": iso(instance.created_at),
            "endedAt": None,
            "trackerUrl": f"/track/{instance.uuid}/",
            "history": [
                {
                    "step": "validate",
                    "result": "ok",
                    "time": iso(validate.ended_at),
                    "state": "succeeded",
                    "startedAt": iso(validate.started_at),
                    "attempts": 1,
                    "taskId": str(validate.pk),
                }
            ],
            "steps": [
                {
                    "id": "validate",
                    "title": "Validate",
                    "state": "done",
                    "startedAt": iso(validate.started_at),
                    "endedAt": iso(validate.ended_at),
                    "dueAt": None,
                    "result": "ok",
                },
                {
                    "id": "approve",
                    "title": "Approve",
                    "state": "waiting",
                    "startedAt": iso(task.started_at),
                    "endedAt": None,
                    "dueAt": iso(task.due_at),
                    "result": None,
                },
                {
                    "id": "notify",
                    "title": "Notify",
                    "state": "upcoming",
                    "startedAt": None,
                    "endedAt": None,
                    "dueAt": None,
                    "result": None,
                },
            ],
            "events": [],
            "currentTask": current_task,
            "currentSteps": ["approve"],
            "currentTasks": [current_task],
            "outcome": None,
            "deadline": None,
            "documents": [],
        }

    def test_times_are_iso_8601_with_a_time_zone(self):
        instance, _ = self.reach_approve()
        document = self.get(status_url(instance), token=self.token).json()
        times = [
            document["createdAt"],
            document["history"][0]["time"],
            document["currentTask"]["dueAt"],
        ]
        assert all(datetime.fromisoformat(t).utcoffset() is not None for t in times)

    def test_an_escalation_is_listed_in_events_and_the_step_shows_escalated(self):
        instance, task = self.reach_approve()
        later = task.due_at + timedelta(seconds=1)
        runtime.process_due(now=later)
        document = self.get(status_url(instance), token=self.token).json()
        timed_out, escalated = Event.objects.filter(instance=instance).order_by("pk")
        expected = [
            {
                "action": "escalate",
                "timeout": "48h",
                "type": "timed_out",
                "step": "approve",
                "time": iso(timed_out.created_at),
            },
            {
                "level": 1,
                "to": "group:backup-reviewers",
                "exhausted": False,
                "type": "escalated",
                "step": "approve",
                "time": iso(escalated.created_at),
            },
        ]
        # Events may carry more detail than this; these fields are the promise.
        assert [
            {k: e.get(k) for k in want}
            for e, want in zip(document["events"], expected, strict=True)
        ] == expected
        assert document["steps"][1]["state"] == "escalated"
        assert document["currentTask"]["assignee"] == "group:backup-reviewers"

    def test_a_failed_instance_has_its_error_and_no_current_step_or_task(self):
        make_service("brokenSvc", callable="workflows_app.builtin.does_not_exist")
        instance = start(simple_workflow("broken", steps=[{"id": "one", "service": "brokenSvc"}]))
        run_queued(instance)
        document = self.get(status_url(instance), token=self.token).json()
        assert (document["status"], document["currentStep"], document["currentTask"]) == (
            "failed",
            None,
            None,
        )
        assert document["error"] == {
            "step": "one",
            "detail": "python service 'brokenSvc': module 'workflows_app.builtin' has no "
            "attribute 'does_not_exist'",
        }
        assert document["steps"] == [
            {
                "id": "one",
                "title": "One",
                "state": "failed",
                "startedAt": document["history"][0]["startedAt"],
                "endedAt": document["history"][0]["time"],
                "dueAt": None,
                "result": None,
            }
        ]

    def test_an_unknown_or_malformed_instance_id_is_404(self):
        for instance_id in ("7b0f3c2e-0000-4000-8000-000000000000", "42", "not-a-uuid"):
            with self.subTest(instance_id=instance_id):
                response = self.get(f"/api/workflows/{instance_id}/status", token=self.token)
                assert response.status_code == 404
                assert response.json() == {
                    "error": "not_found",
                    "detail": f"no instance '{instance_id}'",
                }

    def test_anyone_may_read_the_status_of_a_public_workflows_instance(self):
        instance = start(simple_workflow("open-door", public=True))
        response = self.get(status_url(instance))
        assert response.status_code == 200
        assert response.json()["instanceId"] == str(instance.uuid)

    def test_an_anonymous_reader_sees_no_staff_names_or_internal_details(self):
        make_service("reviewSvc", "human", group="plan-reviewers")
        definition = simple_workflow(
            "open-door",
            public=True,
            steps=[
                {"id": "review", "service": "reviewSvc"},
                {"id": "after", "service": "reviewSvc"},
            ],
        )
        instance = start(definition)
        review = StepRun.objects.get(instance=instance)
        runtime.complete_task(run_id=review.pk, result="approved", actor="user:rita")
        runtime.record_late_answer(run=review, result="x", actor="user:rita", reason="late")
        staff = self.get(status_url(instance), token=self.token).json()
        anonymous = self.get(status_url(instance)).json()
        assert staff["history"][0]["by"] == "user:rita" and "by" not in anonymous["history"][0]
        assert staff["currentTask"]["assignee"] == "group:plan-reviewers"
        assert "assignee" not in anonymous["currentTask"]
        assert anonymous["events"] == [
            {"type": "late_callback", "step": "review", "time": staff["events"][0]["time"]}
        ]
        assert "rita" not in json.dumps(anonymous)

    def test_reading_a_non_public_instance_without_a_token_is_401(self):
        instance = start(self.definition)
        assert self.get(status_url(instance)).status_code == 401


class CompleteTaskTests(ApiCase):
    def setUp(self):
        make_seed_services()
        self.instance = start(make_definition(), {"applicant": "Ada"})
        run_queued(self.instance)
        self.task = StepRun.objects.get(instance=self.instance, step_id="approve")
        self.token = make_token()

    def test_completing_a_task_answers_200_and_moves_the_instance_on(self):
        response = self.post(
            complete_url(self.task), {"result": "approved", "data": {"ok": 1}}, token=self.token
        )
        assert response.status_code == 200
        document = response.json()
        assert document["currentStep"] == "notify"
        assert document["history"][-1] | {"time": None, "startedAt": None} == {
            "step": "approve",
            "result": "approved",
            "time": None,
            "state": "succeeded",
            "startedAt": None,
            "attempts": 0,
            "taskId": str(self.task.pk),
            "by": "token:portal",
        }
        self.instance.refresh_from_db()
        assert self.instance.context["approve"] == {"ok": 1}

    def test_a_second_completion_is_409_and_makes_no_second_transition(self):
        self.post(complete_url(self.task), {"result": "approved"}, token=self.token)
        second = {"result": "rejected", "reason": "Too late."}
        response = self.post(complete_url(self.task), second, token=self.token)
        assert response.status_code == 409
        assert response.json() == {
            "error": "conflict",
            "detail": f"task {self.task.pk} was already completed with 'approved'",
        }
        runs = StepRun.objects.filter(instance=self.instance)
        assert [(r.step_id, r.state) for r in runs.order_by("created_at")] == [
            ("validate", "succeeded"),
            ("approve", "succeeded"),
            ("notify", "succeeded"),
        ]

    def test_an_unknown_or_malformed_task_id_is_404(self):
        for task_id in ("7b0f3c2e-0000-4000-8000-000000000000", "nope"):
            with self.subTest(task_id=task_id):
                response = self.post(
                    f"/api/tasks/{task_id}/complete", {"result": "approved"}, token=self.token
                )
                assert response.status_code == 404
                assert response.json() == {"error": "not_found", "detail": f"no task '{task_id}'"}

    def test_a_missing_or_empty_result_is_400(self):
        cases = [
            ({}, "'result' is required"),
            ({"result": " "}, "'result' must be 1 to 64 characters"),
            ({"result": "ok", "data": []}, "'data' must be a JSON object"),
        ]
        for body, detail in cases:
            with self.subTest(body=body):
                response = self.post(complete_url(self.task), body, token=self.token)
                assert response.status_code == 400
                assert response.json() == {"error": "invalid_request", "detail": detail}
        assert StepRun.objects.get(pk=self.task.pk).state == RunState.WAITING


class CancelAndRetryTests(ApiCase):
    def setUp(self):
        self.token = make_token()

    def test_cancel_answers_200_then_409_once_the_instance_has_ended(self):
        instance = start(http_workflow())
        url = f"/api/workflows/{instance.uuid}/cancel"
        response = self.post(url, {"reason": "sent twice"}, token=self.token)
        assert response.status_code == 200
        document = response.json()
        assert (document["status"], document["currentStep"], document["currentTask"]) == (
            "cancelled",
            None,
            None,
        )
        assert document["events"][0] | {"time": None} == {
            "type": "cancelled",
            "step": "one",
            "reason": "sent twice",
            "actor": "token:portal",
            "time": None,
        }
        assert document["steps"][0] == {
            "id": "one",
            "title": "One",
            "state": "upcoming",
            "startedAt": None,
            "endedAt": None,
            "dueAt": None,
            "result": None,
        }
        again = self.post(url, {"reason": "again"}, token=self.token)
        assert again.status_code == 409
        assert again.json() == {
            "error": "conflict",
            "detail": f"{instance.case_number} has already ended (cancelled)",
        }

    def test_cancel_without_a_body_is_allowed(self):
        instance = start(http_workflow())
        response = self.post(f"/api/workflows/{instance.uuid}/cancel", token=self.token)
        assert response.status_code == 200

    def test_retrying_a_running_instance_is_409(self):
        instance = start(http_workflow())
        response = self.post(f"/api/workflows/{instance.uuid}/retry", token=self.token)
        assert response.status_code == 409
        assert response.json() == {
            "error": "conflict",
            "detail": f"{instance.case_number} is running; only a failed instance can be retried",
        }

    def test_retrying_a_failed_instance_answers_200_and_it_resumes_at_the_failed_step(self):
        make_service("flakySvc", callable="workflows_app.builtin.does_not_exist")
        instance = start(
            simple_workflow(
                steps=[{"id": "one", "service": "okSvc"}, {"id": "two", "service": "flakySvc"}]
            )
        )
        run_queued(instance)
        make_service("flakySvc", callable="workflows_app.builtin.accept")  # the fix is deployed
        from workflows_app.queries import catalog

        catalog.clear()
        with patch("workflows_app.runtime.queue.async_task") as enqueue:
            response = self.post(f"/api/workflows/{instance.uuid}/retry", token=self.token)
        assert response.status_code == 200
        document = response.json()
        assert (document["status"], document["currentStep"], "error" in document) == (
            "running",
            "two",
            False,
        )
        assert document["currentTask"]["step"] == "two"
        enqueue.assert_called_once_with(
            "workflows_app.tasks.run_step", document["currentTask"]["taskId"], 0, save=False
        )
        run_queued(instance)
        instance.refresh_from_db()
        assert instance.status == "completed"


class JsonEverywhereTests(ApiCase):
    def test_unknown_paths_under_api_are_404_json(self):
        for path in ("/api/nope", "/api/", "/api/workflows/start/extra", "/api/tasks/x/y/z"):
            with self.subTest(path=path):
                response = self.get(path)
                assert response.status_code == 404
                assert response.json() == {"error": "not_found", "detail": f"no endpoint {path}"}

    def test_other_methods_are_405_json_with_allow(self):
        instance = start(simple_workflow())
        for method, path, allowed in [
            ("DELETE", status_url(instance), "GET"),
            ("POST", status_url(instance), "GET"),
            ("PUT", f"/api/workflows/{instance.uuid}/cancel", "POST"),
            ("GET", "/api/tasks/x/complete", "POST"),
            ("POST", "/api/openapi.json", "GET"),
        ]:
            with self.subTest(method=method, path=path):
                response = self.call(method, path, token=make_token())
                assert (response.status_code, response["Allow"]) == (405, allowed)

    def test_a_bad_host_header_is_400_json(self):
        response = self.client.get("/api/openapi.json", headers={"Host": "evil.example"})
        assert response.status_code == 400
        assert response["Content-Type"] == "application/json"
        assert response.json()["error"] == "bad_request"

    def test_an_unexpected_failure_is_500_json_and_logged(self):
        instance = start(simple_workflow())
        with (
            patch("workflows_app.web.api.instance_status", side_effect=RuntimeError("bug")),
            self.assertLogs("workflows_app.web.api", "ERROR"),
        ):
            response = self.get(status_url(instance), token=make_token())
        assert response.status_code == 500
        assert response.json() == {
            "error": "server_error",
            "detail": "something went wrong on our side; it has been logged",
        }


class QueryBudgetTests(ApiCase):
    """Queries per request stay fixed: none grows with steps, runs or events."""

    def setUp(self):
        self.token = make_token()

    def finished_instance(self, key: str, steps: int):
        definition = simple_workflow(
            key, steps=[{"id": f"s{n}", "service": "okSvc"} for n in range(steps)]
        )
        instance = start(definition)
        run_queued(instance)
        for n in range(steps):  # events too, one per step
            Event.objects.create(instance=instance, type=Event.Type.REMINDED, step=f"s{n}")
        return instance

    def status_queries(self, instance) -> int:
        self.get(status_url(instance), token=self.token)  # warm the per-process caches
        rendered.clear()  # count a revision this process has not rendered yet
        with CaptureQueriesContext(connection) as queries:
            response = self.get(status_url(instance), token=self.token)
        assert response.status_code == 200
        return len(queries)

    def test_status_takes_four_queries_whatever_the_number_of_steps_and_events(self):
        small, large = self.finished_instance("small", 2), self.finished_instance("large", 10)
        assert len(self.get(status_url(large), token=self.token).json()["history"]) == 10
        # the revision with the token, the instance with its runs, the events, the documents
        assert (self.status_queries(small), self.status_queries(large)) == (4, 4)

    def test_status_of_a_waiting_task_with_its_assignee_takes_four_queries(self):
        make_seed_services()
        instance = start(make_definition())
        run_queued(instance)
        assert self.status_queries(instance) == 4

    def test_start_takes_a_fixed_number_of_queries(self):
        http_workflow("budget")  # the start alone: python steps after it are budgeted elsewhere
        body = {"workflowId": "budget", "payload": {}}
        self.post(START, body, token=self.token)  # warm the per-process caches
        # the definition with the token's row (one query), savepoint, instance, run, release,
        # and after commit the message to the workers (an insert on the ORM broker; the Redis
        # broker is no query)
        message = 0 if settings.REDIS_URL else 1
        with self.assertNumQueries(5 + message):
            assert self.post(START, body, token=self.token).status_code == 201
        # + the lookup of the key
        with self.assertNumQueries(6 + message):
            self.post(START, body, token=self.token, headers={"Idempotency-Key": "q"})
        with self.assertNumQueries(2):  # definition and token, the earlier instance
            assert (
                self.post(
                    START, body, token=self.token, headers={"Idempotency-Key": "q"}
                ).status_code
                == 200
            )


class OpenApiDocumentTests(ApiCase):
    def test_the_document_is_served_at_api_openapi_json(self):
        response = self.get("/api/openapi.json")
        assert response.status_code == 200
        assert response.json() == json.loads(json.dumps(OPENAPI))

    def test_the_document_is_valid_openapi_3_1(self):
        from openapi_spec_validator import validate
        from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

        validate(OPENAPI)  # raises on any violation of the 3.1 schema
        broken = {**OPENAPI, "paths": {"/api/x/{id}": {"get": {"responses": {}}}}}
        with self.assertRaises(OpenAPIValidationError):
            validate(broken)  # a path parameter that is not declared
        assert OPENAPI["openapi"].startswith("3.1.")

    def test_its_paths_are_exactly_the_api_routes_of_the_urlconf(self):
        routes = api_routes()
        assert "/api/workflows/{instanceId}/status" in routes
        assert set(OPENAPI["paths"]) == routes

    def test_each_path_documents_exactly_the_methods_its_view_allows(self):
        for entry in get_resolver().url_patterns:
            for pattern in getattr(entry, "url_patterns", [entry]):
                route = str(pattern.pattern)
                if not (route.startswith("api/") and pattern.name):
                    continue
                with self.subTest(route=route):
                    documented = set(OPENAPI["paths"][openapi_path(route)])
                    allowed = {m.lower() for m in pattern.callback.allowed_methods}
                    assert documented == allowed

    def test_an_answer_with_an_undocumented_status_fails_the_check(self):
        from django.http import JsonResponse

        teapot = JsonResponse({"error": "teapot", "detail": "short and stout"}, status=418)
        with self.assertRaises(AssertionError):
            self.check_documented("POST", START, teapot)
