"""The cache is shared by every process, as production runs it (a file cache on one machine
without REDIS_URL, Redis with it), while the rest of the suite forces an in-memory cache per
test process. Two separate processes (`manage.py shell` with the project's settings) on one
SQLite file: sign-in failures in one lock the other out, and the board snapshot one computed
is what the other shows. A process with a cache of its own (the control) sees neither.
"""

import json
import os
import subprocess
import sys

import pytest
import redis
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from tests.factories import make_definition, make_seed_services, make_user, start
from tests.integration_helpers import PROJECT, file_database

pytestmark = pytest.mark.integration

# Each process reports what a user would see: the status of its sign-in attempts and the
# number of applications the board shows as waiting. The board's snapshot stays fresh for an
# hour in these processes, so what the second one shows cannot depend on how fast it started.
SCRIPT = """
import json
from django.test import Client
from django.utils import timezone
from workflows_app.queries import stats
stats.BOARD_TTL_SECONDS = 3600
client = Client()
attempts = [client.post("/accounts/login/", {"username": "rita", "password": password})
            for password in PASSWORDS]
board = client.get("/board/")
print("RESULT " + json.dumps({
    "signIns": [a.status_code for a in attempts],
    "board": board.status_code,
    "waiting": sum(w.waiting for w in stats.board(now=timezone.now())),
}))
"""


def in_new_process(env: dict[str, str], passwords: list[str]) -> dict:
    code = SCRIPT.replace("PASSWORDS", repr(passwords))
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout + done.stderr
    return json.loads(lines[-1].removeprefix("RESULT "))


def _redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("set TEST_REDIS_URL (make test's PostgreSQL + Redis settings) for Redis")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis at {url} does not answer: {exc}")
    return url


def _forget_our_keys(url: str) -> None:
    client = redis.Redis.from_url(url)
    for key in client.scan_iter("*hms:*"):
        client.delete(key)


@pytest.mark.parametrize("cache", ["file", "redis"])
def test_two_processes_share_the_sign_in_lockout_and_the_board_snapshot(
    cache, tmp_path, django_db_blocker
):
    with file_database(tmp_path, django_db_blocker) as env:
        env = {**env, "PYTHONPATH": str(PROJECT)}
        if cache == "file":
            env["HMS_TEST_CACHE_DIR"] = str(tmp_path / "cache")
        else:
            env["REDIS_URL"] = _redis_url()
            _forget_our_keys(env["REDIS_URL"])
        make_seed_services()
        user = make_user("rita", "plan-reviewers")
        # A hash the site's own hashers read (the suite hashes with MD5 for speed).
        user.password = PBKDF2PasswordHasher().encode("pw", "saltsaltsalt", iterations=1000)
        user.save(update_fields=["password"])
        definition = make_definition(public=True)
        start(definition, {"applicant": "Ada"})  # waits for a reviewer

        first = in_new_process(env, ["wrong"] * 5)
        assert first["signIns"] == [200] * 5  # the form again, "do not match"
        assert (first["board"], first["waiting"]) == (200, 1)

        start(definition, {"applicant": "Bea"})  # a second application waits now
        second = in_new_process(env, ["pw"])
        assert second["signIns"] == [429]  # locked out by the first process's failures
        assert second["waiting"] == 1  # the first process's snapshot, not its own count

        if cache == "redis":
            _forget_our_keys(env["REDIS_URL"])
            return
        # The control: a process with a cache folder of its own is neither locked out nor
        # shown the snapshot, so the assertions above could not pass without sharing.
        own = in_new_process(env | {"HMS_TEST_CACHE_DIR": str(tmp_path / "other")}, ["pw"])
        assert own["signIns"] == [302] and own["waiting"] == 2
