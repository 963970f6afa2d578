"""Security findings of issue 13 (part 3) about the calls we make: a wall-clock deadline per
call, redeliveries counted against retry.max, private addresses refused, the admin's ping,
and a per-service concurrency limit (docs/security.md, R2)."""

import io
import socket
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import TestCase, override_settings
from django.utils import timezone
from werkzeug import Response

from tests.factories import (
    committed,
    make_service,
    make_user,
    run_queued,
    simple_workflow,
    start,
)
from tests.integration_helpers import (
    LocalServerMixin,
    ScriptedService,
    file_database,
    local_http_server,
    running_cluster,
    wait_until,
)
from workflows_app import runtime, tasks
from workflows_app.definitions import InvalidDefinition, load_text
from workflows_app.models import Event, RunState, Service, StepRun, WorkflowInstance
from workflows_app.queries import addresses, catalog
from workflows_app.runtime import concurrency, dispatch


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


def ping(client, service):
    """The admin's "send a signed ping" on one service; the messages it shows."""
    response = client.post(
        "/admin/workflows_app/service/",
        {"action": "test_service", "_selected_action": [service.pk]},
        follow=True,
    )
    return [str(m) for m in response.context["messages"]]


@override_settings(HMS_REFUSE_PRIVATE_URLS=True, HMS_PRIVATE_URL_ALLOW=["127.0.0.1:9001"])
class PrivateAddressTests(LocalServerMixin, TestCase):
    """Finding 9: no redirects, no echoed body, and private, loopback and link-local service
    addresses refused (resolved; decimal and octal too) unless allowed (the demo's)."""

    def setUp(self):
        self.client.force_login(make_user("root", is_staff=True, is_superuser=True))

    def add_service(self, url: str):
        body = {"name": "svc", "kind": "http", "url": url, "timeout_seconds": ""}
        return self.client.post("/admin/workflows_app/service/add/", body)

    def test_the_admin_refuses_private_loopback_and_link_local_urls_in_every_spelling(self):
        for url in (
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.5/validate",
            "http://localhost:8000/admin/",
            "http://2130706433:8000/",  # 127.0.0.1 written as one decimal number
            "http://0177.0.0.1:8000/",  # ... and in octal
            "http://[::1]:8000/",
        ):
            response = self.add_service(url)
            assert response.status_code == 200, url
            errors = response.context["adminform"].form.errors["url"][0]
            # Django's URL field already refuses the decimal spelling; ours the others.
            assert "not a public address" in errors or "valid URL" in errors, (url, errors)
            assert addresses.url_refusal(url), url
        assert not Service.objects.exists()
        assert self.add_service("http://127.0.0.1:9001/validate").status_code == 302

    def test_a_services_file_with_a_private_url_is_refused_naming_the_file(self):
        path = Path(self.enterContext(tempfile.TemporaryDirectory())) / "services.yaml"
        path.write_text(
            "services:\n"
            '  metaSvc: {kind: http, url: "http://169.254.169.254/"}\n'
            '  decimalSvc: {kind: http, url: "http://2130706433:8000/"}\n'
            '  octalSvc: {kind: http, url: "http://0177.0.0.1:8000/"}\n'
        )
        err = io.StringIO()
        with self.assertRaises(CommandError):
            call_command("load_workflows", str(path), stderr=err)
        lines = err.getvalue().splitlines()
        for name, address in [
            ("metaSvc", "169.254.169.254 is a link-local address"),
            ("decimalSvc", "127.0.0.1 is a loopback address"),
            ("octalSvc", "127.0.0.1 is a loopback address"),
        ]:
            assert any(
                line.startswith(f"{path}:") and name in line and address in line for line in lines
            ), (name, lines)
        assert not Service.objects.exists()

    def test_dispatch_never_connects_to_a_refused_address_and_fails_the_step(self):
        service = ScriptedService(self.server)
        make_service("localSvc", "http", url=service.url)
        instance = start(simple_workflow("local", [{"id": "check", "service": "localSvc"}]))
        run_queued(instance)
        instance.refresh_from_db()
        assert service.received == []
        assert instance.status == "failed"
        assert "127.0.0.1 is a loopback address" in instance.error["detail"]

    def test_the_ping_shows_no_reply_body_and_follows_no_redirect(self):
        self.server.expect_request("/ping", method="POST").respond_with_data(
            "internal secret page", status=302, headers={"Location": "http://10.0.0.5/"}
        )
        service = make_service("pingSvc", "http", url=self.server.url_for("/ping"))
        with override_settings(HMS_PRIVATE_URL_ALLOW=["127.0.0.1"]):
            shown = ping(self.client, service)
        assert len(shown) == 1 and shown[0].startswith("pingSvc answered 302 in")
        assert "internal secret page" not in shown[0] and "10.0.0.5" not in shown[0]
        assert len(self.server.log) == 1

    def test_the_ping_refuses_a_private_address_without_sending(self):
        self.server.expect_request("/ping", method="POST").respond_with_data("pong")
        service = make_service("pingSvc", "http", url=self.server.url_for("/ping"))
        shown = ping(self.client, service)
        assert "is a loopback address" in shown[0]
        assert self.server.log == []


