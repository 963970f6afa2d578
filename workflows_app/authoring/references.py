"""The checks of loaded documents that need the database (docs/definitions.md): does a
step's service exist, a `user:`, a python callable, a child workflow; may a service or a
subscription URL be called. Parsing and the format's own rules are in definitions/."""

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.contrib.auth import get_user_model

from ..definitions import (
    Document,
    InvalidDefinition,
    Problem,
    Reference,
    ServiceSpec,
    WorkflowSpec,
)
from ..models import Service
from ..queries import addresses, catalog
from .subworkflows import child_problems


@dataclass(frozen=True, slots=True)
class Sourced:
    """A parsed document with the file it came from."""

    source: str
    document: Document


def check_references(
    parsed: Sequence[Sourced], *, also: InvalidDefinition | None = None
) -> list[Problem]:
    """Problems only the database can tell: unknown services, users, callables and child
    workflows, and workflows calling each other in a cycle; `also` brings the names that
    refused documents use and define, so those are checked too."""
    references = [
        ref for item in parsed for spec in item.document.workflows for ref in spec.references
    ]
    references += also.references if also else []
    kinds = dict(Service.objects.values_list("name", "kind"))
    kinds |= {svc.name: svc.kind for item in parsed for svc in item.document.services}
    known = set(kinds) | set(also.services_named if also else ())
    named_users = {ref.name for ref in references if ref.kind == "user"}
    users = set(
        get_user_model().objects.filter(username__in=named_users).values_list("username", flat=True)
    )
    problems = [
        dataclasses.replace(ref.place, message=_unknown(ref))
        for ref in references
        if (ref.kind == "service" and ref.name not in known)
        or (ref.kind == "user" and ref.name not in users)
    ]
    for item in parsed:
        for spec in item.document.workflows:
            problems.extend(_request_problems(spec, kinds))
        problems.extend(_callable_problems(item.source, item.document.services))
        problems.extend(_address_problems(item.source, item.document.services))
        problems.extend(_subscription_address_problems(item.source, item.document.subscriptions))
    specs = [spec for item in parsed for spec in item.document.workflows]
    problems.extend(child_problems(specs, refused=also.references if also else ()))
    return problems


def _unknown(ref: Reference) -> str:
    if ref.kind == "user":
        return f"user '{ref.name}' does not exist"
    return (
        f"service '{ref.name}' is not registered; register it in the admin or load a "
        "services file with it"
    )


def _request_problems(spec: WorkflowSpec, kinds: dict[str, str]) -> Iterable[Problem]:
    """A request to the applicant has nobody to escalate to, and no assignee."""
    for step in spec.steps:
        if kinds.get(step.service) != "applicant":
            continue
        if step.on_timeout == "escalate" or step.escalate_to or step.assignee:
            field = "onTimeout" if step.on_timeout == "escalate" else "escalateTo"
            yield spec.problem(
                f"service '{step.service}' asks the applicant, who cannot be escalated or "
                "assigned; use onTimeout reject, retry (remind them), skip or fail",
                step=step.id,
                path=("assignee" if step.assignee else field,),
            )


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


def _address_problems(source: str, services: Sequence[ServiceSpec]) -> Iterable[Problem]:
    """HTTP services whose URL leads to an address we may not call (queries/addresses.py)."""
    for svc in services:
        if svc.kind == "http" and (why := addresses.url_refusal(svc.url)):
            yield Problem(source, f"url '{svc.url}': {why}", step=svc.name, field="url")


def _subscription_address_problems(source: str, subscriptions) -> Iterable[Problem]:
    """Subscriptions whose URL leads to an address we may not call: the services' rule."""
    for sub in subscriptions:
        if why := addresses.url_refusal(sub.url):
            yield Problem(source, f"url '{sub.url}': {why}", step=sub.name, field="url")
