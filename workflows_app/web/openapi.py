"""The OpenAPI 3.1 document served at /api/openapi.json (tests check it matches the URLs)."""

from . import openapi_parallel, openapi_requests

_ERROR = {"$ref": "#/components/schemas/Error"}
_UUID = {"type": "string", "format": "uuid"}
_TIME = {"type": "string", "format": "date-time"}
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_TEXT_OR_NULL = {"type": ["string", "null"]}


def _errors(*codes: int) -> dict:
    """The error answers of an operation; any of them may be a 503 (the database is down)."""
    return {
        str(code): {"description": _ERROR_TEXT[code], "content": _json(_ERROR)}
        for code in (*codes, 503)
    }


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


_ERROR_TEXT = {
    400: "Malformed JSON or a missing or mistyped field",
    401: "No token, or an unknown or revoked one (or a bad callback signature)",
    403: "The token may not do this",
    404: "Unknown workflow, instance or task (also for a malformed id)",
    409: "Not possible in the current state (already completed, already ended, not failed)",
    413: "Body over 1 MiB (an anonymous start: a payload over HMS_PUBLIC_MAX_PAYLOAD_BYTES)",
    415: "Body is not application/json",
    422: "Payload breaks the workflow's input schema or has a malformed email, an "
    "Idempotency-Key reused with another body, or an answer to a request that breaks its form",
    429: "Too many anonymous starts from this address; Retry-After says when to try again",
    500: "A fault on the server's side (a bug, logged); never an answer to bad input",
    503: "The database cannot be reached or written for the moment; Retry-After says when "
    "to try again",
}

_INSTANCE_ID = {"name": "instanceId", "in": "path", "required": True, "schema": _UUID}


def _links(source: str, *operations: str) -> dict:
    """OpenAPI links: what a client (or a stateful fuzzer) may call next with the id it got."""
    parameter = "taskId" if source.endswith("taskId") else "instanceId"
    return {op: {"operationId": op, "parameters": {parameter: source}} for op in operations}


_INSTANCE_FROM_BODY = "$response.body#/instanceId"
_STATUS = {
    "200": {
        "description": "The instance's status",
        "content": _json({"$ref": "#/components/schemas/Status"}),
        "links": {
            **_links(_INSTANCE_FROM_BODY, "getStatus", "cancelInstance", "retryInstance"),
            **_links("$response.body#/currentTask/taskId", "completeTask"),
        },
    }
}
_STARTED_LINKS = _links(_INSTANCE_FROM_BODY, "getStatus", "cancelInstance", "retryInstance")

