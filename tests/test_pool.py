"""PostgreSQL connections are a budget (docs/deploy.md, database connections): a web process
holds at most DATABASE_POOL_SIZE connections however many requests it serves at once.

Issue 13 found runserver holding 94 idle connections under 40 polls a second (a connection per
request thread, kept 60 s) until PostgreSQL refused new ones and the API answered 500. Here a
real server with a pool of 2 is polled by more threads than its pools hold, while another
connection counts the server's sessions in pg_stat_activity.
"""

import threading
import time
from collections import Counter

import psycopg
import pytest
import requests
from django.db import connection

from tests.factories import make_token, simple_workflow, start
from tests.integration_helpers import PROJECT
from tests.web_servers import web_server

POOL_SIZE = 2
THREADS = 12  # more than any of the pools below holds
SECONDS = 5.0
MAX_REQUESTS_PER_THREAD = 150

pytestmark = [pytest.mark.postgres, pytest.mark.integration]


def _server_env(application_name: str) -> dict[str, str]:
    import os

    db = connection.settings_dict
    url = (
        f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
        f"?application_name={application_name}"
    )
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.process_settings",
        "DATABASE_URL": url,
        "DATABASE_POOL_SIZE": str(POOL_SIZE),
        "PYTHONPATH": str(PROJECT),
    }


class SessionCounter(threading.Thread):
    """Counts the server's sessions in pg_stat_activity every 20 ms; keeps the peak."""

    def __init__(self, application_name: str):
        super().__init__(daemon=True)
        self.application_name, self.peak, self.samples = application_name, 0, 0
        self.stopping = threading.Event()

    def run(self) -> None:
        db = connection.settings_dict
        with psycopg.connect(
            dbname=db["NAME"],
            user=db["USER"],
            password=db["PASSWORD"] or None,
            host=db["HOST"],
            port=db["PORT"] or 5432,
            autocommit=True,
        ) as counter:
            while not self.stopping.wait(0.02):
                (count,) = counter.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                    (self.application_name,),
                ).fetchone()
                self.peak, self.samples = max(self.peak, count), self.samples + 1


def _poll(url: str, token: str, deadline: float, statuses: Counter, lock: threading.Lock):
    with requests.Session() as session:
        for _ in range(MAX_REQUESTS_PER_THREAD):
            if time.monotonic() >= deadline:
                return
            try:
                status = session.get(
                    url, headers={"Authorization": f"Bearer {token}"}, timeout=30
                ).status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            with lock:
                statuses[status] += 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("server", "processes"), [("runserver", 1), ("gunicorn", 2)])
def test_more_polling_threads_than_the_pool_holds_get_no_5xx_and_bounded_connections(
    server, processes, tmp_path
):
    if connection.vendor != "postgresql":
        pytest.skip(
            "needs PostgreSQL: runs in the PostgreSQL + Redis pass of `make test` "
            "(TEST_DATABASE_URL and TEST_REDIS_URL set)"
        )
    token = make_token()
    instance = start(simple_workflow())
    name = f"hms-pool-test-{server}"
    env = _server_env(name)
    with web_server(server, env, log_path=tmp_path / "web.log", workers=processes) as base:
        url = f"{base}/api/workflows/{instance.uuid}/status"
        counter = SessionCounter(name)
        counter.start()
        statuses: Counter = Counter()
        lock = threading.Lock()
        deadline = time.monotonic() + SECONDS
        pollers = [
            threading.Thread(target=_poll, args=(url, token, deadline, statuses, lock))
            for _ in range(THREADS)
        ]
        for poller in pollers:
            poller.start()
        for poller in pollers:
            poller.join(timeout=SECONDS + 60)
        counter.stopping.set()
        counter.join(timeout=10)
    total = sum(statuses.values())
    print(
        f"\n{server}: {total} status requests from {THREADS} threads in {SECONDS:g} s, "
        f"answers {dict(statuses)}; sessions peak {counter.peak} "
        f"(bound {processes} x {POOL_SIZE}) over {counter.samples} samples"
    )
    assert set(statuses) == {200}, statuses  # no 5xx, no refused or dropped request
    assert total >= THREADS
    assert 1 <= counter.peak <= processes * POOL_SIZE
