"""The citizens' front page `/`: the public services in plain language and a way to track an
application (CONTRACT §4); the admin's "View site" leads here."""

from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from ..queries import catalog

HOME = "workflows_app/home.html"


@dataclass(frozen=True, slots=True)
class PublicService:
    """One service citizens may apply for: its newest version's name and description."""

    key: str
    name: str
    description: str


def public_services() -> list[PublicService]:
    """The workflows whose newest version is public, by name (two queries; specs are cached)."""
    found = []
    for definition in catalog.latest_definitions():
        if definition.public:
            spec = catalog.spec_of(definition)
            found.append(PublicService(definition.key, spec.display_name, spec.display_description))
    return sorted(found, key=lambda service: service.name.lower())


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, HOME, {"services": public_services()})
