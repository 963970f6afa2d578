"""Turning raw samples into figures: medians, ratios against the baselines, targets, the doc."""

import statistics
from dataclasses import dataclass
from pathlib import Path

from bench import common
from bench.machine import machine  # noqa: F401 - run.py reads it from here

BACKENDS = {"sqlite": "SQLite + ORM broker", "postgresql": "PostgreSQL + Redis"}
ANALYSIS = Path(__file__).with_name("analysis.md")


@dataclass(frozen=True, slots=True)
class Row:
    figure: str
    backend: str
    ours: str
    baseline: str
    ratio: str
    target: str
    met: str  # "yes", "NO" or "" (no target)


def median(values) -> float:
    return statistics.median(values) if values else float("nan")


def round_ratio(ours: list[float], base: list[float], *, per: float = 1.0) -> float:
    """The median of the ratios taken within each round (ours against the baseline measured
    next to it, divided by `per`): a round slowed by the machine slows both sides."""
    return median([o / (b / per) for o, b in zip(ours, base, strict=True)])


def round_ratios(ours: list[float], base: list[float], *, per: float = 1.0) -> list[float]:
    """The ratio within each round (ours against the baseline measured next to it)."""
    return [o / (b / per) for o, b in zip(ours, base, strict=True)]


def ratio_text(ratios: list[float]) -> str:
    """The median of the per-round ratios, with their min and max when there are several."""
    if len(ratios) < 2:
        return f"{median(ratios):.2f}×"
    return f"{median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f})"


def check_rounds(ratios: list[float], target: float | None) -> str:
    """ "yes" when every round meets the target, "median only" when the median does, else NO."""
    if target is None:
        return ""
    if min(ratios) >= target:
        return "yes"
    return "median only" if median(ratios) >= target else "NO"


def _check(value: float, target: float | None, *, at_most: bool = False) -> str:
    if target is None:
        return ""
    return "yes" if (value <= target if at_most else value >= target) else "NO"


def rows(results: dict) -> list[Row]:
    found: list[Row] = []
    for backend, runs in results.items():
        if "skipped" in runs:
            found.append(
                Row("all figures", BACKENDS[backend], "skipped", runs["skipped"], "", "", "")
            )
            continue
        found += _engine_rows(BACKENDS[backend], runs["engine"], backend)
        if "http" in runs:  # no C compiler, no HTTP figures
            found += _http_rows(BACKENDS[backend], runs["http"])
            if "runserver" in runs["http"]:
                found += _http_rows(
                    BACKENDS[backend], runs["http"]["runserver"], server="runserver"
                )
    return found


