"""Demo HTTP services for `make run`, so the seed example runs as written (127.0.0.1:9001).

`POST /validate` checks the application in the request's payload and answers
`{"result": "ok"}` or `{"result": "rejected", "data": {"reasons": [...]}}` (docs/http-services.md).
"""

import json
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REQUIRED_FIELDS = {"applicant": "the applicant's name", "address": "the address of the site"}
# Workflows whose validation also wants a site plan: in the payload, or sent later by the
# applicant on the tracker (the `upload-site-plan` step of workflows/building-permit-full.yaml).
SITE_PLAN_REQUIRED = {"building-permit-full"}
SITE_PLAN_STEP = "upload-site-plan"


def validate_application(payload: dict[str, Any]) -> dict[str, Any]:
    """The validation service's answer for one application."""
    reasons = [
        f"{label} is missing"
        for key, label in REQUIRED_FIELDS.items()
        if not str(payload.get(key) or "").strip()
    ]
    if reasons:
        return {"result": "rejected", "data": {"reasons": reasons}}
    return {"result": "ok", "data": {"checked": sorted(REQUIRED_FIELDS)}}


def validate_request(request: dict[str, Any]) -> dict[str, Any]:
    """The answer to one validation request: the application's fields, then the site plan."""
    payload = request.get("payload") if isinstance(request.get("payload"), dict) else {}
    answer = validate_application(payload)
    if answer["result"] != "ok" or request.get("workflowId") not in SITE_PLAN_REQUIRED:
        return answer
    context = request.get("context") if isinstance(request.get("context"), dict) else {}
    sent = (context.get(SITE_PLAN_STEP) or {}).get("sitePlan")
    if payload.get("sitePlan") or sent:
        return answer
    return {"result": "incomplete", "data": {"reasons": ["the site plan is missing"]}}


class DemoHandler(BaseHTTPRequestHandler):
    server_version = "hms-demo/1"

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.rstrip("/") != "/validate":
            return self._reply(HTTPStatus.NOT_FOUND, {"error": "not_found"})
        length = int(self.headers.get("Content-Length") or 0)
        try:
            request = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return self._reply(HTTPStatus.BAD_REQUEST, {"error": "malformed_json"})
        self._reply(HTTPStatus.OK, validate_request(request if isinstance(request, dict) else {}))

    def do_GET(self) -> None:  # noqa: N802
        self._reply(HTTPStatus.OK, {"status": "ok", "services": ["/validate"]})

    def _reply(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def serve(host: str = "127.0.0.1", port: int = 9001) -> ThreadingHTTPServer:
    """A server for the demo services (call serve_forever on it)."""
    return ThreadingHTTPServer((host, port), DemoHandler)
