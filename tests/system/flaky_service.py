"""A deliberately unreliable HTTP service for the chaos run (loopback only).

Each POST gets, at random: a 500, a slow answer (longer than the caller's time-out, but the
work is done: a late 200), a dropped connection (closed without an answer), or a prompt 200
`{"result": "ok", "data": {"attempt": N, "key": KEY}}`. Every request is logged as one JSON
line *before* it is answered, with its Idempotency-Key, the attempt and step from the body
and what the service chose (status webhooks sent to `/hooks` are logged with `"hook": true`), so the chaos run can compare the log with the history.

Standalone: python tests/system/flaky_service.py --port 9002 --log var/flaky.jsonl
"""

import argparse
import json
import random
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Behaviour:
    """Shares of the misbehaviours (the rest answer 200 at once) and how slow "slow" is."""

    error_share: float = 0.15
    slow_share: float = 0.05
    drop_share: float = 0.05
    slow_seconds: tuple[float, float] = (2.0, 2.0)  # how late a slow answer is, drawn uniformly


class FlakyService:
    """The server, its log file and its random choices (seeded, so a run can be replayed)."""

    def __init__(
        self, *, log_path: Path, behaviour: Behaviour = Behaviour(), seed: int = 0, port: int = 0
    ) -> None:
        self.behaviour = behaviour
        self.log_path = log_path
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._open: dict[int, tuple[float, str]] = {}  # being answered: id -> (came, key)
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.flaky = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/work"

    def start(self) -> "FlakyService":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.write_text("")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def callers_waiting(self, *, within: float) -> list[str]:
        """Idempotency-Keys of requests still unanswered that came less than `within` s ago."""
        since = time.monotonic() - within
        with self._lock:
            return [key for came, key in self._open.values() if came >= since]

    def finished(self, token: int) -> None:
        """One request has been answered (or dropped)."""
        with self._lock:
            self._open.pop(token, None)

    def choose_and_log(self, request: dict[str, Any], token: int) -> str:
        """Pick what to do with one request and log it, in one step (one lock)."""
        b = self.behaviour
        with self._lock:
            self._open[token] = (time.monotonic(), request["key"])
            roll = self._random.random()
            if roll < b.error_share:
                choice = "error"
            elif roll < b.error_share + b.slow_share:
                choice = "slow"
            elif roll < b.error_share + b.slow_share + b.drop_share:
                choice = "drop"
            else:
                choice = "ok"
            with open(self.log_path, "a") as log:
                log.write(json.dumps({**request, "choice": choice, "time": time.time()}) + "\n")
        return choice


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A caller killed mid-request resets its connection: expected here, not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the dispatcher's pooled session expects

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        flaky: FlakyService = self.server.flaky
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        body = _json(raw)
        key = self.headers.get("Idempotency-Key", "")
        attempt = body.get("attempt")
        request = {
            "key": key,
            "attempt": attempt,
            "step": body.get("step"),
            "instance": body.get("instanceId"),
        }
        if self.path.startswith("/hooks"):  # a status webhook (tests/system/chaos_webhooks.py)
            key = self.headers.get("webhook-id", "")
            request = {
                "hook": True,
                "key": key,
                "instance": body.get("instanceId"),
                "status": body.get("status"),
            }
        if len(raw) < length or not body:
            request["truncated"] = True  # the caller died while sending: nobody will read

        token = id(self)
        try:
            self._answer(flaky, flaky.choose_and_log(request, token), attempt, key)
        finally:
            flaky.finished(token)

    def _answer(self, flaky: FlakyService, choice: str, attempt: Any, key: str) -> None:
        match choice:
            case "error":
                self._reply(500, {"error": "flaky", "detail": "try again later"})
            case "drop":
                self.close_connection = True  # closed with no answer at all
            case "slow":
                time.sleep(random.uniform(*flaky.behaviour.slow_seconds))
                self._reply(200, {"result": "ok", "data": {"attempt": attempt, "key": key}})
            case _:
                self._reply(200, {"result": "ok", "data": {"attempt": attempt, "key": key}})

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True  # the caller gave up (time-out) or was killed

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        pass


def _json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def read_log(path: Path) -> list[dict[str, Any]]:
    """Every request the service logged, oldest first."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9002)
    parser.add_argument("--log", type=Path, default=Path("var/flaky.jsonl"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    service = FlakyService(log_path=args.log, seed=args.seed, port=args.port).start()
    print(f"flaky service on {service.url}, logging to {args.log} (Ctrl-C stops)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        service.stop()


if __name__ == "__main__":
    main()
