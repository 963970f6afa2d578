"""Optional staff sign-in through OpenID Connect (docs/deploy.md): off by default, on when
OIDC_RP_CLIENT_ID and the provider's endpoints are set. No network: the settings, the URLs
and the backend's configuration are checked in a fresh process (settings are read once)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.test import TestCase

ROOT = Path(__file__).resolve().parent.parent
OIDC = {
    "OIDC_RP_CLIENT_ID": "hms-staff",
    "OIDC_RP_CLIENT_SECRET": "s3cret",
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "https://id.example.gov/authorize",
    "OIDC_OP_TOKEN_ENDPOINT": "https://id.example.gov/token",
    "OIDC_OP_USER_ENDPOINT": "https://id.example.gov/userinfo",
    "OIDC_OP_JWKS_ENDPOINT": "https://id.example.gov/jwks",
}
SHOW = """
import json, django
django.setup()
from django.conf import settings as s
from django.urls import reverse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
backend = OIDCAuthenticationBackend()
print(json.dumps({
    "enabled": s.OIDC_ENABLED,
    "app": "mozilla_django_oidc" in s.INSTALLED_APPS,
    "backends": s.AUTHENTICATION_BACKENDS,
    "init": reverse("oidc_authentication_init"),
    "callback": reverse("oidc_authentication_callback"),
    "token_endpoint": backend.OIDC_OP_TOKEN_ENDPOINT,
    "create_user": s.OIDC_CREATE_USER,
}))
"""


class OidcOffByDefaultTests(TestCase):
    def test_nothing_of_oidc_is_installed_or_routed_and_the_password_form_stays(self):
        assert settings.OIDC_ENABLED is False
        assert "mozilla_django_oidc" not in settings.INSTALLED_APPS
        assert self.client.get("/oidc/authenticate/").status_code == 404
        page = self.client.get("/accounts/login/").content.decode()
        assert "Password" in page and "organisation account" not in page


class OidcSwitchedOnTests(TestCase):
    def test_the_oidc_variables_turn_it_on_beside_the_password_sign_in(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("OIDC_")}
        env.update(OIDC, DJANGO_SETTINGS_MODULE="hms_site.settings")
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        done = subprocess.run(
            [sys.executable, "-c", SHOW], cwd=ROOT, env=env, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        shown = json.loads(done.stdout)
        assert shown == {
            "enabled": True,
            "app": True,
            "backends": [
                "mozilla_django_oidc.auth.OIDCAuthenticationBackend",
                "django.contrib.auth.backends.ModelBackend",
            ],
            "init": "/oidc/authenticate/",
            "callback": "/oidc/callback/",
            "token_endpoint": "https://id.example.gov/token",
            "create_user": False,
        }
