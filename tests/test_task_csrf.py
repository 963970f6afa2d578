"""Every staff action on a task is a POST that needs the CSRF token: claim, release and
reassign as well as decide (tests/test_inbox.py). Without the token the action is refused
(403) and nothing changes; with the token the page hands to htmx, it goes through."""

import re

from tests.committing import CommittingClient
from tests.factories import make_user
from tests.test_inbox import INBOX, InboxTestCase, task_url
from workflows_app import runtime
from workflows_app.models import Event, StepRun


class TaskActionCsrfTests(InboxTestCase):
    def csrf_client(self, user) -> CommittingClient:
        client = CommittingClient(enforce_csrf_checks=True)
        client.force_login(user)
        return client

    def page_token(self, client) -> dict[str, str]:
        """The header htmx sends: the token the inbox page gives it in hx-headers."""
        page = client.get(INBOX)
        token = re.search(r"hx-headers='\{\"X-CSRFToken\": \"(\w+)\"\}'", page.text).group(1)
        return {"x-csrftoken": token}

    def test_claim_is_refused_without_the_token_and_goes_through_with_it(self):
        task = self.reach_approve()
        client = self.csrf_client(self.reviewer)
        assert client.post(task_url(task, "claim")).status_code == 403
        assert StepRun.objects.get(pk=task.pk).claimed_by is None
        response = client.post(task_url(task, "claim"), headers=self.page_token(client))
        assert response.status_code == 302
        assert StepRun.objects.get(pk=task.pk).claimed_by == self.reviewer

    def test_release_is_refused_without_the_token_and_goes_through_with_it(self):
        task = self.reach_approve()
        runtime.claim_task(run_id=task.pk, user=self.reviewer)
        client = self.csrf_client(self.reviewer)
        assert client.post(task_url(task, "release")).status_code == 403
        assert StepRun.objects.get(pk=task.pk).claimed_by == self.reviewer
        response = client.post(task_url(task, "release"), headers=self.page_token(client))
        assert response.status_code == 302
        assert StepRun.objects.get(pk=task.pk).claimed_by is None

    def test_reassign_is_refused_without_the_token_and_goes_through_with_it(self):
        task = self.reach_approve()
        client = self.csrf_client(make_user("sue", "Supervisors"))
        form = {"to": "group:backup-reviewers", "reason": "Rita is ill"}
        assert client.post(task_url(task, "reassign"), form).status_code == 403
        assert not Event.objects.filter(run=task, type=Event.Type.REASSIGNED).exists()
        response = client.post(task_url(task, "reassign"), form, headers=self.page_token(client))
        assert response.status_code == 302
        event = Event.objects.get(run=task, type=Event.Type.REASSIGNED)
        assert (event.actor, event.detail["to"]) == ("user:sue", "group:backup-reviewers")
