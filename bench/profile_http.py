"""Profile the HTTP path in one process: a worker's job for a workflow of three `http` steps
against bench/echo_service.py, from the claim of the first step to the end of the third.

    DJANGO_SETTINGS_MODULE=bench.settings_bench DATABASE_URL=sqlite:///bench/results/prof.sqlite3 \\
        python -m bench.profile_http [COUNT]

Prints the time per instance and cProfile's top functions by cumulative time (the issue's
"profile an http step from commit to the next step's dispatch").
"""

import cProfile
import pstats
import sys
import time
from pathlib import Path
from unittest.mock import patch

import django

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
django.setup()

from django.core.management import call_command  # noqa: E402

from bench import http_steps  # noqa: E402
from workflows_app import runtime, tasks  # noqa: E402


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    call_command("migrate", verbosity=0, interactive=False)
    sent: list[tuple] = []
    with (
        http_steps.echo_service() as url,
        patch("workflows_app.runtime.queue.async_task", lambda f, *a, **k: sent.append(a)),
    ):
        definition = http_steps.install(url)
        for _ in range(20):  # warm caches and the pooled connection
            runtime.start_instance(definition=definition, payload={})
        for args in sent:
            tasks.run_step(*args)
        sent.clear()
        for i in range(count):
            runtime.start_instance(definition=definition, payload={"n": i})
        profile = cProfile.Profile()
        began = time.perf_counter()
        profile.enable()
        for args in sent:
            tasks.run_step(*args)
        profile.disable()
        took = time.perf_counter() - began
    print(f"{count} instances of 3 http steps in one worker: {took / count * 1000:.2f} ms each")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(45)


if __name__ == "__main__":
    main()
