"""GET /healthz: 200 when the database, the broker and the workers are alive, 503 with the
reason otherwise; always JSON. The integration test stops a real cluster and sees 503."""

from datetime import timedelta
from unittest.mock import patch

import pytest
import requests
from django.conf import settings
from django.db import OperationalError
from django.test import TestCase, override_settings
from django.utils import timezone

from tests.integration_helpers import file_database
from tests.system import harness
from tests.system.harness import running_cluster, wait_until
from workflows_app.models import Heartbeat
from workflows_app.web import health


def beat(name: str, seconds_ago: float) -> None:
    Heartbeat.objects.update_or_create(
        name=name, defaults={"last_tick": timezone.now() - timedelta(seconds=seconds_ago)}
    )


class HealthTests(TestCase):
    def setUp(self):
        health._redis.cache_clear()
        self.addCleanup(health._redis.cache_clear)

    def get(self):
        response = self.client.get("/healthz")
        assert response["Content-Type"] == "application/json"
        return response, response.json()

    def test_fresh_ticks_answer_200_with_every_check_ok(self):
        beat("timer", 3)
        beat("sweep", 40)
        response, body = self.get()
        assert response.status_code == 200
        assert (body["status"], body["reasons"]) == ("ok", [])
        checks = body["checks"]
        assert checks["database"] == {"ok": True, "vendor": self.vendor()}
        broker_kind = "redis" if settings.REDIS_URL else "orm"
        assert checks["broker"]["ok"] and checks["broker"]["kind"] == broker_kind
        assert checks["broker"]["queued"] >= 0
        assert checks["workers"]["ok"]
        assert 3 <= checks["workers"]["timer"]["age_seconds"] < 10
        assert 40 <= checks["workers"]["sweep"]["age_seconds"] < 50

    def vendor(self) -> str:
        from django.db import connection

        return connection.vendor

    def test_a_stale_timer_tick_answers_503_saying_the_workers_are_stopped(self):
        beat("timer", 120)
        response, body = self.get()
        assert response.status_code == 503
        assert body["status"] == "unhealthy"
        assert body["reasons"] == [
            "workers: no worker timer tick for 120 s (limit 60 s): "
            "the qcluster workers are stopped or frozen"
        ]
        assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]

    def test_no_tick_at_all_answers_503_saying_to_start_the_workers(self):
        response, body = self.get()
        assert response.status_code == 503
        assert body["reasons"] == ["workers: no worker has ever ticked: start `manage.py qcluster`"]
        assert body["checks"]["workers"]["timer"] == {"last_tick": None, "age_seconds": None}

    def test_a_sweep_that_stopped_answers_503_but_one_not_yet_run_does_not(self):
        beat("timer", 1)
        assert self.get()[0].status_code == 200  # a fresh deployment: no sweep yet
        beat("sweep", 600)
        response, body = self.get()
        assert response.status_code == 503
        assert "the django-q2 scheduler is not running" in body["reasons"][0]

    @override_settings(HMS_HEALTH_STALE_SECONDS=5)
    def test_the_staleness_limit_comes_from_the_setting(self):
        beat("timer", 8)
        response, body = self.get()
        assert response.status_code == 503
        assert "(limit 5 s)" in body["reasons"][0]

    def test_a_broken_database_answers_503_in_json(self):
        beat("timer", 1)
        with patch.object(health.connection, "cursor", side_effect=OperationalError("gone")):
            response, body = self.get()
        assert response.status_code == 503
        assert body["checks"]["database"] == {
            "ok": False,
            "reason": "database unreachable (OperationalError)",
        }
        assert body["reasons"][0] == "database: database unreachable (OperationalError)"
        assert "gone" not in response.content.decode()  # details go to the log only

    @override_settings(REDIS_URL="redis://127.0.0.1:1/0")
    def test_an_unreachable_redis_answers_503(self):
        beat("timer", 1)
        response, body = self.get()
        assert response.status_code == 503
        assert body["checks"]["broker"] == {
            "ok": False,
            "reason": "broker unreachable (ConnectionError)",
        }

    def test_other_methods_get_405_in_json_and_answers_are_never_cached(self):
        response = self.client.post("/healthz")
        assert response.status_code == 405
        assert response.json()["error"] == "method_not_allowed"
        beat("timer", 1)
        assert "no-store" in self.client.get("/healthz")["Cache-Control"]
        assert self.client.head("/healthz").status_code == 200

    def test_only_the_named_checks_run_so_a_web_probe_ignores_stopped_workers(self):
        response = self.client.get("/healthz?only=database,broker")
        assert response.status_code == 200
        assert set(response.json()["checks"]) == {"database", "broker"}
        assert self.client.get("/healthz?only=workers").status_code == 503

    def test_an_unknown_check_name_is_a_400_in_json(self):
        response = self.client.get("/healthz?only=database,disk")
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_request",
            "detail": "unknown checks ['disk']; use ['database', 'broker', 'workers']",
        }

    @override_settings(SECURE_SSL_REDIRECT=True)
    def test_health_is_not_redirected_to_https_while_pages_are(self):
        beat("timer", 1)
        assert self.client.get("/healthz").status_code == 200
        assert self.client.get("/board/").status_code == 301


@pytest.mark.integration
def test_healthz_through_gunicorn_turns_503_once_the_cluster_stops(tmp_path, django_db_blocker):
    """A monitor's view: a real cluster ticks, /healthz is 200; the cluster stops, it is 503."""
    if settings.REDIS_URL:
        pytest.skip("runs in the SQLite pass; the chaos run checks /healthz on PostgreSQL + Redis")
    port = harness.free_port()
    url = f"http://127.0.0.1:{port}/healthz"
    # Ticks come at most every 10 s, so the limit must exceed that to stay 200 while it runs.
    with file_database(tmp_path, django_db_blocker) as env:
        web_env = env | {"HMS_HEALTH_STALE_SECONDS": "12"}
        web = harness.start_gunicorn(env=web_env, port=port, log_path=tmp_path / "gunicorn.log")
        try:
            assert requests.get(url, timeout=30).status_code == 503  # no worker yet
            with running_cluster(env | {"HMS_WORKERS": "1"}) as cluster:
                body = wait_until(lambda: _answer(url, 200), timeout=30, what="/healthz 200")
                assert body["checks"]["workers"]["timer"]["age_seconds"] < 12
                cluster.stop()
                body = wait_until(lambda: _answer(url, 503), timeout=30, what="/healthz 503")
            assert "the qcluster workers are stopped or frozen" in body["reasons"][0]
            assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]
        finally:
            harness.stop(web, grace=5)


def _answer(url: str, status: int) -> dict | None:
    response = requests.get(url, timeout=5)
    return response.json() if response.status_code == status else None
