"""Conditional polls (docs/api.md "ETag", docs/pages.md): an unchanged status or tracker poll
answers 304 from one query, a change of any kind gives the new document, and who may read
it is checked on that one query too (a revoked token is refused at once)."""

from datetime import timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase, override_settings
from django.utils import timezone

from tests.browser.scenarios import at_review, permit_workflow, review
from tests.factories import make_token
from workflows_app import runtime
from workflows_app.models import ApiToken, RunState, StepRun, WorkflowInstance
from workflows_app.queries import stats

HTMX = {"HTTP_HX_REQUEST": "true"}


class StatusPollTests(TestCase):
    def setUp(self):
        stats.clear()
        self.instance = at_review(permit_workflow(public=False))
        self.raw = make_token()
        self.auth = {"HTTP_AUTHORIZATION": f"Bearer {self.raw}"}
        self.path = f"/api/workflows/{self.instance.uuid}/status"

    def get(self, tag: str | None = None, **headers):
        extra = {"HTTP_IF_NONE_MATCH": tag} if tag else {}
        return self.client.get(self.path, **self.auth, **extra, **headers)

    def test_every_status_answer_carries_an_etag_and_says_what_it_varies_on(self):
        response = self.get()
        assert response.status_code == 200
        assert response["ETag"].startswith('W/"')
        for header in ("Accept-Language", "Cookie", "Authorization"):
            assert header in response["Vary"]
        assert "no-cache" in response["Cache-Control"]

    def test_an_unchanged_poll_gets_304_with_no_body_from_one_query(self):
        tag = self.get()["ETag"]
        with self.assertNumQueries(1):
            response = self.get(tag)
        assert (response.status_code, response.content) == (304, b"")
        assert response["ETag"] == tag

    def test_any_of_several_tags_may_match(self):
        tag = self.get()["ETag"]
        assert self.get(f'W/"0.en.p", {tag}').status_code == 304

    def test_a_decision_gives_the_new_document_and_a_new_tag(self):
        tag = self.get()["ETag"]
        review(self.instance)
        response = self.get(tag)
        assert response.status_code == 200
        assert response.json()["status"] == "completed"
        assert response["ETag"] != tag

    def test_an_escalation_alone_changes_the_tag(self):
        tag = self.get()["ETag"]
        runtime.process_due(now=timezone.now() + timedelta(hours=49))
        response = self.get(tag)
        assert response.status_code == 200
        assert [e["type"] for e in response.json()["events"]][-1] == "escalated"

    def test_a_task_claimed_by_a_reviewer_changes_the_tag(self):
        from tests.factories import make_user

        tag = self.get()["ETag"]
        run = StepRun.objects.get(instance=self.instance, state=RunState.WAITING)
        runtime.claim_task(run_id=run.pk, user=make_user("rita", "plan-reviewers"))
        assert self.get(tag).status_code == 200

    def test_a_document_sent_changes_the_tag(self):
        tag = self.get()["ETag"]
        pdf = SimpleUploadedFile("plan.pdf", b"%PDF-1.4\n%\xe2\xe3\n1 0 obj\n<<>>\nendobj\n")
        upload = self.client.post(
            f"/api/workflows/{self.instance.uuid}/documents", {"file": pdf}, **self.auth
        )
        assert upload.status_code == 201, upload.content
        assert self.get(tag).status_code == 200

    def test_a_revoked_token_is_refused_at_once_even_with_a_matching_tag(self):
        tag = self.get()["ETag"]
        ApiToken.objects.update(revoked_at=timezone.now())
        assert self.get(tag).status_code == 401

    def test_a_token_for_another_workflow_gets_403_not_304(self):
        tag = self.get()["ETag"]
        other = make_token("other", workflows=["another-workflow"])
        response = self.client.get(
            self.path, HTTP_AUTHORIZATION=f"Bearer {other}", HTTP_IF_NONE_MATCH=tag
        )
        assert response.status_code == 403

    def test_no_token_on_a_private_workflow_gets_401_not_304(self):
        tag = self.get()["ETag"]
        assert self.client.get(self.path, HTTP_IF_NONE_MATCH=tag).status_code == 401

    @override_settings(LANGUAGES=[("en", "English"), ("es", "Español")])
    def test_the_language_is_part_of_the_tag(self):
        english = self.get(HTTP_ACCEPT_LANGUAGE="en")["ETag"]
        spanish = self.get(HTTP_ACCEPT_LANGUAGE="es")["ETag"]
        assert english != spanish
        assert self.get(english, HTTP_ACCEPT_LANGUAGE="es").status_code == 200

    def test_an_unknown_instance_is_404_whatever_the_tag(self):
        response = self.client.get(
            "/api/workflows/00000000-0000-0000-0000-000000000000/status",
            HTTP_IF_NONE_MATCH='W/"1.en.p"',
            **self.auth,
        )
        assert response.status_code == 404


