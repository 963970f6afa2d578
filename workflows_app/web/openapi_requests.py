"""The OpenAPI parts of requests to the applicant: documents, and the status fields `deadline`
and `documents` (merged into the document served at /api/openapi.json by openapi.py)."""

_UUID = {"type": "string", "format": "uuid"}
_TIME = {"type": "string", "format": "date-time"}


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


_INSTANCE_ID = {"name": "instanceId", "in": "path", "required": True, "schema": _UUID}

PATHS = {
    "/api/workflows/{instanceId}/documents": {
        "post": {
            "operationId": "uploadDocument",
            "summary": "Send a document for an application (scope respond)",
            "description": "Bodies up to HMS_MAX_UPLOAD (default 10MB) are read here, not 1 MiB. "
            "The type is judged by the file's content, not its name. Name the document's id in "
            "the data of the request's answer to attach it to a file field.",
            "parameters": [_INSTANCE_ID],
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file"],
                            "properties": {
                                "file": {"type": "string", "format": "binary"},
                                "step": {
                                    "type": "string",
                                    "description": "the step it is for; its form's file fields "
                                    "then say which types are accepted",
                                },
                            },
                        }
                    }
                },
            },
            "responses": {
                "201": {
                    "description": "Stored",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Document"}}
                    },
                },
                "400": _error("No 'file' field, an unknown step, or a malformed body"),
                "401": _error("No token, or an unknown or revoked one"),
                "403": _error("The token may not send documents for this workflow"),
                "404": _error("Unknown instance"),
                "409": _error("The instance has ended"),
                "413": _error("The file is larger than HMS_MAX_UPLOAD"),
                "415": _error("Not multipart/form-data, or a file type that is not accepted"),
                "500": _error("A fault on the server's side"),
            },
        }
    },
    "/api/documents/{documentId}": {
        "get": {
            "operationId": "getDocument",
            "summary": "Download a document (a token that may read its instance)",
            "parameters": [{"name": "documentId", "in": "path", "required": True, "schema": _UUID}],
            "responses": {
                "200": {
                    "description": "The file, as an attachment, with the type judged at upload",
                    "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                },
                "401": _error("No token (never anonymous), or an unknown or revoked one"),
                "403": _error("The token may not read instances of this workflow"),
                "404": _error("Unknown document"),
                "500": _error("A fault on the server's side"),
            },
        }
    },
}

SCHEMAS = {
    "Document": {
        "type": "object",
        "required": ["documentId", "name", "size", "contentType", "step", "time"],
        "properties": {
            "documentId": _UUID,
            "name": {"type": "string", "description": "the file name as it was sent"},
            "size": {"type": "integer", "minimum": 1},
            "contentType": {"type": "string", "examples": ["application/pdf"]},
            "step": {"type": ["string", "null"]},
            "time": _TIME,
        },
    },
    "Deadline": {
        "type": "object",
        "description": "The workflow's deadline: paused while the applicant is asked.",
        "required": ["dueAt", "paused", "remainingSeconds"],
        "properties": {
            "dueAt": _TIME,
            "paused": {"type": "boolean"},
            "remainingSeconds": {"type": "integer"},
        },
    },
}

STATUS_PROPERTIES = {
    "deadline": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Deadline"}]},
    "documents": {
        "type": "array",
        "description": "Not shown to anonymous readers.",
        "items": {"$ref": "#/components/schemas/Document"},
    },
}
