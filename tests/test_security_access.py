"""Security findings of issue 13 (part 3) about who may do what: sign-in lockout keys,
reassigning closed tasks, token scopes, separation of duties, what anonymous readers see,
/healthz and the board, signed callbacks bound to their task (docs/security.md, R2)."""

from django.core.cache import cache
from django.test import TestCase, override_settings

from tests.factories import make_user

LOCMEM = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "test-security-access",
    }
}


@override_settings(CACHES=LOCMEM, HMS_LOGIN_CACHE="default", HMS_LOGIN_MAX_ATTEMPTS=5)
class SignInLockoutKeyTests(TestCase):
    """Finding 1: the lockout and the failures it counts use one normalised username."""

    def setUp(self):
        cache.clear()
        make_user("supervisor", "Supervisors", is_staff=True)

    def sign_in(self, username: str, password: str, path: str):
        return self.client.post(path, {"username": username, "password": password})

    def test_a_full_width_username_is_locked_out_with_its_plain_form_on_both_sign_in_pages(self):
        for path in ("/accounts/login/", "/admin/login/"):
            cache.clear()
            for _ in range(5):
                assert self.sign_in("supervisor", "wrong", path).status_code == 200
            full_width = self.sign_in("ｓｕｐｅｒｖｉｓｏｒ", "pw", path)
            assert full_width.status_code == 429, path
            assert "_auth_user_id" not in self.client.session
