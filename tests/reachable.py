"""Whether `make test` runs its second pass, on PostgreSQL + Redis (the Makefile asks this).

    python tests/reachable.py "$TEST_DATABASE_URL" "$TEST_REDIS_URL"

Exit 0: both URLs are set and answer: run the pass. Otherwise it says why, and exits 3 (skip
the pass: a newcomer's machine without PostgreSQL or Redis still gets a green SQLite run) or,
when HMS_REQUIRE_FULL_CI is set (.ci/run sets it: the CI machine has both), 1: a CI run
cannot go green by skipping.
"""

import os
import sys
from pathlib import Path

import dj_database_url

# Run as a script by the Makefile: the project's root on the path, for the shared check.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.system.stores import unreachable  # noqa: E402

RUN, FAIL, SKIP = 0, 1, 3


def problem(database_url: str, redis_url: str) -> str:
    """Why the PostgreSQL + Redis pass cannot run, or "" when it can."""
    if not database_url or not redis_url:
        return "set TEST_DATABASE_URL and TEST_REDIS_URL to run it"
    name = dj_database_url.parse(database_url)["NAME"]
    return unreachable(database_url, redis_url, dbname=name)


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
