"""What the chaos run asserts at its end, from the database rows and the flaky service's log.

The request bound, per HTTP step run R:  requests(R) <= attempts(R) <= retry.max + 1 + redeliveries(R)

- Every request is sent by a worker holding a claim, and every claim adds one to `attempts`
  (a guarded UPDATE ... WHERE state='queued' AND attempts=n), so requests <= attempts.
- A run goes back to `queued` only by a retry or by a redelivery. A retry is scheduled only
  while attempts <= retry.max, at a different attempts value each time, so there are at most
  retry.max of them; a redelivery (the lease of a killed worker expired) writes one
  REDELIVERED event each. Hence attempts <= 1 + retry.max + redeliveries.
- A redelivery needs a lost lease. The lease (HMS_STEP_LEASE_SECONDS) outlasts the task
  time-out, which outlasts the request time-out, so a live worker never loses one; only a
  kill does, or django-q2 killing a task that overran its time-out (logged "reincarnated
  worker ... after timeout"; none is expected). So each run is redelivered at most once per
  kill or time-out, and a kill takes at most one run per worker process of its cluster.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

TERMINAL = {"completed", "rejected", "failed", "cancelled"}
OPEN = {"queued", "running", "waiting"}


@dataclass
class Facts:
    """Everything the checks read, loaded once after the run."""

    steps: list[str]  # the definition's order
    http_steps: dict[str, int]  # step id -> retry.max
    started: list[int]
    instances: dict[int, dict[str, Any]]  # pk -> {uuid, status, current_step, error}
    runs: dict[str, dict[str, Any]]  # run id -> {instance_id, step_id, state, attempts, ...}
    redelivered: Counter  # run id -> REDELIVERED events
    event_totals: Counter  # event type -> how many
    log: list[dict[str, Any]]  # the flaky service's requests
    kills: int
    workers_per_cluster: int
    task_timeouts: int  # workers django-q2 replaced after a task overran its time-out
    # Each lane's steps in order (docs/parallel.md): the workflow's own list under "", and
    # each parallel branch's under its id. Empty: one lane, `steps`.
    lanes: dict[str, list[str]] = field(default_factory=dict)
    # Several workflows in one run: each one's lanes, by the instance's "workflow" key.
    workflow_lanes: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # (run id, level) -> ESCALATED events: each rung of a ladder is climbed once
    escalated: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def lanes_of(self, instance: dict) -> dict[str, list[str]]:
        """The lanes of the workflow this instance runs."""
        if self.workflow_lanes and instance.get("workflow") in self.workflow_lanes:
            return self.workflow_lanes[instance["workflow"]]
        return self.lanes or {"": self.steps}

    def problem(self, text: str) -> None:
        self.problems.append(text)


def verify(facts: Facts) -> list[str]:
    """Every broken invariant, one line each; empty when the run kept all of them."""
    _no_lost_instance(facts)
    by_instance = defaultdict(list)
    for run_id, run in sorted(facts.runs.items(), key=lambda item: item[1]["created_at"]):
        by_instance[run["instance_id"]].append({"id": run_id, **run})
    for pk, instance in facts.instances.items():
        _history_is_whole(facts, pk, instance, by_instance.get(pk, []))
    _log_matches_history(facts)
    for (run_id, level), count in facts.escalated.items():
        if count > 1:
            facts.problem(f"run {run_id} escalated {count} times to level {level}")
    total = sum(facts.redelivered.values())
    if total > facts.kills * facts.workers_per_cluster + facts.task_timeouts:
        facts.problem(
            f"{total} redeliveries for {facts.kills} kills of {facts.workers_per_cluster}-worker "
            f"clusters and {facts.task_timeouts} task time-outs"
        )
    return facts.problems


def _no_lost_instance(facts: Facts) -> None:
    missing = set(facts.started) - set(facts.instances)
    extra = set(facts.instances) - set(facts.started)
    if missing or extra:
        facts.problem(f"lost instances {sorted(missing)[:10]}, unknown ones {sorted(extra)[:10]}")


def _history_is_whole(facts: Facts, pk: int, instance: dict, runs: list[dict]) -> None:
    """Terminal; no open run left; in each lane (the workflow's own steps, each parallel
    branch) each step once, in the definition's order, no gap."""
    status, where = instance["status"], f"instance {pk}"
    if status not in TERMINAL:
        state = runs[-1]["state"] if runs else "no run"
        facts.problem(f"{where} is still {status} at {instance['current_step']} ({state})")
        return
    if open_runs := [r["step_id"] for r in runs if r["state"] in OPEN]:
        facts.problem(f"{where} ended {status} with open runs {open_runs} (orphaned task)")
    by_lane: dict[str, list[dict]] = defaultdict(list)
    for run in runs:
        by_lane[run.get("lane", "")].append(run)
    lanes = facts.lanes_of(instance)
    for lane, lane_runs in by_lane.items():
        order, expected = [r["step_id"] for r in lane_runs], lanes.get(lane, [])
        if order != expected[: len(order)]:
            facts.problem(f"{where} history {order} is not {expected} in order (gap or repeat)")
            return
        if any(r["state"] != "succeeded" for r in lane_runs[:-1]):
            facts.problem(f"{where}: a step before the last did not succeed: {_states(runs)}")
    _ending_fits(facts, where, instance, runs, [lane_runs[-1] for lane_runs in by_lane.values()])


