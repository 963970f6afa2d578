"""GET /metrics: Prometheus text format for monitors (docs/metrics.md).

Readable by a token of scope `metrics`, or from an address in HMS_METRICS_ALLOW (web/
monitors.py, as for /healthz's detail); anyone else gets 401 (no token) or 403. Values are
read from the database at scrape time (queries/metrics.py), so any web process answers
for every process.
"""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from ..queries.metrics import DatabaseCollector
from .auth import bearer_token
from .monitors import is_monitor

_registry = CollectorRegistry(auto_describe=False)
_registry.register(DatabaseCollector())


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        response = _error(405, "method_not_allowed", "use GET")
        response["Allow"] = "GET, HEAD"
        return response
    if not is_monitor(request):
        if bearer_token(request) is None:
            return _error(401, "unauthorized", "send a token of scope metrics")
        return _error(403, "forbidden", "this token may not read metrics (scope metrics)")
    return HttpResponse(generate_latest(_registry), content_type=CONTENT_TYPE_LATEST)


def _error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail}, status=status)
