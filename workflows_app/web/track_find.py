"""The form that finds an application's tracker: by its tracking link, its id or its case
number (docs/pages.md). Misses are counted per address, so guessing case numbers is slow."""

import math
import re

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from ..models import WorkflowInstance, case_number_key
from ..queries import progress
from .ratelimit import client_ip
from .throttle import CASE_LOOKUPS

FIND = "workflows_app/track_find.html"
QUERY_MAX = 300


@require_GET
@never_cache
def track_find(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")[:QUERY_MAX].strip()
    if query and (wait := CASE_LOOKUPS.wait(client_ip(request))):
        return too_many_lookups(wait)
    instance = find_instance(query) if query else None
    if instance is not None:
        return redirect(instance.tracker_url)
    if query:
        CASE_LOOKUPS.count(client_ip(request))  # misses count: guessing is mostly missing
    error = _("We could not find an application with that reference.") if query else ""
    return render(request, FIND, {"query": query, "error": error})


def too_many_lookups(wait: int) -> HttpResponse:
    """429 in plain words, with Retry-After in seconds."""
    minutes = max(1, math.ceil(wait / 60))
    response = HttpResponse(
        _(
            "Too many searches from your address found nothing. Try again in %(minutes)d "
            "minute(s), or use the link from your confirmation email."
        )
        % {"minutes": minutes},
        status=429,
        content_type="text/plain; charset=utf-8",
    )
    response["Retry-After"] = str(wait)
    return response


_UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)


def find_instance(text: str) -> WorkflowInstance | None:
    """The instance a tracking link (or its id) or a case number names: BP-2026-7KQ3MX (typed
    in any case, O for 0 and l for 1 forgiven) or an old BP-2026-000042."""
    if match := _UUID.search(text):
        return progress.instance_by_uuid(match.group())
    key = case_number_key(text)
    if key is None:
        return None
    return WorkflowInstance.objects.filter(case_number=key).first()
