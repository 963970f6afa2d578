"""Profile the engine's write path in one process: instances of the three-step python
workflow started and run to their end in the caller (HMS_INLINE_PYTHON_STEPS, the default),
as the bench's callers do; or the seed shape with its review decided.

    DJANGO_SETTINGS_MODULE=bench.settings_bench DATABASE_URL=sqlite:///bench/results/prof_engine.sqlite3 \\
        python -m bench.profile_engine [three|seed] [COUNT]

Prints the time per instance and cProfile's top functions by cumulative and by own time.
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

from bench import dataset  # noqa: E402
from workflows_app import runtime  # noqa: E402
from workflows_app.models import RunState, StepRun  # noqa: E402


def life(definition, n: int, shape: str) -> None:
    instance, _ = runtime.start_instance(definition=definition, payload={"n": n})
    if shape == "seed":
        run = StepRun.objects.get(instance=instance, state=RunState.WAITING)
        runtime.complete_task(run_id=run.pk, result="approved", actor="user:bench")


def main() -> None:
    shape = sys.argv[1] if len(sys.argv) > 1 else "three"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    call_command("migrate", verbosity=0, interactive=False)
    key = {"three": "bench-three", "seed": "building-permit"}[shape]
    definition = dataset.install_workflows()[key]
    with patch("workflows_app.runtime.queue.async_task"):  # nothing goes through a worker
        for n in range(20):
            life(definition, n, shape)  # warm the per-process caches
        began = time.perf_counter()
        for n in range(count):
            life(definition, n, shape)
        took = time.perf_counter() - began
        print(f"{count} instances ({shape}): {took / count * 1000:.2f} ms each")
        profile = cProfile.Profile()
        profile.enable()
        for n in range(count):
            life(definition, n, shape)
        profile.disable()
    stats = pstats.Stats(profile)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
