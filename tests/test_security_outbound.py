"""Security findings of issue 13 (part 3) about the calls we make: a wall-clock deadline per
call, redeliveries counted against retry.max, private addresses refused, the admin's ping,
and a per-service concurrency limit (docs/security.md, R2)."""

import socket
import threading
from contextlib import contextmanager
from datetime import timedelta

from django.test import TestCase

from tests.factories import make_service, simple_workflow, start
from workflows_app import runtime
from workflows_app.models import Event, RunState, StepRun
from workflows_app.queries import catalog
from workflows_app.runtime import dispatch


@contextmanager
def trickling_server(*, head: bytes, body: bytes, pause: float):
    """A raw HTTP server on 127.0.0.1 that sends `head` at once, then `body` one byte every
    `pause` seconds: each read gets a byte in time, the whole answer takes ages."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                try:
                    conn.sendall(head)
                    for byte in body:
                        if stop.wait(pause):
                            return
                        conn.sendall(bytes([byte]))
                except OSError:
                    continue  # the client hung up: what the deadline does

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/slow"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


ANSWER = b'{"result": "ok", "data": {"padding": "..........................."}}'


class WallClockDeadlineTests(TestCase):
    """Finding 5: a service trickling its answer is cut at its time-out, the whole call."""

    def call(self, url: str):
        service = make_service("slowSvc", "http", url=url, timeout_seconds=2)
        instance = start(simple_workflow("slow", [{"id": "check", "service": "slowSvc"}]))
        run = StepRun.objects.get(instance=instance)
        step = catalog.spec_of(instance).step("check")
        return dispatch.call(service=service, instance=instance, run=run, step=step)

    def test_a_body_trickling_one_byte_at_a_time_is_cut_at_the_services_time_out(self):
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        head += f"Content-Length: {len(ANSWER)}\r\n\r\n".encode()
        with trickling_server(head=head, body=ANSWER, pause=0.25) as url:
            outcome = self.call(url)
        assert outcome.kind == "retry"
        assert outcome.error == f"{url} did not answer within 2s"

    def test_headers_trickling_one_byte_at_a_time_are_cut_too(self):
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Pad: " + b"." * 40
        with trickling_server(head=b"", body=head, pause=0.25) as url:
            outcome = self.call(url)
        assert (outcome.kind, outcome.error) == ("retry", f"{url} did not answer within 2s")


class RedeliveryCountTests(TestCase):
    """Finding 5: a step whose worker keeps dying (killed, lease expired) uses up retry.max
    and then fails visibly, instead of being redelivered forever."""

    def test_a_step_that_keeps_killing_its_worker_fails_after_retry_max(self):
        make_service("killerSvc", "http")
        step = {"id": "check", "service": "killerSvc", "retry": {"max": 1, "backoff": "1s"}}
        instance = start(simple_workflow("killer", [step]))
        run = StepRun.objects.get(instance=instance)
        for attempt in (1, 2):
            claimed = runtime.claim_run(run_id=run.pk, attempts=attempt - 1)
            assert claimed is not None, attempt
            # The worker dies in the call: nothing is recorded; the lease runs out.
            lease_end = StepRun.objects.get(pk=run.pk).wake_at
            later = lease_end + timedelta(seconds=1)
            runtime.wake_run(run_id=run.pk, instance_id=instance.pk, now=later)
            run.refresh_from_db()
        instance.refresh_from_db()
        assert (run.state, run.attempts) == (RunState.FAILED, 2)
        assert instance.status == "failed"
        assert "2 attempts" in instance.error["detail"]
        assert Event.objects.filter(run=run, type=Event.Type.REDELIVERED).count() == 1
