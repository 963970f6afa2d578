"""The end of a chaos run: read the rows and the service's log once, check them
(chaos_checks.py), print the table and the one-line summary (docs/chaos.md)."""

import os
from collections import Counter

from tests.system import chaos_webhooks, stores
from tests.system.chaos_checks import Facts, counts, summarise, verify
from tests.system.chaos_run import Chaos, Outcome
from tests.system.chaos_setup import HTTP_STEPS, WORKDIR, WORKERS, lanes
from tests.system.flaky_service import read_log


def facts_of(chaos: Chaos) -> Facts:
    """Everything the checks need, read once from the database and the logs."""
    from workflows_app.models import Event, StepRun, WorkflowInstance
    from workflows_app.queries import catalog

    definitions = list(chaos.workflows.values())
    rows = WorkflowInstance.objects.filter(definition__in=definitions)
    fields = ("id", "uuid", "status", "current_step", "error", "definition__key")
    instances = {
        i["id"]: {**i, "uuid": str(i["uuid"]), "workflow": i["definition__key"]}
        for i in rows.values(*fields)
    }
    fields = ("instance_id", "step_id", "lane", "state", "attempts", "result", "output")
    runs = {
        str(r.pop("id")): r
        for r in StepRun.objects.filter(instance__in=rows).values("id", *fields, "created_at")
    }
    events = Event.objects.filter(instance__in=rows)
    by_run = lambda kind: Counter(  # noqa: E731
        str(r) for r in events.filter(type=kind).values_list("run_id", flat=True)
    )
    specs = {d.key: catalog.spec_of(d) for d in definitions}
    return Facts(
        steps=list(specs["chaos-http"].step_ids),
        http_steps={step: 5 for step in HTTP_STEPS},
        lanes={},
        workflow_lanes={key: lanes(spec) for key, spec in specs.items()},
        started=list(chaos.started),
        instances=instances,
        runs=runs,
        redelivered=by_run("redelivered"),
        escalated=Counter(
            (str(run), detail.get("level"))
            for run, detail in events.filter(type="escalated").values_list("run_id", "detail")
        ),
        event_totals=Counter(events.values_list("type", flat=True)),
        task_timeouts=sum(
            log.read_text(errors="replace").count("after timeout")
            for log in WORKDIR.glob("qcluster-*.log")
        ),
        log=[line for line in read_log(WORKDIR / "flaky.jsonl") if not line.get("hook")],
        kills=chaos.kills,
        workers_per_cluster=WORKERS,
    )


def report(chaos: Chaos, outcome: Outcome, *, variant: str, seed: int) -> int:
    """Print the table, the summary line and any broken invariant; the exit status."""
    facts = facts_of(chaos)
    problems = verify(facts)
    hooks = [line for line in read_log(WORKDIR / "flaky.jsonl") if line.get("hook")]
    outbox = chaos_webhooks.messages()
    final = {i["uuid"]: i["status"] for i in facts.instances.values()}
    problems += chaos_webhooks.check(outbox, hooks, final)
    expected = len(chaos.started)
    answers = chaos.traffic.answers
    api_5xx, api_failed = answers.server_errors(), answers.failed_connections()
    if api_5xx or api_failed:
        problems.append(f"the API answered {api_5xx} 5xx, {api_failed} connections failed:")
        problems += [f"  {line}" for line in answers.errors[:10]]
    after = outcome.finished_after_last_kill
    if after is None or after > chaos.size.finish_within:
        problems.append(f"instances ended {after}s after the last kill (limit 60 s)")
    figures = {
        **summarise(facts),
        "worker kills": chaos.worker_kills,
        "polls": answers.total("status"),
        "decisions": answers.counts[("complete", 200)],
        "webhooks": len(outbox),
        "webhook requests": len(hooks),
    }
    print()
    print(stores.format_table(list(figures), [list(figures.values())]))
    print(f"\n/healthz at the end of the run: {outcome.health.get('status')}")
    pass_counts = counts(facts)
    peak = "n/a (SQLite)" if outcome.pg_peak is None else str(outcome.pg_peak)
    finished = "never" if after is None else f"{after:.1f}s"
    load = os.getloadavg()
    print(
        f"\nchaos summary [{variant}] seed {seed}: {expected} instances, "
        f"lost {pass_counts['lost']}, stuck {pass_counts['stuck']}, "
        f"duplicates {pass_counts['duplicates']}, API 5xx {api_5xx} "
        f"(webhooks {len(outbox)} sent in order, {outbox_left(outbox)} undelivered) "
        f"(failed connections {api_failed}, {answers.total()} requests), "
        f"PostgreSQL connections peak {peak}, finished {finished} after the last kill "
        f"({chaos.kills} kills, {chaos.worker_kills} of one worker), "
        f"{outcome.duration:.0f}s, load average {load[0]:.1f}"
    )
    if problems:
        print(f"\nchaos: FAILED, {len(problems)} broken invariants:")
        for line in problems[:40]:
            print(f"  - {line}")
        return 1
    print("\nchaos: OK, nothing lost, stuck or duplicated; no API 5xx; ended in time")
    return 0


def outbox_left(outbox: list[dict]) -> int:
    return sum(1 for message in outbox if message["state"] != "delivered")
