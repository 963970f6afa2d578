"""Load definition and service documents into the database: all of a batch, or nothing.

Parsing and the rules of the format live in the definitions package (pure); the checks that
need the database (does a step's service exist? does a `user:` exist?) in references.py;
here are the writes:
a changed workflow publishes a new version, an unchanged one publishes nothing. A file that
has not changed since a version it published never publishes over a newer version (one
published in the admin, say): `make run` loads the files at every start.
"""

import dataclasses
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction

from ..definitions import (
    InvalidDefinition,
    Problem,
    ServiceSpec,
    SubscriptionSpec,
    WorkflowSpec,
    load_file,
    localized,
)
from ..models import Service, Subscription, WorkflowDefinition
from ..queries import catalog
from .references import Sourced, check_references


@dataclass
class LoadReport:
    """What a load did, one line per thing, for the command's output."""

    lines: list[str] = field(default_factory=list)
    published: list[WorkflowDefinition] = field(default_factory=list)

    def say(self, line: str) -> None:
        self.lines.append(line)


def parse_files(paths: Iterable[str | Path]) -> list[Sourced]:
    """Parse every file; raise InvalidDefinition with the problems of all of them, those only
    the database can tell (unknown services and users) included, refused files' too."""
    paths = list(paths)
    problems: list[Problem] = []
    parsed: list[Sourced] = []
    refused = InvalidDefinition([])
    prefixes = tuple(settings.HMS_PYTHON_SERVICES)
    for path in paths:
        try:
            parsed.append(Sourced(str(path), load_file(path, python_prefixes=prefixes)))
        except InvalidDefinition as exc:
            problems.extend(exc.problems)
            refused.references.extend(exc.references)
            refused.services_named.extend(exc.services_named)
    problems.extend(check_references(parsed, also=refused))
    if problems:
        raise InvalidDefinition(sorted(problems, key=_file_order([str(p) for p in paths])))
    return parsed


def _file_order(sources: list[str]):
    """Problems file by file, in the order given, each file's by line."""
    return lambda problem: (
        sources.index(problem.source) if problem.source in sources else len(sources),
        problem.line or 0,
    )


class UnknownWorkflow(ValueError):
    """`public` names a workflow that none of the files defines."""


@transaction.atomic
def load_parsed(
    parsed: Sequence[Sourced], *, from_files: bool = False, public: Collection[str] = ()
) -> LoadReport:
    """Save services, then workflows; say what was created, changed or unchanged.

    `from_files`: an unchanged file keeps a newer version (see publish). `public`: workflow
    keys published as public even when their document does not say so (`--public`).
    """
    defined = {spec.id for item in parsed for spec in item.document.workflows}
    if missing := sorted(set(public) - defined):
        raise UnknownWorkflow(f"--public names {', '.join(missing)}, which no file defines")
    report = LoadReport()
    for item in parsed:
        for svc in item.document.services:
            save_service(svc, report)
        for sub in item.document.subscriptions:
            save_subscription(sub, report)
    for item in parsed:
        for spec in item.document.workflows:
            for group in _groups_named(spec):
                ensure_group(group, report)
            spec = made_public(spec) if spec.id in public else spec
            publish(spec, report, keep_newer=from_files)
    return report


def load_files(paths: Iterable[str | Path], *, public: Collection[str] = ()) -> LoadReport:
    """Validate every file, then load them all in one transaction (or raise, saving nothing)."""
    return load_parsed(parse_files(paths), from_files=True, public=public)


def made_public(spec: WorkflowSpec) -> WorkflowSpec:
    """The spec with `public: true`, in its document too (so the version says what it is)."""
    return dataclasses.replace(spec, public=True, source={**spec.source, "public": True})


def save_service(svc: ServiceSpec, report: LoadReport) -> Service:
    """Create or update a service from its spec."""
    fields = {
        "kind": svc.kind,
        "url": svc.url,
        "timeout_seconds": svc.timeout.seconds if svc.timeout else None,
        "secret": svc.secret,
        "secret_env": svc.secret_env,
        "concurrency": svc.concurrency,
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


def save_subscription(sub: SubscriptionSpec, report: LoadReport) -> Subscription:
    """Create or update a status-webhook subscription from its spec."""
    fields = {
        "url": sub.url,
        "secret": sub.secret,
        "events": list(sub.events),
        "workflows": list(sub.workflows),
        "active": True,
    }
    subscription, created = Subscription.objects.update_or_create(name=sub.name, defaults=fields)
    report.say(f"subscription {sub.name}: {'created' if created else 'saved'} ({sub.url})")
    return subscription


def ensure_group(name: str, report: LoadReport) -> None:
    """Create the Django group `name` when it is missing, and say so."""
    _, created = Group.objects.get_or_create(name=name)
    if created:
        report.say(f"group {name}: created (add its members in the admin)")


def _groups_named(spec: WorkflowSpec) -> set[str]:
    return {
        target.partition(":")[2]
        for step in spec.all_steps
        for target in (*step.escalate_to, step.assignee or "")
        if target.startswith("group:")
    }


@transaction.atomic
def publish(
    spec: WorkflowSpec, report: LoadReport | None = None, *, keep_newer: bool = False
) -> tuple[WorkflowDefinition, bool]:
    """Publish `spec` as a new version unless the newest version is the same document.

    `keep_newer` (loading files): a document that an earlier version already has is not
    published again over the newer versions that followed it; the report says which stays.
    """
    report = report or LoadReport()
    latest = catalog.latest_definition(spec.id, for_update=True)
    digest = spec.digest()
    if latest and latest.digest == digest:
        report.say(f"workflow {spec.id}: unchanged (version {latest.version})")
        return latest, False
    if keep_newer and latest and (same := _version_with(spec.id, digest)):
        report.say(
            f"workflow {spec.id}: unchanged since version {same.version}; version "
            f"{latest.version}, {provenance(latest)}, stays the newest"
        )
        return latest, False
    definition = WorkflowDefinition.objects.create(
        key=spec.id,
        version=latest.version + 1 if latest else 1,
        name=localized(spec.name),  # the default language: the first entry of a map
        public=spec.public,
        source=dict(spec.source),
        digest=digest,
        origin=spec.origin[:300],
        case_prefix=latest.case_prefix if latest else case_prefix(spec.id),
    )
    report.published.append(definition)
    changed = f"{'changed; ' if latest else ''}published version {definition.version}"
    elsewhere = latest and latest.origin != definition.origin
    over = f", over version {latest.version}, {provenance(latest)}" if elsewhere else ""
    report.say(f"workflow {spec.id}: {changed} ({len(spec.all_steps)} steps){over}")
    return definition, True


def _version_with(key: str, digest: str) -> WorkflowDefinition | None:
    """The newest version of `key` whose document has this digest."""
    versions = WorkflowDefinition.objects.filter(key=key, digest=digest)
    return versions.order_by("-version").first()


DRAFT_ORIGIN = "draft "  # drafts.publish_draft's source: "draft building-permit"


def provenance(definition: WorkflowDefinition) -> str:
    """Where a version came from, in words: "published in the admin", "loaded from FILE"."""
    if definition.origin.startswith(DRAFT_ORIGIN):
        return "published in the admin"
    return f"loaded from {definition.origin}" if definition.origin else "published earlier"


def case_prefix(key: str) -> str:
    """'building-permit' -> 'BP'; 'parking' -> 'PAR': the start of every case number."""
    words = [w for w in re.split(r"[-_]+", key.upper()) if w]
    if len(words) > 1:
        return "".join(w[0] for w in words[:4])
    return (words[0] if words else "WF")[:3]
