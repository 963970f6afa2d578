"""A database that cannot be reached or written answers 503 with Retry-After, never a 500
(docs/deploy.md, database connections; docs/api.md, errors): JSON under /api/, a plain page
elsewhere, and /healthz fails when the database can be read but not written."""

import sqlite3
from unittest.mock import patch

import psycopg
import pytest
import requests
from django.db import OperationalError, connections
from django.test import Client, TestCase
from psycopg_pool import ConnectionPool, PoolTimeout

from tests.factories import make_token, simple_workflow, start
from tests.integration_helpers import file_database, subprocess_env
from tests.web_servers import free_port, web_server
from workflows_app.web.unavailable import database_unavailable

INSTANCE = "8f1d1b5e-6e0c-4f57-9a39-3c3d1f0a7b21"


def real_pool_timeout() -> OperationalError:
    """The error Django raises when its pool lends no connection in time: psycopg_pool's
    PoolTimeout from a real (tiny) pool, wrapped as Django wraps driver errors."""
    pool = ConnectionPool(
        f"postgresql://nobody@127.0.0.1:{free_port()}/none", min_size=0, max_size=1, open=True
    )
    try:
        pool.getconn(timeout=0.2)
    except PoolTimeout as exc:
        wrapped = OperationalError(*exc.args)  # as django.db.utils.DatabaseErrorWrapper does
        wrapped.__cause__ = exc
        return wrapped
    finally:
        pool.close(timeout=0)
    raise AssertionError("a pool without a server lent a connection")


