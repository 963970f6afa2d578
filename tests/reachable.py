"""Whether `make test` runs its second pass, on PostgreSQL + Redis (the Makefile asks this).

    python tests/reachable.py "$TEST_DATABASE_URL" "$TEST_REDIS_URL"

Exit 0: both URLs are set and answer: run the pass. Otherwise it says why, and exits 3 (skip
the pass: a newcomer's machine without PostgreSQL or Redis still gets a green SQLite run) or,
when HMS_REQUIRE_FULL_CI is set (.ci/run sets it: the CI machine has both), 1: a CI run
cannot go green by skipping.
"""

import os
import sys

import dj_database_url
import psycopg
import redis

RUN, FAIL, SKIP = 0, 1, 3


def problem(database_url: str, redis_url: str) -> str:
    """Why the PostgreSQL + Redis pass cannot run, or "" when it can."""
    if not database_url or not redis_url:
        return "set TEST_DATABASE_URL and TEST_REDIS_URL to run it"
    db = dj_database_url.parse(database_url)
    try:
        psycopg.connect(
            dbname=db["NAME"],
            user=db["USER"],
            password=db["PASSWORD"] or None,
            host=db["HOST"],
            port=db["PORT"] or 5432,
            connect_timeout=3,
        ).close()
    except psycopg.Error as exc:
        return f"PostgreSQL at {db['HOST']}:{db['PORT']} does not answer: {exc}".rstrip()
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        return f"Redis at {redis_url} does not answer: {exc}"
    return ""


def required() -> bool:
    return os.environ.get("HMS_REQUIRE_FULL_CI", "").strip().lower() in {"1", "true", "yes"}


def main(database_url: str, redis_url: str) -> int:
    why = problem(database_url, redis_url)
    if not why:
        return RUN
    if required():
        print(
            f"== FAILED: HMS_REQUIRE_FULL_CI is set but the PostgreSQL + Redis run cannot run: {why}"
        )
        return FAIL
    print(f"== SKIPPED the PostgreSQL + Redis run: {why}")
    return SKIP


if __name__ == "__main__":
    sys.exit(main(*(sys.argv[1:3] + ["", ""])[:2]))
