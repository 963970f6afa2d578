"""API tokens in the admin: listed without secrets, revoked by an action, kept from non-admins."""

import uuid

from django.contrib.auth.models import Permission
from django.test import TestCase

from tests.factories import make_token, make_user
from workflows_app.models import ApiToken

CHANGELIST = "/admin/workflows_app/apitoken/"


def status_with(raw: str):
    """What the API answers a status request made with the token `raw`."""
    from django.test import Client

    return Client().get(
        f"/api/workflows/{uuid.uuid4()}/status", headers={"Authorization": f"Bearer {raw}"}
    )


class TokenAdminTests(TestCase):
    def setUp(self):
        self.client.force_login(make_user("ada", is_staff=True, is_superuser=True))

    def revoke(self, *tokens: ApiToken):
        body = {"action": "revoke_tokens", "_selected_action": [t.pk for t in tokens]}
        return self.client.post(CHANGELIST, body, follow=True)

    def test_the_revoke_action_revokes_and_the_api_then_refuses_the_token(self):
        raw = make_token("portal")
        token = ApiToken.objects.get()
        assert status_with(raw).status_code == 404  # known token, unknown instance
        page = self.revoke(token).content.decode()
        assert "Revoked 1 token." in page
        token.refresh_from_db()
        assert token.revoked_at is not None
        answer = status_with(raw)
        assert answer.status_code == 401
        assert answer.json() == {"error": "unauthorized", "detail": "this token has been revoked"}

    def test_revoking_a_revoked_token_keeps_its_first_revocation_time_and_says_so(self):
        make_token("old")
        make_token("new")
        old, new = ApiToken.objects.get(name="old"), ApiToken.objects.get(name="new")
        self.revoke(old)
        first = ApiToken.objects.get(pk=old.pk).revoked_at
        page = self.revoke(old, new).content.decode()
        assert "Revoked 1 token. 1 selected token was revoked already." in page
        assert ApiToken.objects.get(pk=old.pk).revoked_at == first
        assert ApiToken.objects.get(pk=new.pk).revoked_at is not None

    def test_the_changelist_shows_state_and_a_hash_prefix_but_never_the_token_or_hash(self):
        raw = make_token("portal", scopes=["start"])
        token = ApiToken.objects.get()
        pages = [
            self.client.get(CHANGELIST).content.decode(),
            self.client.get(f"{CHANGELIST}{token.pk}/change/").content.decode(),
        ]
        for page in pages:
            assert raw not in page and raw.removeprefix("hms_") not in page
            assert token.key_hash not in page
            assert token.key_hash[:9] not in page
            assert f"{token.key_hash[:8]}…" in page
        assert '<td class="field-state">live</td>' in pages[0]
        assert "Api tokens" in self.client.get("/admin/").content.decode()
        assert "manage.py create_api_token" in pages[0]

    def test_there_is_no_add_form_and_no_delete(self):
        token = ApiToken.issue("portal")[0]
        assert self.client.get(f"{CHANGELIST}add/").status_code == 403
        assert self.client.get(f"{CHANGELIST}{token.pk}/delete/").status_code == 403
        assert f"{CHANGELIST}add/" not in self.client.get(CHANGELIST).content.decode()

    def test_narrowing_a_token_in_the_change_form_limits_what_the_api_allows(self):
        raw = make_token("portal")
        token = ApiToken.objects.get()
        body = {"name": "portal", "scopes": ["tasks"], "workflows": "permit, parking"}
        answer = self.client.post(f"{CHANGELIST}{token.pk}/change/", body)
        assert answer.status_code == 302
        token.refresh_from_db()
        assert (token.scopes, token.workflows) == (["tasks"], ["parking", "permit"])
        assert ApiToken.objects.get(key_hash=ApiToken.hash(raw)).pk == token.pk


class TokenAdminAccessTests(TestCase):
    def setUp(self):
        make_token("portal")

    def test_a_reviewer_who_is_not_staff_is_sent_to_the_admin_sign_in(self):
        self.client.force_login(make_user("rita", "Reviewers"))
        answer = self.client.get(CHANGELIST)
        assert answer.status_code == 302
        assert answer["Location"].startswith("/admin/login/")

    def test_staff_with_only_the_view_permission_cannot_see_tokens(self):
        user = make_user("sam", "Reviewers", is_staff=True)
        user.user_permissions.add(Permission.objects.get(codename="view_apitoken"))
        self.client.force_login(user)
        assert self.client.get(CHANGELIST).status_code == 403
        assert "Api tokens" not in self.client.get("/admin/").content.decode()

    def test_staff_with_the_change_permission_can_revoke(self):
        user = make_user("olga", is_staff=True)
        user.user_permissions.add(Permission.objects.get(codename="change_apitoken"))
        self.client.force_login(user)
        token = ApiToken.objects.get()
        body = {"action": "revoke_tokens", "_selected_action": [token.pk]}
        assert self.client.post(CHANGELIST, body).status_code == 302
        token.refresh_from_db()
        assert token.revoked_at is not None
