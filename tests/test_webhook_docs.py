"""The receiver in docs/webhooks.md verifies what we send and drops duplicates."""

import base64
import re
from pathlib import Path

from django.test import SimpleTestCase

from workflows_app.runtime import outbound

DOC = Path(__file__).resolve().parent.parent / "docs" / "webhooks.md"
SECRET = "whsec_" + base64.b64encode(b"the portal's secret, 32 bytes..").decode()


def documented_receiver() -> dict:
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace


class Target:
    name, url, secret, secret_env = "portalHook", "http://127.0.0.1:9/", SECRET, ""


class DocumentedReceiverTests(SimpleTestCase):
    def signed(self, body: str, msg_id: str = "msg-1") -> dict[str, str]:
        return outbound.signature_headers(Target(), msg_id=msg_id, body=body)

    def test_it_accepts_our_signature_once_and_refuses_a_forgery(self):
        receiver = documented_receiver()
        body = '{"caseNumber":"BP-2026-7KQ3MX","currentSteps":[],"status":"completed"}'
        headers = self.signed(body)
        assert receiver["verify"](SECRET, headers, body.encode())["status"] == "completed"
        assert receiver["handle"](SECRET, headers, body.encode()) == 204
        assert receiver["handle"](SECRET, headers, body.encode()) == 204  # duplicate dropped
        assert receiver["seen_ids"] == {"msg-1"}
        forged = body.replace("completed", "rejected").encode()
        assert receiver["handle"](SECRET, headers, forged) == 400
        assert receiver["handle"](SECRET, {}, body.encode()) == 400