def _engine_rows(name: str, engine: dict, backend: str) -> list[Row]:
    s = engine["samples"]
    three, tasks, seed, peer = (median(s[k]) for k in ("three", "tasks", "seed", "viewflow"))
    e2e = round_ratios(s["three"], s["tasks"], per=3)
    vs_peer = round_ratios(s["seed"], s["viewflow"])
    http3 = s.get("three_http") or []
    workers = s.get("three_workers")
    sql, notify, vf = engine["sql"], engine.get("sql_notify"), engine["viewflow_sql"]
    lat = s["latency_ms"]
    lat_med, lat_p99 = median(lat), common.percentile(lat, 99)
    esc = engine["escalation"]["samples"]
    esc_rate = median([e["tasks"] / e["seconds"] for e in esc])
    esc_target = 1000.0 if backend == "postgresql" else None
    extra_notify = notify and (
        notify["seed"].get("engine", 0)
        + notify["seed"].get("broker", 0)
        - (sql["seed"].get("engine", 0) + sql["seed"].get("broker", 0))
    )
    return [
        Row(
            "End to end, 3 python steps (instances/s)",
            name,
            f"{three:.1f}",
            f"{tasks:.1f} one-row tasks/s ÷ 3 = {tasks / 3:.1f}",
            ratio_text(e2e),
            "≥ 1.0×",
            check_rounds(e2e, 1.0),
        ),
        Row(
            "End to end, 3 HTTP steps (instances/s)",
            name,
            f"{median(http3):.1f}" if http3 else "not measured",
            f"{tasks:.1f} one-row tasks/s ÷ 3 = {tasks / 3:.1f}",
            ratio_text(round_ratios(http3, s["tasks"], per=3)) if http3 else "",
            "≥ 1.0×",
            check_rounds(round_ratios(http3, s["tasks"], per=3), 1.0) if http3 else "",
        ),
        Row(
            "End to end, 3 python steps, all through the workers",
            name,
            f"{median(workers):.1f}" if workers else "full run only",
            f"{tasks:.1f} one-row tasks/s ÷ 3 = {tasks / 3:.1f}",
            ratio_text(round_ratios(workers, s["tasks"], per=3)) if workers else "",
            "",
            "",
        ),
        Row(
            "With a person, seed shape (instances/s)",
            name,
            f"{seed:.1f}",
            f"viewflow 2.4: {peer:.1f}",
            ratio_text(vs_peer),
            "≥ 1.5×",
            check_rounds(vs_peer, 1.5),
        ),
        Row(
            "SQL per seed-shape instance (data statements)",
            name,
            f"{sql['seed'].get('engine', 0):.1f} engine (steady state 11) + "
            f"{sql['seed'].get('broker', 0):.1f} broker",
            f"viewflow 2.4: {vf['data']}",
            f"{sql['seed'].get('engine', 0) / vf['data']:.2f}×",
            "≤ 15",
            # Above 11 only by cache refreshes per second (5-s service cache), not per instance.
            _check(round(sql["seed"].get("engine", 0)), 15.0, at_most=True),
        ),
        Row(
            "SQL per 3-step instance (data statements)",
            name,
            f"{sql['three'].get('engine', 0):.1f} engine + {sql['three'].get('broker', 0):.1f} broker",
            f"one-row task: {sql['task'].get('engine', 0):.1f} + {sql['task'].get('broker', 0):.1f} broker",
            "",
            "",
            "",
        ),
        _reviews_row(name, sql),
        Row(
            "Task emails on (HMS_NOTIFY_TASKS), seed shape",
            name,
            f"+{extra_notify:.1f} statements/instance" if notify else "full run only",
            "emails off",
            "",
            "",
            "",
        ),
        Row(
            "Queue latency, commit → first step (ms)",
            name,
            f"median {lat_med:.1f}, p99 {lat_p99:.1f}",
            _task_latency(s),
            _latency_ratio(lat_med, s),
            "median ≤ 10 on Redis",
            _check(lat_med, 10.0, at_most=True) if backend == "postgresql" else "",
        ),
        Row(
            "Escalation sweep (overdue tasks/s)",
            name,
            f"{esc_rate:.0f} ({esc[0]['tasks']} tasks in {median([e['seconds'] for e in esc]):.1f} s)",
            "",
            "",
            "≥ 1,000 on PostgreSQL",
            _check(esc_rate, esc_target),
        ),
        Row(
            "Peak RSS of a qcluster process (MiB)",
            name,
            f"{engine['qcluster_peak_mib']:.0f}",
            "",
            "",
            "",
            "",
        ),
    ]


def _reviews_row(name: str, sql: dict) -> Row:
    """Two human reviews in parallel against the same two in sequence (docs/parallel.md)."""
    par, seq = sql.get("reviews_parallel"), sql.get("reviews_sequential")
    if not par or not seq:
        return Row(
            "SQL per instance, two reviews in parallel", name, "not measured", "", "", "", ""
        )
    ours, base = par.get("engine", 0), seq.get("engine", 0)
    ratio = ours / base if base else float("nan")
    return Row(
        "SQL per instance, two reviews in parallel (data statements)",
        name,
        f"{ours:.1f} engine + {par.get('broker', 0):.1f} broker",
        f"in sequence: {base:.1f} + {seq.get('broker', 0):.1f} broker",
        f"{ratio:.2f}×",
        "≤ 1.5×",
        _check(ratio, 1.5, at_most=True),
    )


def _task_latency(samples: dict) -> str:
    found = samples.get("task_latency_ms")
    if not found:
        return ""
    p99 = common.percentile(found, 99)
    return f"django-q2 task, enqueue → run: median {median(found):.1f}, p99 {p99:.1f}"


def _latency_ratio(ours: float, samples: dict) -> str:
    found = samples.get("task_latency_ms")
    return f"{ours / median(found):.2f}×" if found else ""


