from django.conf import settings
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # set_language: the citizen pages' language switch posts here (docs/pages.md, Languages).
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("workflows_app.web.urls")),
]

# Optional staff sign-in through OpenID Connect (docs/deploy.md): /oidc/authenticate/ and
# /oidc/callback/, only when OIDC_RP_CLIENT_ID is set.
if settings.OIDC_ENABLED:
    urlpatterns += [path("oidc/", include("mozilla_django_oidc.urls"))]

# Under /api/ these answer JSON (docs/api.md); elsewhere they fall back to Django's pages.
handler400 = "workflows_app.web.api.bad_request"
handler500 = "workflows_app.web.api.server_error"