OPENAPI = {
    "openapi": "3.1.0",
    "info": {
        "title": "HMS Workflow Orchestration API",
        "version": "1.0.0",
        "description": "Start citizen-service workflows, follow them, complete their tasks.",
    },
    "servers": [{"url": "/"}],
    "security": [{"bearer": []}],
    "paths": {
        "/api/workflows/start": {
            "post": {
                "operationId": "startWorkflow",
                "summary": "Start an instance of the newest version of a workflow",
                "security": [{"bearer": []}, {}],
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "maxLength": 255},
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": _json({"$ref": "#/components/schemas/StartRequest"}),
                },
                "responses": {
                    "201": {
                        "description": "Started",
                        "content": _json({"$ref": "#/components/schemas/Started"}),
                        "links": _STARTED_LINKS,
                    },
                    "200": {
                        "description": "Same Idempotency-Key and body: the earlier instance",
                        "content": _json({"$ref": "#/components/schemas/Started"}),
                    },
                    **_errors(400, 401, 403, 404, 413, 415, 422, 429, 500),
                },
            }
        },
        "/api/workflows/{instanceId}/status": {
            "get": {
                "operationId": "getStatus",
                "summary": "Status, history, steps and events of an instance",
                "security": [{"bearer": []}, {}],
                "parameters": [_INSTANCE_ID],
                "responses": {**_STATUS, **_errors(401, 403, 404, 500)},
            }
        },
        "/api/workflows/{instanceId}/cancel": {
            "post": {
                "operationId": "cancelInstance",
                "summary": "Cancel a running instance",
                "parameters": [_INSTANCE_ID],
                "requestBody": {
                    "required": False,
                    "content": _json(
                        {"type": "object", "properties": {"reason": {"type": "string"}}}
                    ),
                },
                "responses": {**_STATUS, **_errors(400, 401, 403, 404, 409, 413, 415, 500)},
            }
        },
        "/api/workflows/{instanceId}/retry": {
            "post": {
                "operationId": "retryInstance",
                "summary": "Resume a failed instance at its failed step",
                "parameters": [_INSTANCE_ID],
                "responses": {**_STATUS, **_errors(400, 401, 403, 404, 409, 413, 415, 500)},
            }
        },
        "/api/tasks/{taskId}/complete": {
            "post": {
                "operationId": "completeTask",
                "summary": "Complete a waiting task (a person's decision or a service's callback)",
                "description": "A human task (a person's decision) needs a bearer token with "
                "the decide scope; a token acting for a person decides as that person, with their "
                "checks (group, separation of duties, the step's outcomes), and a refusal is 403. "
                "An automated step's callback needs the tasks scope, or the step's service's "
                "Standard Webhooks signature (webhook-id, webhook-timestamp, webhook-signature) "
                "over a body that names the task (taskId). A request to the applicant is "
                "answered with result 'submitted' by a token with the respond scope; 422 names "
                "each wrong field.",
                "security": [{"bearer": []}, {"webhookSignature": []}],
                "parameters": [{"name": "taskId", "in": "path", "required": True, "schema": _UUID}],
                "requestBody": {
                    "required": True,
                    "content": _json({"$ref": "#/components/schemas/CompleteRequest"}),
                },
                "responses": {**_STATUS, **_errors(400, 401, 403, 404, 409, 413, 415, 422, 500)},
            }
        },
        **openapi_requests.PATHS,
        "/api/openapi.json": {
            "get": {
                "operationId": "getOpenApi",
                "summary": "This document",
                "security": [{}],
                "responses": {
                    "200": {"description": "OpenAPI 3.1", "content": _json({"type": "object"})}
                },
            }
        },
    },
    "components": {
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "Made with `python manage.py create_api_token NAME`.",
            },
            "webhookSignature": {"type": "apiKey", "in": "header", "name": "webhook-signature"},
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error", "detail"],
                "properties": {
                    "error": {"type": "string", "examples": ["invalid_request"]},
                    "detail": {"type": "string"},
                    "problems": {
                        "type": "array",
                        "items": {
                            "anyOf": [
                                {"type": "string"},
                                {
                                    "type": "object",
                                    "required": ["field", "message"],
                                    "properties": {
                                        "field": {"type": ["string", "null"]},
                                        "message": {"type": "string"},
                                    },
                                },
                            ]
                        },
                        "description": "422 invalid_payload: every schema violation (text); "
                        "422 invalid_answer: every field of the answer that is wrong",
                    },
                    "line": {"type": "integer", "description": "400 malformed_json"},
                    "column": {"type": "integer", "description": "400 malformed_json"},
                },
            },
            "StartRequest": {
                "type": "object",
                "required": ["workflowId"],
                "properties": {
                    "workflowId": {"type": "string", "examples": ["building-permit"]},
                    "payload": {"type": "object"},
                },
            },
            "Started": {
                "type": "object",
                "required": ["instanceId", "caseNumber", "status", "trackerUrl"],
                "properties": {
                    "instanceId": _UUID,
                    "caseNumber": {"type": "string", "examples": ["BP-2026-7KQ3MX"]},
                    "status": {"$ref": "#/components/schemas/InstanceStatus"},
                    "trackerUrl": {"type": "string"},
                },
            },
            "CompleteRequest": {
                "type": "object",
                "required": ["result"],
                "properties": {
                    "taskId": {
                        **_UUID,
                        "description": "the task answered; required when signed (it binds the "
                        "signature to this task), checked against the path when present",
                    },
                    "result": {"type": "string", "minLength": 1, "maxLength": 64},
                    "data": {
                        "type": "object",
                        "description": "Goes to the context; a service's `reasons` (a list of "
                        "plain-language strings) are shown to the applicant with `rejected`.",
                    },
                    "reason": {
                        "type": "string",
                        "maxLength": 2000,
                        "description": "A person's decision: why, shown to the applicant; "
                        "required with `rejected` on a task for a person (else 400).",
                    },
                    "note": {
                        "type": "string",
                        "maxLength": 2000,
                        "description": "A person's decision: for staff only, never shown to "
                        "the applicant or to anonymous readers.",
                    },
                },
            },
            "InstanceStatus": {
                "type": "string",
                "enum": ["running", "completed", "rejected", "failed", "cancelled"],
            },
            "Status": {
                "type": "object",
                "required": [
                    "instanceId",
                    "caseNumber",
                    "workflowId",
                    "version",
                    "status",
                    "currentStep",
                    "history",
                    "steps",
                    "events",
                    "currentTask",
                    "outcome",
                    "currentSteps",
                    "currentTasks",
                ],
                "properties": {
                    "instanceId": _UUID,
                    "caseNumber": {"type": "string", "examples": ["BP-2026-7KQ3MX"]},
                    "workflowId": {"type": "string"},
                    "version": {"type": "integer", "minimum": 1},
                    "status": {"$ref": "#/components/schemas/InstanceStatus"},
                    "currentStep": _TEXT_OR_NULL,
                    "createdAt": _TIME,
                    "endedAt": _TIME_OR_NULL,
                    "trackerUrl": {"type": "string"},
                    "history": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/HistoryEntry"},
                    },
                    "steps": {"type": "array", "items": {"$ref": "#/components/schemas/Step"}},
                    "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
                    "currentTask": {
                        "oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Task"}]
                    },
                    "outcome": {
                        "oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Outcome"}]
                    },
                    "error": {
                        "type": "object",
                        "required": ["step", "detail"],
                        "properties": {"step": {"type": "string"}, "detail": {"type": "string"}},
                    },
                    **openapi_requests.STATUS_PROPERTIES,
                    **openapi_parallel.STATUS_PROPERTIES,
                },
            },
            "HistoryEntry": {
                "type": "object",
                "description": "A finished step run, oldest first.",
                "required": ["step", "result", "time", "state", "taskId"],
                "properties": {
                    "step": {"type": "string"},
                    "result": {"type": "string"},
                    "time": _TIME,
                    "state": {"type": "string", "enum": ["succeeded", "failed", "skipped"]},
                    "startedAt": _TIME_OR_NULL,
                    "attempts": {"type": "integer"},
                    "taskId": _UUID,
                    "by": {
                        "type": "string",
                        "description": "who completed it (token:NAME, user:NAME)",
                    },
                    "reasons": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "a service's data.reasons (anonymous readers: only "
                        "with the result rejected)",
                    },
                    "reason": {"type": "string", "description": "a person's reason"},
                    "note": {"type": "string", "description": "a person's note (staff only)"},
                    "error": {"type": "string"},
                    **openapi_parallel.HISTORY_PROPERTIES,
                },
            },
            "Outcome": {
                "type": "object",
                "description": "The decision that ended the instance: a person's decision, a "
                "refusal with its reasons, or `failed`/`cancelled` (no reasons).",
                "required": ["result", "step", "reasons", "time"],
                "properties": {
                    "result": {"type": "string", "examples": ["approved", "rejected"]},
                    "step": {"type": "string"},
                    "reasons": {"type": "array", "items": {"type": "string"}},
                    "time": _TIME,
                },
            },
            "Step": {
                "type": "object",
                "required": ["id", "title", "state"],
                "properties": {
                    "id": {"type": "string"},
                    "title": {"type": "string"},
                    "state": {
                        "type": "string",
                        "enum": [
                            "done",
                            "current",
                            "waiting",
                            "escalated",
                            "failed",
                            "skipped",
                            "upcoming",
                        ],
                    },
                    "startedAt": _TIME_OR_NULL,
                    "endedAt": _TIME_OR_NULL,
                    "dueAt": _TIME_OR_NULL,
                    "result": _TEXT_OR_NULL,
                    **openapi_parallel.STEP_PROPERTIES,
                },
            },
            "Event": {
                "type": "object",
                "description": "Anything but an ordinary step finishing; more fields by type.",
                "required": ["type", "step", "time"],
                "properties": {
                    "type": {"type": "string", "examples": ["escalated", "retry_scheduled"]},
                    "step": _TEXT_OR_NULL,
                    "time": _TIME,
                    "actor": {"type": "string"},
                    "result": {"type": "string"},
                },
            },
            **openapi_requests.SCHEMAS,
            "Task": {
                "type": "object",
                "description": "The open run of the current step; its taskId completes it.",
                "required": ["taskId", "step", "state"],
                "properties": {
                    "taskId": _UUID,
                    "step": {"type": "string"},
                    "state": {"type": "string", "enum": ["queued", "running", "waiting"]},
                    "assignee": _TEXT_OR_NULL,
                    "escalationLevel": {"type": "integer"},
                    "dueAt": _TIME_OR_NULL,
                    "attempts": {"type": "integer"},
                },
            },
        },
    },
}