class PublicStatusPollTests(TestCase):
    def setUp(self):
        stats.clear()
        self.instance = at_review(permit_workflow(public=True))
        self.path = f"/api/workflows/{self.instance.uuid}/status"

    def test_anonymous_and_token_readers_get_different_tags(self):
        anonymous = self.client.get(self.path)["ETag"]
        private = self.client.get(self.path, HTTP_AUTHORIZATION=f"Bearer {make_token()}")
        assert private["ETag"] != anonymous

    def test_an_anonymous_unchanged_poll_gets_304_from_one_query(self):
        tag = self.client.get(self.path)["ETag"]
        with self.assertNumQueries(1):
            response = self.client.get(self.path, HTTP_IF_NONE_MATCH=tag)
        assert response.status_code == 304


class StatusReadAgainTests(TestCase):
    """A portal polling without If-None-Match gets the document this process built for the
    same ETag (web/rendered.py): one query, never a stale document, never to a reader who may
    not see it."""

    def setUp(self):
        stats.clear()
        self.instance = at_review(permit_workflow(public=True))
        self.raw = make_token()
        self.auth = {"HTTP_AUTHORIZATION": f"Bearer {self.raw}"}
        self.path = f"/api/workflows/{self.instance.uuid}/status"

    def test_an_unchanged_instance_read_again_takes_one_query_and_the_same_document(self):
        first = self.client.get(self.path, **self.auth)
        with self.assertNumQueries(1):
            again = self.client.get(self.path, **self.auth)
        assert (again.status_code, again.content, again["ETag"]) == (
            200,
            first.content,
            first["ETag"],
        )

    def test_every_kind_of_change_is_seen_at_once(self):
        self.client.get(self.path, **self.auth)
        runtime.process_due(now=timezone.now() + timedelta(hours=49))
        events = self.client.get(self.path, **self.auth).json()["events"]
        assert events[-1]["type"] == "escalated"
        pdf = SimpleUploadedFile("plan.pdf", b"%PDF-1.4\n%\xe2\xe3\n1 0 obj\n<<>>\nendobj\n")
        upload = self.client.post(
            f"/api/workflows/{self.instance.uuid}/documents", {"file": pdf}, **self.auth
        )
        assert upload.status_code == 201, upload.content
        documents = self.client.get(self.path, **self.auth).json()["documents"]
        assert [d["name"] for d in documents] == ["plan.pdf"]
        review(self.instance)
        assert self.client.get(self.path, **self.auth).json()["status"] == "completed"

    def test_a_revoked_token_is_refused_even_when_the_document_is_kept(self):
        self.client.get(self.path, **self.auth)
        ApiToken.objects.update(revoked_at=timezone.now())
        assert self.client.get(self.path, **self.auth).status_code == 401

    def test_a_token_for_another_workflow_gets_403(self):
        self.client.get(self.path, **self.auth)
        other = make_token("other", workflows=["another-workflow"])
        response = self.client.get(self.path, HTTP_AUTHORIZATION=f"Bearer {other}")
        assert response.status_code == 403

    def test_anonymous_readers_never_get_the_private_document_nor_the_reverse(self):
        private = self.client.get(self.path, **self.auth).json()
        anonymous = self.client.get(self.path).json()
        assert "documents" in private and "documents" not in anonymous
        assert self.client.get(self.path).json() == anonymous
        assert self.client.get(self.path, **self.auth).json() == private

    def test_a_workflow_made_private_refuses_anonymous_readers_at_once(self):
        self.client.get(self.path)
        self.instance.pinned.__class__.objects.filter(pk=self.instance.definition_id).update(
            public=False
        )
        from workflows_app.queries import catalog

        catalog.clear()  # as a change saved in the admin does (its signal)
        assert self.client.get(self.path).status_code == 401


