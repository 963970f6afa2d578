"""Engine figures on one database and broker: run by bench/run.py as its own process.

    DATABASE_URL=... [REDIS_URL=...] DJANGO_SETTINGS_MODULE=bench.settings_bench \
        python -m bench.engine_bench [--quick] --viewflow-db URL --out FILE

The database must be empty (run.py makes it so). Starts `qcluster` (HMS_WORKERS=2) three
times: for the rates, for the statement counts, and for the counts with task emails on.
Writes a JSON document of raw samples; run.py takes the medians.
"""

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from bench import (  # noqa: E402
    common,
    dataset,
    engine_runs,
    http_steps,
    sqlcount,
    sweep_bench,
    viewflow_bench,
)
from bench.procs import peak_rss_mib, settle  # noqa: E402

RESULTS = common.ROOT / "bench" / "results"
# Instances per sample, one-row tasks per sample, rounds, latency samples, instances counted,
# seconds of idle cluster sampled for its background statements, whether the counts are
# repeated with task emails on (a second cluster) and whether the 3-step rate is also taken
# through the workers (both: the full run only).
SIZES = {
    "quick": {
        "three": 60,
        "tasks": 180,
        "seed": 40,
        "rounds": 1,
        "latency": 20,
        "count": 20,
        "idle_s": 1.0,
        "notify_counts": False,
        "workers_path": False,
    },
    "full": {
        "three": 200,
        "tasks": 300,
        "seed": 100,
        "rounds": 3,
        "latency": 150,
        "count": 100,
        "idle_s": 3.0,
        "notify_counts": True,
        "workers_path": True,
    },
}
ESCALATIONS = {"sqlite": 2_000, "postgresql": 10_000}


def cluster_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "HMS_WORKERS": "2", "HMS_NOTIFY_TASKS": "false", **extra}
    env.pop("HMS_BENCH_SQL_LOG", None)
    env.update(extra)
    return env


class Cluster:
    """A qcluster for the length of a `with` block; remembers its processes' peak RSS."""

    peak_mib = 0.0

    def __init__(self, name: str, **env: str):
        self.name, self.env = name, cluster_env(**env)

    def __enter__(self):
        log = RESULTS / f"qcluster-{self.name}.log"
        self.proc = common.start_qcluster(env=self.env, log_path=log)
        return self

    def __exit__(self, *exc):
        Cluster.peak_mib = max(Cluster.peak_mib, peak_rss_mib(self.proc.pid))
        common.stop(self.proc)


CALLERS = 2  # processes that start and decide, as the viewflow peer has two


def rates(defs: dict, size: dict, viewflow_db: str, cluster: "Cluster") -> dict:
    """Interleaved samples: three python steps, three http steps, one-row tasks, the seed
    shape, viewflow.

    Before each sample the cluster is left to finish what it still does (the monitor saves
    results after the rows are written), so no sample pays for the one before it. "three"
    and "seed" run the site's default (python steps in the callers, HMS_INLINE_PYTHON_STEPS);
    "three_workers" sends every step through the qcluster's two workers instead.
    """
    three, seed, three_http = defs["bench-three"], defs["building-permit"], defs["bench-three-http"]
    samples: dict[str, list] = {
        "three": [],
        "three_http": [],
        "three_workers": [],
        "tasks": [],
        "seed": [],
        "viewflow": [],
    }
    engine_runs.automated(three, 20)  # warm the caches that the callers inherit
    with workers_only():
        engine_runs.automated(three, 20)  # and the workers' caches
    engine_runs.automated(three_http, 20)  # the workers' pooled connections to the service
    engine_runs.one_row_tasks(30)
    engine_runs.with_a_person(seed, 10)
    idle = lambda: settle(cluster.proc.pid)  # noqa: E731
    for _ in range(size["rounds"]):
        idle()
        samples["three"].append(engine_runs.automated(three, size["three"], callers=CALLERS))
        if size["workers_path"]:
            idle()
            with workers_only():
                rate = engine_runs.automated(three, size["three"], callers=CALLERS)
            samples["three_workers"].append(rate)
        idle()
        samples["tasks"].append(engine_runs.one_row_tasks(size["tasks"]))
        idle()
        rate = engine_runs.automated(three_http, size["three"], callers=CALLERS)
        samples["three_http"].append(rate)
        idle()
        samples["seed"].append(engine_runs.with_a_person(seed, size["seed"], callers=CALLERS))
        idle()
        peer = viewflow_bench.run(viewflow_db, "measure", str(size["seed"]), str(CALLERS))
        samples["viewflow"].append(peer["rate"])
    idle()
    with workers_only():  # what a step that goes through the queue waits (http, retries)
        samples["latency_ms"] = engine_runs.queue_latency(three, size["latency"])
    idle()
    samples["task_latency_ms"] = engine_runs.task_latency(size["latency"])
    return samples


