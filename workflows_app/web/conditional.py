"""Conditional GETs for what citizens and portals poll: the status API and the tracker's
step list (docs/api.md "ETag", docs/pages.md).

An ETag names what a rendering depends on: the instance's `revision` (bumped by every change,
runtime/guards.py), the language it is written in, whether the reader sees the private
document, and the minute where the rendering moves with the clock: the tracker of a running
instance ("taking longer than usual"), the status of one whose statutory deadline runs
(`remainingSeconds`, then right to the minute). A poll whose `If-None-Match` still holds is answered 304 from one indexed
query (queries/revisions.py), with no template or serializer run; a status poll without it
gets the document this process last built for the same ETag (web/rendered.py).
"""

import hashlib
import re
import time
from uuid import UUID

from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.cache import patch_vary_headers
from django.utils.translation import get_language

from ..models import ApiToken, Status, WorkflowDefinition
from ..queries import revisions
from ..queries.progress import public_id
from . import rendered

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


def status_state(key: UUID | None, bearer: str | None) -> revisions.PollState | None:
    """The instance's revision and the caller's live token, from one query (None for a
    malformed or unknown id)."""
    if key is None:
        return None
    return revisions.poll_state(key, token_hash=ApiToken.hash(bearer) if bearer else None)


def known_status(
    request: HttpRequest, key: UUID, state: revisions.PollState, bearer: str | None
) -> HttpResponse | None:
    """The status answer, with no more queries, when it is known: 304 when `If-None-Match`
    still holds, else the document this process already built for the same ETag
    (web/rendered.py). None otherwise, and whenever the caller may not read it: the full view
    then answers, with its 401, 403 or 404 as usual."""
    definition = WorkflowDefinition.cached(state.definition_id)
    if bearer is None and not definition.public:
        return None
    if bearer is not None and not (
        state.token and state.token.allows(ApiToken.Scope.START, definition.key)
    ):
        return None
    tag = status_etag(state.revision, state.status, state.deadline_at, private=bearer is not None)
    if matches(request, tag):
        return not_modified(tag, VARY_API)
    if (body := rendered.body_for(key, tag)) is not None:
        return status_response(body, tag)
    return None


def status_etag(revision: int, status: str, deadline_at, *, private: bool) -> str:
    """The status document's ETag: to the minute while a statutory deadline runs."""
    clock = status == Status.RUNNING and deadline_at is not None
    return etag(revision=revision, clock=clock, private=private)


def status_response(body: bytes, tag: str) -> HttpResponse:
    """A status document's answer: JSON, tagged, revalidated on every use."""
    response = tagged(HttpResponse(body, content_type="application/json"), tag, VARY_API)
    response["Cache-Control"] = "no-cache"
    return response


def page_etag(instance) -> str:
    """The tracker step list's ETag (anyone with the link reads the same page)."""
    return page_tag(instance.revision, instance.status)


def page_tag(revision: int, status: str) -> str:
    """The tracker's ETag from an instance's revision and status (to the minute while it
    runs: "taking longer than usual" moves with the clock)."""
    return etag(revision=revision, clock=status == Status.RUNNING, private=False)


def seen_token(tag: str, revision: int) -> str:
    """The tag as the poll URL's `seen` (hex: a digest of the tag, then the revision)."""
    return hashlib.sha256(tag.encode()).hexdigest()[:16] + format(revision, "x")


def seen_revision(request: HttpRequest) -> int | None:
    """The revision the polling page shows, from its If-None-Match or `seen`."""
    if found := re.match(r'\s*(?:W/)?"(\d+)[.]', request.headers.get("If-None-Match", "")):
        return int(found[1])
    seen = request.GET.get("seen", "")
    return int(seen[16:], 16) if re.fullmatch(r"[0-9a-f]{17,32}", seen) else None


def page_state(instance_id: str) -> tuple[UUID, revisions.PollState] | None:
    """The tracker's instance by its public id, and its revision and status (one query);
    None for a malformed or unknown id. Anyone with the link may read the tracker, so no
    token is checked."""
    key = public_id(instance_id)
    state = revisions.poll_state(key, token_hash=None) if key else None
    return (key, state) if state else None


def unchanged_page(request: HttpRequest, instance_id: str) -> HttpResponse | None:
    """For a poll of a running instance whose rendering still holds: 304 (If-None-Match) or
    204 (`seen`, which htmx also leaves unswapped); None otherwise."""
    seen = request.GET.get("seen")
    if not (seen or request.headers.get("If-None-Match")):
        return None
    found = page_state(instance_id)
    if found is None or found[1].status != Status.RUNNING:
        return None  # an ended instance gets its final step list, which stops the polling
    state = found[1]
    tag = page_tag(state.revision, state.status)
    if matches(request, tag):
        return not_modified(tag, VARY_PAGE)
    if seen == seen_token(tag, state.revision):
        return tagged(HttpResponse(status=204), tag, VARY_PAGE)
    return None