class UnavailableAnswersTests(TestCase):
    def setUp(self):
        self.token = make_token()
        self.instance = start(simple_workflow())

    def failing(self, exc: Exception):
        return patch("workflows_app.queries.progress.instance_with_runs", side_effect=exc)

    def test_an_exhausted_pool_under_the_api_answers_503_json_with_retry_after(self):
        with self.failing(real_pool_timeout()):
            response = self.client.get(
                f"/api/workflows/{self.instance.uuid}/status",
                headers={"authorization": f"Bearer {self.token}"},
            )
        assert response.status_code == 503
        assert response["Retry-After"] == "5"
        assert response.json() == {
            "error": "unavailable",
            "detail": "the database is unavailable for the moment: try again in 5 s",
        }

    def test_an_exhausted_pool_on_a_page_answers_a_plain_503_page(self):
        with self.failing(real_pool_timeout()):
            response = self.client.get(f"/track/{self.instance.uuid}/")
        assert response.status_code == 503
        assert response["Retry-After"] == "5"
        assert response["Content-Type"] == "text/html; charset=utf-8"
        assert "Try again shortly" in response.content.decode()

    def test_the_plain_page_speaks_the_visitors_language(self):
        with self.failing(real_pool_timeout()):
            response = self.client.get(f"/track/{self.instance.uuid}/", HTTP_ACCEPT_LANGUAGE="es")
        page = response.content.decode()
        assert response.status_code == 503 and '<html lang="es">' in page
        assert "Vuelva a intentarlo en unos instantes" in page and "Try again" not in page

    def test_a_locked_sqlite_file_in_a_middleware_answers_503_too(self):
        """The session is saved after the view, by a middleware: still a 503, not a 500."""
        locked = OperationalError("database is locked")
        locked.__cause__ = sqlite3.OperationalError("database is locked")
        client = Client(raise_request_exception=False)
        saving = "django.contrib.sessions.middleware.SessionMiddleware.process_response"
        with patch(saving, side_effect=locked):
            response = client.get("/accounts/login/")
        assert response.status_code == 503
        assert response["Retry-After"] == "5"

    def test_other_database_errors_stay_500s(self):
        """Only 'not now' is a 503: a bug (a missing table, a broken query) is still a 500."""
        broken = OperationalError("no such table: nowhere")
        broken.__cause__ = sqlite3.OperationalError("no such table: nowhere")
        with self.failing(broken):
            response = self.client.get(
                f"/api/workflows/{self.instance.uuid}/status",
                headers={"authorization": f"Bearer {self.token}"},
            )
        assert response.status_code == 500
        assert "Retry-After" not in response


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (psycopg.OperationalError("connection refused"), True),  # no SQLSTATE: no server
        (psycopg.errors.TooManyConnections("sorry, too many clients already"), True),
        (psycopg.errors.AdminShutdown("terminating connection"), True),
        (psycopg.errors.CannotConnectNow("the database system is starting up"), True),
        (psycopg.errors.ReadOnlySqlTransaction("read-only transaction"), True),
        (psycopg.errors.DiskFull("could not extend file"), True),
        (psycopg.errors.UniqueViolation("duplicate key"), False),
        (psycopg.errors.UndefinedTable("relation does not exist"), False),
        (sqlite3.OperationalError("database is locked"), True),
        (sqlite3.OperationalError("no such table: x"), False),
        (ValueError("database is locked"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_which_database_errors_mean_try_again_later(error, unavailable):
    wrapped = OperationalError(str(error))
    wrapped.__cause__ = error
    assert database_unavailable(wrapped) is unavailable


@pytest.mark.integration
def test_a_locked_sqlite_file_answers_503_and_fails_healthz(tmp_path, django_db_blocker):
    """Security finding 12: another connection holds the SQLite file (BEGIN EXCLUSIVE) past
    the busy timeout: a start answers 503 with Retry-After, not a 500 after 20 s, /healthz
    fails, and reads still work; once the lock goes, both are fine again."""
    with file_database(tmp_path, django_db_blocker):
        token = make_token()
        instance = start(simple_workflow(public=True))
        shared = connections["default"]
        shared.close()  # reconnect with a short busy timeout: this test need not wait 20 s
        options = {**shared.settings_dict["OPTIONS"], "timeout": 0.3}
        shared.settings_dict = {**shared.settings_dict, "OPTIONS": options}
        client = Client(headers={"authorization": f"Bearer {token}"})
        body = {"workflowId": "simple", "payload": {}}
        holder = sqlite3.connect(tmp_path / "db.sqlite3", isolation_level=None, timeout=0)
        try:
            holder.execute("BEGIN EXCLUSIVE")
            response = client.post("/api/workflows/start", body, content_type="application/json")
            assert response.status_code == 503
            assert response["Retry-After"] == "5"
            assert response.json()["error"] == "unavailable"
            health = client.get("/healthz?only=database")
            assert health.status_code == 503
            reason = health.json()["checks"]["database"]["reason"]
            assert reason == "the database answers reads but refuses writes (OperationalError)"
            assert client.get(f"/track/{instance.uuid}/").status_code == 200  # reads go on
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        response = client.post("/api/workflows/start", body, content_type="application/json")
        assert response.status_code == 201
        assert client.get("/healthz?only=database").status_code == 200


@pytest.mark.integration
def test_a_database_server_that_is_down_answers_503_everywhere(tmp_path):
    """gunicorn with a pool whose PostgreSQL does not answer: every request waits the pool's
    time-out, then gets 503 with Retry-After (JSON under /api/), and /healthz is unhealthy."""
    env = subprocess_env(
        database=tmp_path / "unused.sqlite3",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/hms",
        DATABASE_POOL_TIMEOUT="1",
    )
    with web_server("gunicorn", env, log_path=tmp_path / "web.log", workers=1) as url:
        api = requests.get(
            f"{url}/api/workflows/{INSTANCE}/status",
            headers={"Authorization": "Bearer whatever"},
            timeout=30,
        )
        start_answer = requests.post(
            f"{url}/api/workflows/start", json={"workflowId": "x", "payload": {}}, timeout=30
        )
        page = requests.get(f"{url}/track/{INSTANCE}/", timeout=30)
        health = requests.get(f"{url}/healthz?only=database", timeout=30)
    for answer in (api, start_answer):
        assert (answer.status_code, answer.headers["Retry-After"]) == (503, "5")
        assert answer.json()["error"] == "unavailable"
    assert (page.status_code, page.headers["Retry-After"]) == (503, "5")
    assert "Try again shortly" in page.text
    assert health.status_code == 503
    assert health.json()["checks"]["database"]["ok"] is False