def _http_rows(name: str, http: dict, *, server: str = "gunicorn") -> list[Row]:
    """The HTTP rows of one server; the idle sweep and the worker's memory with gunicorn's."""
    s = http["samples"]
    where = ", runserver" if server == "runserver" else ""
    base = median([x["rps"] for x in s["one_row"]])
    base_p99 = median([x["p99_ms"] for x in s["one_row"]])
    targets = {
        "start": 0.5,
        "status": 0.7,
        "status_304": 0.9,
        "status_first": 0.7,
        "tracker": 0.5,
        "tracker_first": 0.5,
        "tracker_poll_304": 0.9,
        "board": None,
    }
    labels = {
        "start": "POST /api/workflows/start",
        "status": "GET …/status, the same instance again",
        "status_304": "GET …/status, unchanged (304)",
        "status_first": "GET …/status, each request another instance",
        "tracker": "GET /track/<id>/, the same instance again",
        "tracker_first": "GET /track/<id>/, each request another instance",
        "tracker_poll_304": "Tracker poll, unchanged (304)",
        "board": "GET /board/",
    }
    found = []
    for key, target in targets.items():
        if key not in s:
            continue
        rps, p99 = median([x["rps"] for x in s[key]]), median([x["p99_ms"] for x in s[key]])
        errors = sum(x["errors"] for x in s[key])
        ratios = round_ratios([x["rps"] for x in s[key]], [x["rps"] for x in s["one_row"]])
        found.append(
            Row(
                f"{labels[key]} (req/s, p99{where})",
                name,
                f"{rps:.{0 if rps >= 10 else 2}f} req/s, p99 {p99:.1f} ms"
                + (f", {errors} errors" if errors else ""),
                f"one-row view {base:.0f} req/s, p99 {base_p99:.1f} ms",
                ratio_text(ratios),
                f"≥ {target}×" if target else "",
                check_rounds(ratios, target),
            )
        )
    if server == "runserver":
        return found
    info = http["info"]
    found.append(
        Row(
            f"Idle sweep, {info['instances']:,} open tasks (ms)",
            name,
            f"{info['sweep_ms']:.2f} (timer poll {info['poll_ms']:.2f})",
            "",
            "",
            "≤ 20 ms",
            _check(info["sweep_ms"], 20.0, at_most=True),
        )
    )
    found.append(
        Row("Peak RSS of a web worker (MiB)", name, f"{http['web_peak_mib']:.0f}", "", "", "", "")
    )
    return found


def table(found: list[Row]) -> str:
    headers = [
        "figure",
        "database + broker",
        "ours",
        "baseline (same run)",
        "ratio",
        "target",
        "met",
    ]
    return common.format_table(headers, [[getattr(r, f) for f in Row.__slots__] for r in found])


def write(path: Path, info: dict, found: list[Row], results: dict, *, quick: bool) -> None:
    met = [r for r in found if r.met]
    words = {"yes": "met in every round", "median only": "met by the median, not every round"}
    summary = "\n".join(
        f"- {words.get(r.met, 'NOT met')}: {r.figure}, {r.backend}: {r.ours}; "
        f"target {r.target}" + (f", ratio {r.ratio}" if r.ratio else "")
        for r in met
    )
    body = [
        "# Benchmarks",
        "",
        f"Generated by `make {'bench-quick' if quick else 'bench'}` (bench/run.py) in "
        f"{info['seconds']} s. Every figure is the median of the run's samples; every baseline "
        "was measured in the same run, interleaved with ours. Do not edit by hand: the text "
        "after the tables comes from bench/analysis.md.",
        "",
        "## Machine",
        "",
        f"- CPU: {info['cpu']}, {info['cores']} cores; RAM {info['ram_gib']} GiB; load average "
        f"{_load(info['load_before'])} before, {_load(info['load_after'])} after (shared machine)",
        f"- Python {info['python']}, Django {info['django']}, django-q2 {info['django_q2']}, "
        f"gunicorn {info['gunicorn']}, PostgreSQL {info['postgresql']}, Redis {info['redis']}, "
        f"django-viewflow {info['viewflow']} (its own virtualenv), {info['wrk']}",
        "",
        "## Figures",
        "",
        table(found),
        "",
        *_cpu_notes(results),
        "",
        "## Targets",
        "",
        summary,
        "",
        ANALYSIS.read_text() if ANALYSIS.exists() else "",
    ]
    path.write_text("\n".join(body).rstrip() + "\n")


def _cpu_notes(results: dict) -> list[str]:
    """How much CPU the load generator and the server used during the wrk runs."""
    notes = []
    for backend, runs in results.items():
        if "http" not in runs:
            continue
        samples = [
            x for xs in runs["http"]["samples"].values() for x in xs if not x.get("sequential")
        ]
        wrk = median([x["wrk_cpu_share"] for x in samples]) * 100
        server = median([x["server_cpu_share"] for x in samples]) * 100
        notes.append(
            f"- {BACKENDS[backend]}, HTTP runs: the load generator used {wrk:.0f}% of a core, the two "
            f"gunicorn workers {server:.0f}% (medians; 200% = both cores)."
        )
    return notes


def _load(values) -> str:
    return "/".join(f"{v:.1f}" for v in values)
