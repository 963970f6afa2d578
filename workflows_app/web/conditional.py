"""Conditional GETs for what citizens and portals poll: the status API and the tracker's
step list (docs/api.md "ETag", docs/pages.md).

An ETag names what a rendering depends on: the instance's `revision` (bumped by every change,
runtime/guards.py), the language it is written in, whether the reader sees the private
document, and the minute where the rendering moves with the clock: the tracker of a running
instance ("taking longer than usual"), the status of one whose statutory deadline runs
(`remainingSeconds`, then right to the minute). A poll whose `If-None-Match` still holds is answered 304 from one indexed
query (queries/revisions.py), with no template or serializer run.
"""

import hashlib
import re
import time

from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.cache import patch_vary_headers
from django.utils.translation import get_language

from ..models import ApiToken, Status, WorkflowDefinition
from ..queries import revisions
from ..queries.progress import public_id

# What the rendering varies on besides the URL: the language (cookie or header), and for
# the API the caller (anonymous readers get the public document).
VARY_PAGE = ("Accept-Language", "Cookie")
VARY_API = ("Accept-Language", "Cookie", "Authorization")


def etag(*, revision: int, clock: bool, private: bool) -> str:
    """The weak ETag of a rendering of an instance at `revision` (module docstring)."""
    minute = f".{int(time.time() // 60)}" if clock else ""
    reader = "p" if private else "a"
    return f'W/"{revision}{minute}.{get_language() or "-"}.{reader}"'


def matches(request: HttpRequest, tag: str) -> bool:
    """Whether `If-None-Match` names `tag` (weak comparison, RFC 9110 13.1.2)."""
    header = request.headers.get("If-None-Match", "")
    if not header:
        return False
    opaque = tag.removeprefix("W/")
    return any(part.strip().removeprefix("W/") == opaque for part in header.split(","))


def tagged(response: HttpResponse, tag: str, vary: tuple[str, ...]) -> HttpResponse:
    """`response` with its ETag and Vary; revalidated on every use (`no-cache`)."""
    response["ETag"] = tag
    patch_vary_headers(response, vary)
    return response


def not_modified(tag: str, vary: tuple[str, ...]) -> HttpResponse:
    response = HttpResponseNotModified()
    response["Cache-Control"] = "no-cache"
    return tagged(response, tag, vary)


def unchanged_status(
    request: HttpRequest, instance_id: str, bearer: str | None
) -> HttpResponse | None:
    """304 for a status poll whose ETag still holds and whose caller may read it; None
    otherwise (the full view then answers, with its 401, 403 or 404 as usual)."""
    key = public_id(instance_id)
    if key is None or not request.headers.get("If-None-Match"):
        return None
    state = revisions.poll_state(key, token_hash=ApiToken.hash(bearer) if bearer else None)
    if state is None:
        return None
    definition = WorkflowDefinition.cached(state.definition_id)
    if bearer is None and not definition.public:
        return None
    if bearer is not None and not (
        state.token and state.token.allows(ApiToken.Scope.START, definition.key)
    ):
        return None
    clock = state.status == Status.RUNNING and state.deadline_at is not None
    tag = etag(revision=state.revision, clock=clock, private=bearer is not None)
    return not_modified(tag, VARY_API) if matches(request, tag) else None


def page_etag(instance) -> str:
    """The tracker step list's ETag (anyone with the link reads the same page)."""
    return etag(revision=instance.revision, clock=not instance.is_finished, private=False)


def seen_token(tag: str, revision: int) -> str:
    """The tag as the poll URL's `seen` (hex: a digest of the tag, then the revision)."""
    return hashlib.sha256(tag.encode()).hexdigest()[:16] + format(revision, "x")


def seen_revision(request: HttpRequest) -> int | None:
    """The revision the polling page shows, from its If-None-Match or `seen`."""
    if found := re.match(r'\s*(?:W/)?"(\d+)[.]', request.headers.get("If-None-Match", "")):
        return int(found[1])
    seen = request.GET.get("seen", "")
    return int(seen[16:], 16) if re.fullmatch(r"[0-9a-f]{17,32}", seen) else None


def unchanged_page(request: HttpRequest, instance_id: str) -> HttpResponse | None:
    """For a poll of a running instance whose rendering still holds: 304 (If-None-Match) or
    204 (`seen`, which htmx also leaves unswapped); None otherwise. Anyone with the link may
    read the tracker, so no token is checked."""
    key = public_id(instance_id)
    seen = request.GET.get("seen")
    if key is None or not (seen or request.headers.get("If-None-Match")):
        return None
    state = revisions.poll_state(key, token_hash=None)
    if state is None or state.status != Status.RUNNING:
        return None  # an ended instance gets its final step list, which stops the polling
    tag = etag(revision=state.revision, clock=True, private=False)
    if matches(request, tag):
        return not_modified(tag, VARY_PAGE)
    if seen == seen_token(tag, state.revision):
        return tagged(HttpResponse(status=204), tag, VARY_PAGE)
    return None
