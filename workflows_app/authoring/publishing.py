"""Load definition and service documents into the database: all of a batch, or nothing.

Parsing and the rules of the format live in the definitions package (pure). Here are the checks that
need the database (does a step's service exist? does a `user:` exist?) and the writes:
a changed workflow publishes a new version, an unchanged one publishes nothing.
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from ..definitions import (
    Document,
    InvalidDefinition,
    Problem,
    ServiceSpec,
    WorkflowSpec,
    load_file,
)
from ..models import Service, WorkflowDefinition
from ..queries import catalog


@dataclass
class LoadReport:
    """What a load did, one line per thing, for the command's output."""

    lines: list[str] = field(default_factory=list)
    published: list[WorkflowDefinition] = field(default_factory=list)

    def say(self, line: str) -> None:
        self.lines.append(line)


@dataclass(frozen=True, slots=True)
class Sourced:
    """A parsed document with the file it came from."""

    source: str
    document: Document


def parse_files(paths: Iterable[str | Path]) -> list[Sourced]:
    """Parse every file; raise InvalidDefinition with the problems of all of them."""
    problems: list[Problem] = []
    parsed: list[Sourced] = []
    prefixes = tuple(settings.HMS_PYTHON_SERVICES)
    for path in paths:
        try:
            parsed.append(Sourced(str(path), load_file(path, python_prefixes=prefixes)))
        except InvalidDefinition as exc:
            problems.extend(exc.problems)
    problems.extend(check_references(parsed))
    if problems:
        raise InvalidDefinition(problems)
    return parsed


def check_references(parsed: Sequence[Sourced]) -> list[Problem]:
    """Problems only the database can tell: unknown services, users and callables."""
    problems: list[Problem] = []
    kinds = dict(Service.objects.values_list("name", "kind"))
    kinds |= {svc.name: svc.kind for item in parsed for svc in item.document.services}
    known = set(kinds)
    users = _usernames_named(parsed)
    for item in parsed:
        for spec in item.document.workflows:
            problems.extend(_workflow_references(item.source, spec, known, users))
            problems.extend(_request_problems(item.source, spec, kinds))
        problems.extend(_callable_problems(item.source, item.document.services))
    return problems


def _usernames_named(parsed: Sequence[Sourced]) -> set[str]:
    named = {
        target.partition(":")[2]
        for item in parsed
        for spec in item.document.workflows
        for step in spec.steps
        for target in (*step.escalate_to, step.assignee or "")
        if target.startswith("user:")
    }
    existing = get_user_model().objects.filter(username__in=named)
    return set(existing.values_list("username", flat=True))


def _workflow_references(source, spec: WorkflowSpec, services: set[str], users: set[str]):
    for step in spec.steps:
        if step.service not in services:
            yield Problem(
                source,
                f"service '{step.service}' is not registered; register it in "
                "the admin or load a services file with it",
                step=step.id,
                field="service",
                workflow=spec.id,
            )
        for where, target in _targets(step):
            name = target.partition(":")[2]
            if target.startswith("user:") and name not in users:
                yield Problem(
                    source,
                    f"user '{name}' does not exist",
                    step=step.id,
                    field=where,
                    workflow=spec.id,
                )


def _request_problems(source, spec: WorkflowSpec, kinds: dict[str, str]):
    """A request to the applicant has nobody to escalate to, and no assignee."""
    for step in spec.steps:
        if kinds.get(step.service) != "applicant":
            continue
        if step.on_timeout == "escalate" or step.escalate_to or step.assignee:
            field = "onTimeout" if step.on_timeout == "escalate" else "escalateTo"
            yield Problem(
                source,
                f"service '{step.service}' asks the applicant, who cannot be escalated or "
                "assigned; use onTimeout reject, retry (remind them), skip or fail",
                step=step.id,
                field="assignee" if step.assignee else field,
                workflow=spec.id,
            )


def _targets(step) -> Iterable[tuple[str, str]]:
    for level, target in enumerate(step.escalate_to):
        yield f"escalateTo[{level}]", target
    if step.assignee:
        yield "assignee", step.assignee


def _callable_problems(source: str, services: Sequence[ServiceSpec]) -> Iterable[Problem]:
    for svc in services:
        if svc.kind != "python":
            continue
        try:
            catalog.load_callable(svc.callable)
        except Exception as exc:  # noqa: BLE001 - any import failure is the user's problem to see
            yield Problem(
                source,
                f"callable '{svc.callable}' cannot be loaded: {exc}",
                step=svc.name,
                field="callable",
            )


@transaction.atomic
def load_parsed(parsed: Sequence[Sourced]) -> LoadReport:
    """Save services, then workflows; say what was created, changed or unchanged."""
    report = LoadReport()
    for item in parsed:
        for svc in item.document.services:
            save_service(svc, report)
    for item in parsed:
        for spec in item.document.workflows:
            for group in _groups_named(spec):
                ensure_group(group, report)
            publish(spec, report)
    return report


def load_files(paths: Iterable[str | Path]) -> LoadReport:
    """Validate every file, then load them all in one transaction (or raise, saving nothing)."""
    return load_parsed(parse_files(paths))


def save_service(svc: ServiceSpec, report: LoadReport) -> Service:
    """Create or update a service from its spec."""
    fields = {
        "kind": svc.kind,
        "url": svc.url,
        "timeout_seconds": svc.timeout.seconds if svc.timeout else None,
        "secret": svc.secret,
        "secret_env": svc.secret_env,
        "group": svc.group,
        "backup_group": svc.backup_group,
        "callable": svc.callable,
        "form": list(svc.source.get("form") or []) if svc.kind == "applicant" else [],
    }
    service, created = Service.objects.update_or_create(name=svc.name, defaults=fields)
    report.say(f"service {svc.name}: {'created' if created else 'saved'} ({svc.kind})")
    for group in (svc.group, svc.backup_group):
        if group:
            ensure_group(group, report)
    return service


def ensure_group(name: str, report: LoadReport) -> None:
    """Create the Django group `name` when it is missing, and say so."""
    _, created = Group.objects.get_or_create(name=name)
    if created:
        report.say(f"group {name}: created (add its members in the admin)")


def _groups_named(spec: WorkflowSpec) -> set[str]:
    return {
        target.partition(":")[2]
        for step in spec.steps
        for target in (*step.escalate_to, step.assignee or "")
        if target.startswith("group:")
    }


@transaction.atomic
def publish(
    spec: WorkflowSpec, report: LoadReport | None = None
) -> tuple[WorkflowDefinition, bool]:
    """Publish `spec` as a new version unless the newest version is the same document."""
    report = report or LoadReport()
    latest = catalog.latest_definition(spec.id, for_update=True)
    digest = spec.digest()
    if latest and latest.digest == digest:
        report.say(f"workflow {spec.id}: unchanged (version {latest.version})")
        return latest, False
    definition = WorkflowDefinition.objects.create(
        key=spec.id,
        version=latest.version + 1 if latest else 1,
        name=spec.name,
        public=spec.public,
        source=dict(spec.source),
        digest=digest,
        case_prefix=latest.case_prefix if latest else case_prefix(spec.id),
    )
    report.published.append(definition)
    report.say(
        f"workflow {spec.id}: published version {definition.version} ({len(spec.steps)} steps)"
    )
    return definition, True


def case_prefix(key: str) -> str:
    """'building-permit' -> 'BP'; 'parking' -> 'PAR': the start of every case number."""
    words = [w for w in re.split(r"[-_]+", key.upper()) if w]
    if len(words) > 1:
        return "".join(w[0] for w in words[:4])
    return (words[0] if words else "WF")[:3]