@override_settings(HMS_SERVICE_CONCURRENCY=1)
class ServiceConcurrencyTests(LocalServerMixin, TestCase):
    """Finding 13: calls to one HTTP service in flight at once are limited (per cluster), so a
    hanging service cannot occupy every worker; a run over the limit waits, unrun."""

    def setUp(self):
        self.slow = ScriptedService(self.server, "/slow")
        self.fast = ScriptedService(self.server, "/fast")
        make_service("slowSvc", "http", url=self.slow.url)
        make_service("fastSvc", "http", url=self.fast.url)
        self.slow_flow = simple_workflow("slow", [{"id": "check", "service": "slowSvc"}])
        self.fast_flow = simple_workflow("fast", [{"id": "check", "service": "fastSvc"}])

    def worker_runs(self, instance) -> StepRun:
        run = StepRun.objects.get(instance=instance)
        committed(tasks.run_step, str(run.pk), run.attempts)
        run.refresh_from_db()
        return run

    def test_a_run_of_a_service_at_its_limit_waits_unrun_and_other_services_go_on(self):
        in_flight = concurrency.slot(catalog.get_service("slowSvc"), holder="another worker")
        in_flight.__enter__()  # a call to slowSvc in flight in another worker of this cluster
        waiting = self.worker_runs(start(self.slow_flow))
        assert (waiting.state, waiting.attempts) == (RunState.QUEUED, 0)
        assert waiting.wake_at > timezone.now() and self.slow.received == []
        other = self.worker_runs(start(self.fast_flow))
        assert (other.state, len(self.fast.received)) == (RunState.SUCCEEDED, 1)
        in_flight.__exit__(None, None, None)  # that call ended
        waiting = self.worker_runs(waiting.instance)
        assert (waiting.state, waiting.attempts) == (RunState.SUCCEEDED, 1)
        assert [r.attempt for r in self.slow.received] == [1]

    def test_a_service_may_allow_more_calls_at_once(self):
        Service.objects.filter(name="slowSvc").update(concurrency=2)
        catalog.clear()
        with concurrency.slot(catalog.get_service("slowSvc"), holder="another worker"):
            run = self.worker_runs(start(self.slow_flow))
        assert run.state == RunState.SUCCEEDED


class HangingService:
    """`/hang` holds each request until released (or 60 s); `/fast` answers at once."""

    def __init__(self, server):
        self.release = threading.Event()
        self.held = 0
        self.lock = threading.Lock()
        server.expect_request("/hang", method="POST").respond_with_handler(self._hang)
        server.expect_request("/fast", method="POST").respond_with_json({"result": "ok"})
        self.server = server

    def _hang(self, request):
        with self.lock:
            self.held += 1
        self.release.wait(60)
        return Response('{"result": "ok"}', content_type="application/json")


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_four_hanging_calls_do_not_hold_up_another_services_step_on_two_workers(
    tmp_path, django_db_blocker
):
    """A real qcluster of 2 workers: 4 instances whose service hangs, then one whose service
    answers at once. The latter completes while the 4 calls are still held (no timing)."""
    with local_http_server() as server, file_database(tmp_path, django_db_blocker) as env:
        env |= {"HMS_WORKERS": "2"}
        service = HangingService(server)
        make_service("hangSvc", "http", url=server.url_for("/hang"), timeout_seconds=60)
        make_service("fastSvc", "http", url=server.url_for("/fast"))
        hanging = simple_workflow("hanging", [{"id": "check", "service": "hangSvc"}])
        quick = simple_workflow("quick", [{"id": "check", "service": "fastSvc"}])
        try:
            with running_cluster(env | {"HMS_TASK_TIMEOUT": "90"}) as cluster:
                slow = [runtime.start_instance(definition=hanging, payload={})[0] for _ in range(4)]
                wait_until(lambda: service.held >= 1, timeout=30, what="a held call")
                time.sleep(2)  # time for the second worker to take a hanging one too, if it may
                fast, _ = runtime.start_instance(definition=quick, payload={})
                wait_until(
                    lambda: WorkflowInstance.objects.get(pk=fast.pk).is_finished,
                    timeout=30,
                    what=f"the quick instance while {service.held} calls hang\n{cluster.output}",
                )
                assert WorkflowInstance.objects.get(pk=fast.pk).status == "completed"
                assert not service.release.is_set() and service.held == 1
                assert all(not WorkflowInstance.objects.get(pk=i.pk).is_finished for i in slow)
                service.release.set()
                wait_until(
                    lambda: all(WorkflowInstance.objects.get(pk=i.pk).is_finished for i in slow),
                    timeout=60,
                    what="the hanging instances once released",
                )
        finally:
            service.release.set()


class ConcurrencyFieldTests(TestCase):
    def test_a_services_file_sets_a_services_concurrency_and_refuses_nonsense(self):
        (svc,) = load_text(
            "services:\n  s: {kind: http, url: 'https://example.org/', concurrency: 3}\n",
            source="services.yaml",
        ).services
        assert svc.concurrency == 3
        with self.assertRaises(InvalidDefinition) as refused:
            load_text(
                "services:\n  s: {kind: http, url: 'https://example.org/', concurrency: 0}\n",
                source="services.yaml",
            )
        assert "concurrency must be a whole number from 1 to 1000" in str(refused.exception)