def _ending_fits(
    facts: Facts, where: str, instance: dict, runs: list[dict], lasts: list[dict]
) -> None:
    """The end fits the last run of each lane: all done; a refusal; the failed step's run
    (the other lanes' last runs then succeeded or were cancelled)."""
    total = sum(len(steps) for steps in facts.lanes_of(instance).values())
    others_fine = lambda end: all(  # noqa: E731
        r is end or r["state"] in ("succeeded", "cancelled") for r in lasts
    )
    match instance["status"]:
        case "completed":
            ok = len(runs) == total and all(r["state"] == "succeeded" for r in runs)
        case "rejected":
            ending = [r for r in lasts if r["result"] == "rejected"]
            ok = bool(ending) and others_fine(ending[0])
        case "failed":
            step = (instance["error"] or {}).get("step")
            ending = [r for r in lasts if r["state"] == "failed" and r["step_id"] == step]
            ok = bool(ending) and others_fine(ending[0])
        case _:
            ok = False  # nobody cancels in the chaos run
    if not ok:
        facts.problem(f"{where} ended {instance['status']} after {_states(runs)}")


def _states(runs: list[dict]) -> list[str]:
    return [f"{r['step_id']}:{r['state']}" for r in runs]


def _log_matches_history(facts: Facts) -> None:
    """Each logged request belongs to an HTTP run; their count and answers fit its history."""
    by_key: dict[str, list[dict]] = defaultdict(list)
    for line in facts.log:
        by_key[line["key"]].append(line)
    for key, lines in by_key.items():
        run = facts.runs.get(key)
        if run is None or run["step_id"] not in facts.http_steps:
            facts.problem(f"the service got requests for {key}, which is no HTTP step run")
            continue
        _requests_fit_run(facts, key, run, lines)
    for run_id, run in facts.runs.items():
        if (
            run["step_id"] in facts.http_steps
            and run["state"] == "succeeded"
            and run_id not in by_key
        ):
            facts.problem(f"run {run_id} succeeded without a request reaching the service")


def _requests_fit_run(facts: Facts, key: str, run: dict, lines: list[dict]) -> None:
    where = f"run {key} ({run['step_id']})"
    redelivered = facts.redelivered[key]
    bound = facts.http_steps[run["step_id"]] + 1 + redelivered
    # A request whose caller was killed while sending its body is cut short: it counts as a
    # request, but names nothing and its answer reaches nobody.
    whole = [line for line in lines if not line.get("truncated")]
    attempts = [line["attempt"] for line in whole]
    uuid = facts.instances[run["instance_id"]]["uuid"]
    if any(line["step"] != run["step_id"] or line["instance"] != uuid for line in whole):
        facts.problem(f"{where}: a request named another step or instance")
    if len(set(attempts)) != len(attempts):
        facts.problem(f"{where}: attempt numbers repeated {attempts} (two workers, one claim)")
    if len(lines) > run["attempts"] or len(lines) > bound:
        facts.problem(f"{where}: {len(lines)} requests, {run['attempts']} attempts, bound {bound}")
    if redelivered > facts.kills + facts.task_timeouts:
        facts.problem(f"{where}: {redelivered} redeliveries for {facts.kills} kills")
    answered = {line["attempt"] for line in whole if line["choice"] == "ok"}
    # A slow answer may still come within the service's time-out: a success too.
    slow = {line["attempt"] for line in whole if line["choice"] == "slow"}
    recorded = (run["output"] or {}).get("attempt") if run["state"] == "succeeded" else None
    if run["state"] == "succeeded" and recorded not in answered | slow:
        facts.problem(f"{where} succeeded with attempt {recorded}; the service answered {answered}")
    # A run that another branch's refusal or failure cancelled while its request was in
    # flight gets its answer too late (recorded as a late answer): nothing is lost.
    if len(answered - {recorded}) > redelivered and run["state"] != "cancelled":
        facts.problem(f"{where}: answers {sorted(answered)} lost without a redelivery")


def summarise(facts: Facts) -> dict[str, Any]:
    """The figures the summary table shows."""
    statuses = Counter(i["status"] for i in facts.instances.values())
    choices = Counter(line["choice"] for line in facts.log)
    per_run = Counter(line["key"] for line in facts.log)
    return {
        "instances": len(facts.instances),
        **{s: statuses.get(s, 0) for s in ("completed", "rejected", "failed", "running")},
        "requests": len(facts.log),
        "5xx": choices["error"],
        "slow": choices["slow"],
        "dropped": choices["drop"],
        "max requests/run": max(per_run.values(), default=0),
        "retries": facts.event_totals["retry_scheduled"],
        "kills": facts.kills,
        "redeliveries": sum(facts.redelivered.values()),
        "task time-outs": facts.task_timeouts,
        "late answers": facts.event_totals["late_callback"],
        "escalations": facts.event_totals["escalated"],
    }


def counts(facts: Facts) -> dict[str, int]:
    """The pass figures: lost, stuck (not ended, or an open run on an ended instance) and
    duplicated history entries (a step twice in a lane, or one attempt number twice)."""
    lost = len(set(facts.started) - set(facts.instances))
    stuck = sum(1 for p in facts.problems if " is still " in p or "orphaned task" in p)
    duplicates = sum(
        1 for p in facts.problems if "(gap or repeat)" in p or "attempt numbers repeated" in p
    )
    return {"lost": lost, "stuck": stuck, "duplicates": duplicates}