@contextlib.contextmanager
def workers_only():
    """HMS_INLINE_PYTHON_STEPS off in this driver: every step goes through the queue."""
    before, settings.HMS_INLINE_PYTHON_STEPS = settings.HMS_INLINE_PYTHON_STEPS, False
    try:
        yield
    finally:
        settings.HMS_INLINE_PYTHON_STEPS = before


REVIEW_SHAPES = {
    "reviews_sequential": dataset.SEQUENTIAL_REVIEWS["id"],
    "reviews_parallel": dataset.PARALLEL_REVIEWS["id"],
}


def counts(defs: dict, size: dict, *, notify: bool) -> dict:
    """Statements per instance by kind, on a cluster whose every process counts them."""
    log = RESULTS / f"sql-{os.getpid()}-{int(notify)}.log"
    log.unlink(missing_ok=True)
    os.environ["HMS_BENCH_SQL_LOG"] = str(log)
    settings.HMS_NOTIFY_TASKS = notify
    engine_runs.around = sqlcount.counting
    found = {}
    with Cluster("count", HMS_BENCH_SQL_LOG=str(log), HMS_NOTIFY_TASKS=str(notify).lower()) as c:
        engine_runs.automated(defs["bench-three"], 10)
        engine_runs.with_a_person(defs["building-permit"], 10)
        for shape in REVIEW_SHAPES.values():
            engine_runs.with_reviewers(defs[shape], 5)
        settle(c.proc.pid)
        mark = sqlcount.offset(log)
        time.sleep(size["idle_s"])
        found["idle_per_s"] = _per(sqlcount.read(log, mark), size["idle_s"])
        jobs = {
            "three": lambda n: engine_runs.automated(defs["bench-three"], n),
            "seed": lambda n: engine_runs.with_a_person(defs["building-permit"], n),
            "task": lambda n: engine_runs.one_row_tasks(n),
            **{
                name: lambda n, key=key: engine_runs.with_reviewers(defs[key], n)
                for name, key in REVIEW_SHAPES.items()
            },
        }
        for name, job in jobs.items():
            if notify and name != "seed":
                continue
            mark, began = sqlcount.offset(log), time.monotonic()
            job(size["count"])
            settle(c.proc.pid)  # the monitor saves the last results after the job returns
            seconds = time.monotonic() - began
            found[name] = _per(sqlcount.read(log, mark), size["count"])
            found[name]["seconds"] = seconds
    log.unlink(missing_ok=True)
    engine_runs.around = contextlib.nullcontext
    settings.HMS_NOTIFY_TASKS = False
    return found


def _per(counter, divisor: float) -> dict:
    return {kind: round(n / divisor, 2) for kind, n in counter.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--viewflow-db", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    size = SIZES["quick" if args.quick else "full"]
    logging.getLogger("django-q").setLevel(logging.WARNING)  # not a line per enqueue here
    settings.HMS_NOTIFY_TASKS = False
    call_command("migrate", verbosity=0, interactive=False)
    defs = dataset.install_workflows()
    engine_runs.prepare_rows(max(size["tasks"], size["count"], 30))
    name = connection.vendor
    common.progress(
        f"{name}: rates, {size['rounds']} interleaved rounds (ours, django-q2, viewflow)"
    )
    with http_steps.echo_service() as url, Cluster("rates") as cluster:
        defs["bench-three-http"] = http_steps.install(url)
        result = {"samples": rates(defs, size, args.viewflow_db, cluster)}
    common.progress(f"{name}: statements per instance")
    result["viewflow_sql"] = viewflow_bench.run(args.viewflow_db, "count")
    result["sql"] = counts(defs, size, notify=False)
    if size["notify_counts"]:
        result["sql_notify"] = counts(defs, size, notify=True)
    result["qcluster_peak_mib"] = Cluster.peak_mib
    common.progress(f"{name}: escalation sweep")
    tasks = ESCALATIONS[connection.vendor] // (5 if args.quick else 1)
    # One round: at today's ~70 tasks/s, 10,000 escalations take minutes (docs/BENCHMARKS.md).
    result["escalation"] = sweep_bench.escalation(rounds=1, tasks=tasks)
    Path(args.out).write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
