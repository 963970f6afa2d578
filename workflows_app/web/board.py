"""The public "now serving" board: counts and waits per workflow step, no personal data."""

from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from ..queries import stats
from .tracker import HtmxHttpRequest

BOARD = "workflows_app/board.html"
POLL_SECONDS = 10
NOSCRIPT_REFRESH_SECONDS = 60


@require_GET
@never_cache
@vary_on_headers("HX-Request")
def board(request: HtmxHttpRequest) -> HttpResponse:
    now = timezone.now()
    context = {
        "workflows": stats.board(now=now),
        "now": now,
        "poll_seconds": POLL_SECONDS,
        "noscript_refresh": NOSCRIPT_REFRESH_SECONDS,
    }
    template = f"{BOARD}#board-tables" if request.htmx else BOARD
    return render(request, template, context)
