"""Chaos run under polling load: HTTP steps through a flaky service and human steps decided
through the API, two qcluster processes SIGKILLed at random (a whole cluster, or one worker
process), while citizens poll their status through the web server (docs/chaos.md).

    make chaos                                   # full size, PostgreSQL + Redis, gunicorn
    CHAOS_WEB=runserver make chaos               # the web process as `make run` serves it
    CHAOS_DB=sqlite make chaos                   # SQLite + the ORM broker
    CHAOS_SIZE=small make chaos                  # the CI size (tests/system/test_chaos_small.py)

Environment: CHAOS_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/hms_chaos; it is
dropped and created again, so its name must contain "chaos"), CHAOS_REDIS_URL (default
redis://127.0.0.1:6379/10; flushed), CHAOS_SEED (repeats the random choices, not the timing),
CHAOS_INSTANCES. Exit 0: every invariant held (tests/system/chaos_checks.py); 1: some broke
(listed); 2: PostgreSQL or Redis unreachable. Logs: var/chaos/.
"""

import os
import random
import secrets
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from tests.system import harness, stores  # noqa: E402
from tests.system.chaos_report import report  # noqa: E402
from tests.system.chaos_run import Chaos  # noqa: E402
from tests.system.chaos_setup import (  # noqa: E402
    BEHAVIOUR,
    CLUSTER_ENV,
    SIZES,
    WORKDIR,
    load_workflows,
)
from tests.system.flaky_service import FlakyService  # noqa: E402


def main() -> int:
    size = SIZES[os.environ.get("CHAOS_SIZE", "full")]
    if count := os.environ.get("CHAOS_INSTANCES"):
        size = replace(size, instances=int(count))
    web = os.environ.get("CHAOS_WEB", "gunicorn")
    database = os.environ.get("CHAOS_DB", "postgres")
    if web not in ("gunicorn", "runserver") or database not in ("postgres", "sqlite"):
        print("chaos: CHAOS_WEB is gunicorn or runserver, CHAOS_DB postgres or sqlite")
        return 2
    db_url = os.environ.get("CHAOS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hms_chaos")
    redis_url = os.environ.get("CHAOS_REDIS_URL", "redis://127.0.0.1:6379/10")
    seed = int(os.environ.get("CHAOS_SEED") or time.time())
    if database == "sqlite":
        db_url, redis_url = f"sqlite:///{WORKDIR / 'chaos.sqlite3'}", ""
    elif why := stores.unreachable(db_url, redis_url):
        print(f"chaos: SKIPPED, {why}")
        return 2
    elif "chaos" not in db_url.rpartition("/")[2]:
        print(f"chaos: refusing to drop {db_url}: the database name must contain 'chaos'")
        return 2
    variant = f"{web}/{database}"
    print(f"chaos: {variant}, {size.instances} instances, seed {seed}, {db_url} {redis_url}")
    env = _prepare(db_url, redis_url)
    flaky = FlakyService(log_path=WORKDIR / "flaky.jsonl", behaviour=BEHAVIOUR, seed=seed)
    flaky.start()
    workflows = load_workflows(flaky.url, size)
    chaos = Chaos(size, env, random.Random(seed), workflows, flaky, web=web, db_url=db_url)
    try:
        outcome = chaos.run()
    finally:
        chaos.shutdown()
        flaky.stop()
    return report(chaos, outcome, variant=variant, seed=seed)


def _prepare(db_url: str, redis_url: str) -> dict[str, str]:
    """A fresh database and queue; Django set up in this process on the same settings."""
    WORKDIR.mkdir(parents=True, exist_ok=True)
    for old in [*WORKDIR.glob("*.log"), *WORKDIR.glob("chaos.sqlite3*")]:
        old.unlink()
    if redis_url:
        stores.recreate_postgres_database(db_url)
        stores.flush_redis(redis_url)
    extra = {**CLUSTER_ENV, "SECRET_KEY": secrets.token_urlsafe(40)}
    env = harness.django_env(database_url=db_url, redis_url=redis_url, LOG_LEVEL="INFO", **extra)
    os.environ.update({k: v for k, v in env.items() if k != "DJANGO_SETTINGS_MODULE"})
    os.environ.pop("REDIS_URL", None) if not redis_url else None
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.process_settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return env


if __name__ == "__main__":
    harness.stop_servers_on_sigterm()
    sys.exit(main())
