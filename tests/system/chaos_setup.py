"""The chaos run's shape: sizes, the flaky service's behaviour, the clusters' settings and
the workflows it runs (docs/chaos.md)."""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.system import chaos_webhooks, harness
from tests.system.flaky_service import Behaviour


@dataclass(frozen=True, slots=True)
class Size:
    instances: int  # of the two required shapes (3/4 http x3, 1/4 http -> human -> http)
    branch_share: float  # parallel-branch instances on top, as a share of `instances`
    start_seconds: float  # instances are started evenly over this window
    kill_seconds: float  # kills happen only in this window
    kill_gap: tuple[float, float]  # seconds between kills, drawn uniformly
    down_for: tuple[float, float]  # how long a killed cluster stays down
    review_timeout: int  # seconds before a human review escalates
    finish_within: float  # every instance ends this long after the last kill
    pollers: int = 4
    poll_rate: float = 40.0  # status requests per second, all pollers together


SIZES = {
    "small": Size(24, 0.25, 8, 24, (3, 7), (0.5, 2), 5, 60),
    "full": Size(200, 0.1, 150, 200, (3, 7), (0.5, 3), 15, 60),
}
WORKERS = 3
WORKER_KILL_SHARE = 0.3  # of kills: one worker process instead of the whole cluster
REJECT_SHARE = 0.1
# 25% answered 500, 10% 0.5-2 s late (the time-out is 1 s), 5% dropped, the rest at once.
BEHAVIOUR = Behaviour(error_share=0.25, slow_share=0.10, drop_share=0.05, slow_seconds=(0.5, 2))
# Short leases so that recovery after a kill is quick, keeping the order the settings
# require: request time-out (1 s) < task time-out < step lease.
CLUSTER_ENV = {
    "HMS_WORKERS": str(WORKERS),
    "HMS_TASK_TIMEOUT": "6",
    "HMS_STEP_LEASE_SECONDS": "8",
    "HMS_REDELIVERY_SECONDS": "4",
    "HMS_TIMER_INTERVAL": "0.3",
    "HMS_NOTIFY_TASKS": "false",
    # The flaky service listens on loopback (service URLs must otherwise be public).
    "HMS_PRIVATE_URL_ALLOW": "127.0.0.0/8,::1",
}
WORKDIR = Path(os.environ.get("CHAOS_WORKDIR") or harness.ROOT / "var" / "chaos")
HTTP_STEPS = ("fetch", "check", "send", "score")
SERVICES = """services:
  flakySvc:       {{ kind: http, url: "{url}", timeout: "1s" }}
  chaosReviewSvc: {{ kind: human, group: chaos-reviewers }}
  chaosOkSvc:     {{ kind: python, callable: "workflows_app.builtin.accept" }}
"""
RETRY = "retry: { max: 5, backoff: 1s }"
WORKFLOWS = {
    "chaos-http": f"""id: chaos-http
steps:
  - {{ id: fetch, service: flakySvc, {RETRY} }}
  - {{ id: check, service: flakySvc, {RETRY} }}
  - {{ id: send, service: flakySvc, {RETRY} }}
""",
    # The review escalates once to chaos-backup when nobody decides in time (issue 13 part 4).
    "chaos-human": """id: chaos-human
steps:
  - {{ id: fetch, service: flakySvc, {retry} }}
  - id: review
    service: chaosReviewSvc
    timeout: "{timeout}s"
    onTimeout: escalate
    escalateTo: ["group:chaos-backup"]
    on: {{ rejected: reject }}
  - {{ id: send, service: flakySvc, {retry} }}
""",
    # Parallel branches (docs/parallel.md): decisions race workers to the join, a refusal
    # cancels a `score` whose request may be in flight.
    "chaos-branches": f"""id: chaos-branches
steps:
  - {{ id: fetch, service: flakySvc, {RETRY} }}
  - id: checks
    parallel:
      - {{ id: by-person, steps: [{{ id: review, service: chaosReviewSvc, on: {{ rejected: reject }} }}] }}
      - {{ id: by-service, steps: [{{ id: score, service: flakySvc, {RETRY} }}] }}
  - {{ id: notify, service: chaosOkSvc }}
""",
}


def load_workflows(url: str, size: Size) -> dict[str, Any]:
    """Register the services (the flaky one at `url`), the groups, and publish the workflows;
    each published definition by its key."""
    from django.contrib.auth.models import Group

    from workflows_app.authoring import publishing

    for name in ("chaos-reviewers", "chaos-backup"):
        Group.objects.get_or_create(name=name)
    files = [WORKDIR / "services.yaml"]
    files[0].write_text(SERVICES.format(url=url) + chaos_webhooks.subscriptions(url))
    for key, text in WORKFLOWS.items():
        path = WORKDIR / f"{key}.yaml"
        if key == "chaos-human":  # the others are f-strings already
            text = text.format(retry=RETRY, timeout=size.review_timeout)
        path.write_text(text)
        files.append(path)
    published = publishing.load_files(files).published
    return {definition.key: definition for definition in published}


def lanes(spec: Any) -> dict[str, list[str]]:
    """Each lane's steps in order: the workflow's own, then each branch's."""
    found = {"": list(spec.step_ids)}
    for branch_id in spec.branch_ids:
        found[branch_id] = [step.id for step in spec.branch(branch_id).steps]
    return found
