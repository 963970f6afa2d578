"""503 with Retry-After when the database cannot be reached or written (docs/deploy.md).

A full connection pool (psycopg_pool's PoolTimeout), a server that is down, restarting or out
of connection slots, a database that refuses writes (read-only, disk full) and an SQLite file
locked past its busy timeout are conditions that pass: the client is told to come back
(`Retry-After`), never given a 500. Under /api/ the answer is the API's JSON error
(docs/api.md); elsewhere a small plain page built here, so that answering needs no template
and no database.

Two paths lead here: `UnavailableMiddleware.process_exception` for exceptions raised by a
view, and for failures in other middleware (the session saved after the view, say) a 500 that
`got_request_exception` marked, which the middleware, outermost, turns into the 503.
"""

import logging
import sqlite3
import sys
from collections.abc import Callable

from django.conf import settings
from django.core.signals import got_request_exception
from django.db import InterfaceError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import translation
from django.utils.html import escape
from django.utils.translation import gettext as _

log = logging.getLogger(__name__)

# PostgreSQL error classes that say "not now" rather than "wrong": connection exceptions (08),
# insufficient resources (53: too many connections, disk full), operator intervention (57P:
# shutdown, cannot connect now), and a read-only transaction (25006, e.g. a standby).
_PG_UNAVAILABLE_PREFIXES = ("08", "53", "57P", "25006")
_SQLITE_UNAVAILABLE = ("database is locked", "database table is locked", "disk i/o error")

DETAIL = "the database is unavailable for the moment: try again in {seconds} s"
PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1>
<p>{text}</p></body></html>
"""


def _page(request: HttpRequest) -> str:
    """The plain page in the visitor's language (cookie or Accept-Language; no database)."""
    language = translation.get_language_from_request(request)
    with translation.override(language):
        return PAGE.format(
            lang=escape(language),
            title=escape(_("Try again shortly")),
            text=escape(
                _(
                    "We cannot reach our records for the moment. Nothing you sent was lost "
                    "or half-saved: please try again in a few seconds."
                )
            ),
        )


def database_unavailable(exc: BaseException | None) -> bool:
    """Whether `exc` (or what caused it) says the database cannot be reached or written now."""
    seen = 0
    while exc is not None and seen < 10:
        if _is_unavailable(exc):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _is_unavailable(exc: BaseException) -> bool:
    if type(exc).__name__ == "PoolTimeout":  # psycopg_pool, only installed with PostgreSQL
        return True
    if isinstance(exc, sqlite3.OperationalError):
        return str(exc).lower().startswith(_SQLITE_UNAVAILABLE)
    if isinstance(exc, InterfaceError) and "closed" in str(exc):
        return True  # the connection was lost between two queries
    psycopg = sys.modules.get("psycopg")
    if psycopg is None or not isinstance(exc, psycopg.Error):
        return False
    state = exc.sqlstate
    if state is None:  # the server never answered: refused, reset, closed unexpectedly
        return isinstance(exc, psycopg.OperationalError)
    return state.startswith(_PG_UNAVAILABLE_PREFIXES)


def unavailable_response(request: HttpRequest) -> HttpResponse:
    """The 503: JSON under /api/ (the API's error shape), a plain page elsewhere."""
    seconds = settings.HMS_UNAVAILABLE_RETRY_AFTER
    if request.path.startswith("/api/"):
        response = JsonResponse(
            {"error": "unavailable", "detail": DETAIL.format(seconds=seconds)}, status=503
        )
    else:
        response = HttpResponse(_page(request), status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(seconds)
    response["Cache-Control"] = "no-store"
    return response


def log_unavailable(request: HttpRequest, exc: BaseException) -> None:
    """One warning line, no traceback: the cause is outside the code, and it may repeat a lot."""
    log.warning(
        "503 for %s %s: database unavailable (%s: %s)",
        request.method,
        request.path,
        type(exc).__name__,
        str(exc).strip()[:200],
    )


class UnavailableMiddleware:
    """Outermost middleware: a database that cannot be reached or written answers 503."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 500 and getattr(request, "_database_unavailable", False):
            return unavailable_response(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not database_unavailable(exception):
            return None
        log_unavailable(request, exception)
        return unavailable_response(request)


def _mark_request(sender, request: HttpRequest | None = None, **kwargs) -> None:
    """A failure outside any view (in a middleware) is still a 503 when the database caused it."""
    exc = sys.exception()
    if request is not None and database_unavailable(exc):
        log_unavailable(request, exc)
        request._database_unavailable = True


got_request_exception.connect(_mark_request, dispatch_uid="hms-database-unavailable")