class RevisionTests(TestCase):
    """Every change bumps the instance's revision, in the transaction that makes it."""

    def test_a_worker_claiming_a_queued_run_bumps_the_revision(self):
        from tests.factories import http_workflow, start

        instance = start(http_workflow())
        before = WorkflowInstance.objects.get(pk=instance.pk).revision
        run = StepRun.objects.get(instance=instance, state=RunState.QUEUED)
        assert runtime.claim_run(run_id=run.pk, attempts=run.attempts) is not None
        assert WorkflowInstance.objects.get(pk=instance.pk).revision == before + 1


class TrackerPollTests(TestCase):
    def setUp(self):
        stats.clear()
        self.instance = at_review()

    def poll_headers(self) -> dict:
        response = self.client.get(self.instance.tracker_url, **HTMX)
        assert response.status_code == 200
        return {"HTTP_IF_NONE_MATCH": response["ETag"], **HTMX}

    def test_the_step_list_carries_its_etag_for_the_poll_script(self):
        page = self.client.get(self.instance.tracker_url).content.decode()
        assert 'data-etag="W/&quot;' in page
        assert "workflows_app/poll.js" in page

    def test_an_unchanged_poll_gets_304_from_one_query_and_renders_nothing(self):
        headers = self.poll_headers()
        with self.assertNumQueries(1), self.assertTemplateNotUsed("workflows_app/track.html"):
            response = self.client.get(self.instance.tracker_url, **headers)
        assert (response.status_code, response.content) == (304, b"")
        for header in ("Accept-Language", "Cookie", "HX-Request"):
            assert header in response["Vary"]

    def test_a_poll_after_a_change_gets_the_new_step_list_announced(self):
        headers = self.poll_headers()
        review(self.instance)
        response = self.client.get(self.instance.tracker_url, **headers)
        assert response.status_code == 286
        assert "Update: Approved." in response.content.decode()

    def test_a_new_minute_rerenders_without_announcing_anything(self):
        headers = self.poll_headers()
        stale = headers["HTTP_IF_NONE_MATCH"].replace('"', '"', 1)
        revision, minute, rest = stale.removeprefix('W/"').split(".", 2)
        headers["HTTP_IF_NONE_MATCH"] = f'W/"{revision}.{int(minute) - 1}.{rest}'
        response = self.client.get(self.instance.tracker_url, **headers)
        assert response.status_code == 200
        assert "announcer" not in response.content.decode()


def test_the_store_of_built_documents_is_bounded_and_keeps_the_most_recently_read(monkeypatch):
    from uuid import uuid4

    from workflows_app.web import rendered

    monkeypatch.setattr(rendered, "MAX_ENTRIES", 3)
    keys = [uuid4() for _ in range(4)]
    for key in keys[:3]:
        rendered.keep(key, "t", b"{}")
    assert rendered.body_for(keys[0], "t") == b"{}"  # read: now the newest
    rendered.keep(keys[3], "t", b"{}")
    assert [rendered.body_for(key, "t") for key in keys] == [b"{}", None, b"{}", b"{}"]
    rendered.keep(uuid4(), "t", b"x" * (rendered.MAX_BODY_BYTES + 1))
    assert rendered.body_for(keys[2], "t") == b"{}"  # a body too large is not kept
