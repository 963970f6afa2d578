"""The site's URLs plus the benchmark's one-row baseline view (never part of the app)."""

from django.urls import include, path

from bench.baseline import one_row

urlpatterns = [
    path("bench/one-row/<int:pk>", one_row, name="bench-one-row"),
    path("", include("hms_site.urls")),
]

handler400 = "workflows_app.web.api.bad_request"
handler500 = "workflows_app.web.api.server_error"
