"""The staff inbox at /tasks/ and the task pages: who sees what, and what each action does."""

import re
from datetime import timedelta

from django.db import connection
from django.test import Client, TestCase
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import SEED, make_definition, make_seed_services, make_user, run_queued, start
from workflows_app import runtime
from workflows_app.models import Event, RunState, Status, StepRun, WorkflowInstance

INBOX = "/tasks/"
HTMX = {"HTTP_HX_REQUEST": "true"}


def task_url(task, action: str = "") -> str:
    return f"/tasks/{task.pk}/{action}"


class InboxTestCase(TestCase):
    def setUp(self):
        make_seed_services()
        self.definition = make_definition()
        self.reviewer = make_user("rita", "plan-reviewers")
        self.colleague = make_user("carl", "plan-reviewers")
        self.backup = make_user("bob", "backup-reviewers")
        self.outsider = make_user("otto")

    def reach_approve(self, payload=None, definition=None) -> StepRun:
        """Start an application and run its validation: the approval task waits for a person."""
        instance = start(definition or self.definition, payload or {"applicant": "Ada"})
        run_queued(instance)
        return StepRun.objects.get(instance=instance, step_id="approve")

    def escalate(self, task) -> StepRun:
        runtime.process_due(now=task.due_at + timedelta(seconds=1))
        task.refresh_from_db()
        return task

    def as_user(self, user) -> Client:
        self.client.force_login(user)
        return self.client

    def sections(self, response) -> dict[str, list[str]]:
        """Case numbers per inbox section, as the page shows them."""
        return {
            s["key"]: [row.case_number for row in s["rows"]] for s in response.context["sections"]
        }


class SignInTests(InboxTestCase):
    def test_the_inbox_sends_anonymous_visitors_to_the_sign_in_page(self):
        response = self.client.get(INBOX)
        assert response.status_code == 302
        assert response["Location"] == "/accounts/login/?next=/tasks/"

    def test_a_reviewer_without_admin_rights_signs_in_and_lands_in_the_inbox(self):
        page = self.client.get("/accounts/login/?next=/tasks/")
        assert page.status_code == 200 and "Staff sign in" in page.text
        response = self.client.post(
            "/accounts/login/", {"username": "rita", "password": "pw", "next": "/tasks/"}
        )
        assert response.status_code == 302 and response["Location"] == "/tasks/"
        assert self.client.get(INBOX).status_code == 200

    def test_a_wrong_password_says_so_in_plain_words(self):
        response = self.client.post("/accounts/login/", {"username": "rita", "password": "nope"})
        assert response.status_code == 200
        assert "do not match" in response.text


class InboxListTests(InboxTestCase):
    def test_a_reviewer_sees_the_groups_task_with_its_case_step_and_workflow(self):
        task = self.reach_approve()
        response = self.as_user(self.reviewer).get(INBOX)
        case = task.instance.case_number
        assert self.sections(response) == {"mine": [], "group": [case], "offered": []}
        assert "Approve" in response.text and "Building permit" in response.text
        assert "1\xa0day, 23\xa0hours left" in response.text
        assert f'href="{task_url(task)}"' in response.text

    def test_an_outsider_sees_no_task_and_is_told_what_to_do(self):
        self.reach_approve()
        response = self.as_user(self.outsider).get(INBOX)
        assert self.sections(response) == {"mine": [], "group": [], "offered": []}
        assert "Claim a task under" in response.text
        assert "not in any reviewer group yet" in response.text

    def test_a_reviewer_with_nothing_to_do_reads_where_new_tasks_come_from(self):
        response = self.as_user(self.reviewer).get(INBOX)
        assert (
            "No tasks wait for you. New tasks appear here when an application reaches"
            in response.text
        )
        assert "Nothing has been escalated to you" in response.text

    def test_an_escalated_task_is_offered_to_the_backups_and_leaves_the_reviewers_list(self):
        task = self.escalate(self.reach_approve())
        case = task.instance.case_number
        backup_view = self.as_user(self.backup).get(INBOX)
        assert self.sections(backup_view) == {"mine": [], "group": [], "offered": [case]}
        assert "Escalated (level 1)" in backup_view.text
        assert self.sections(self.as_user(self.reviewer).get(INBOX))["group"] == []

    def test_a_claimed_task_moves_to_assigned_to_me_and_leaves_the_group_list(self):
        task = self.reach_approve()
        self.as_user(self.reviewer).post(task_url(task, "claim"))
        case = task.instance.case_number
        assert self.sections(self.client.get(INBOX)) == {"mine": [case], "group": [], "offered": []}
        assert self.sections(self.as_user(self.colleague).get(INBOX))["group"] == []

    def test_waiting_time_and_an_overdue_deadline_are_shown_plainly(self):
        task = self.reach_approve()
        now = timezone.now()
        StepRun.objects.filter(pk=task.pk).update(
            started_at=now - timedelta(hours=3, minutes=5),
            due_at=now - timedelta(hours=2, minutes=5),
        )
        response = self.as_user(self.reviewer).get(INBOX)
        assert "3\xa0hours, 5\xa0minutes" in response.text
        assert "overdue by 2\xa0hours, 5\xa0minutes" in response.text
        assert "is-overdue" in response.text


class SortAndFilterTests(InboxTestCase):
    def setUp(self):
        super().setUp()
        self.tasks = [self.reach_approve() for _ in range(3)]
        now = timezone.now()
        # The newest task is due first; the middle one has waited longest.
        for task, waited, due in zip(self.tasks, (2, 9, 1), (30, 20, 10), strict=True):
            StepRun.objects.filter(pk=task.pk).update(
                started_at=now - timedelta(hours=waited), due_at=now + timedelta(hours=due)
            )
        self.cases = [task.instance.case_number for task in self.tasks]

    def group_list(self, **params) -> list[str]:
        return self.sections(self.as_user(self.reviewer).get(INBOX, params))["group"]

    def test_tasks_are_sorted_by_due_time_by_default(self):
        assert self.group_list() == [self.cases[2], self.cases[1], self.cases[0]]

    def test_tasks_sort_by_waiting_time_and_by_case_number(self):
        assert self.group_list(sort="waited") == [self.cases[1], self.cases[0], self.cases[2]]
        assert self.group_list(sort="case") == sorted(self.cases)

    def test_an_unknown_sort_falls_back_to_the_due_time(self):
        assert self.group_list(sort="nonsense") == [self.cases[2], self.cases[1], self.cases[0]]

    def test_the_workflow_filter_shows_only_that_workflows_tasks(self):
        other = make_definition({**SEED, "id": "tree-felling"})
        tree = self.reach_approve(definition=other).instance.case_number
        assert self.group_list(workflow="tree-felling") == [tree]
        assert set(self.group_list(workflow="building-permit")) == set(self.cases)
        assert tree in self.group_list()

    def test_a_filtered_empty_list_suggests_clearing_the_filter(self):
        make_definition({**SEED, "id": "tree-felling"})
        response = self.as_user(self.reviewer).get(INBOX, {"workflow": "tree-felling"})
        assert "Choose “All workflows”" in response.text

    def test_the_view_filter_shows_one_section(self):
        response = self.as_user(self.reviewer).get(INBOX, {"view": "offered"})
        assert self.sections(response) == {"offered": []}

    def test_an_htmx_request_gets_only_the_list_partial(self):
        response = self.as_user(self.reviewer).get(INBOX, {"sort": "case"}, **HTMX)
        assert response.status_code == 200
        assert response.text.strip().startswith('<div id="task-list"')
        assert "<html" not in response.text and "inbox-filter" not in response.text
        assert all(case in response.text for case in self.cases)
        assert "HX-Request" in response["Vary"]

    def test_the_full_page_has_a_filter_form_that_works_with_and_without_htmx(self):
        response = self.as_user(self.reviewer).get(INBOX)
        form = re.search(r'<form class="inbox-filter"[^>]*>', response.text).group(0)
        assert 'method="get"' in form and 'action="/tasks/"' in form
        assert 'hx-get="/tasks/"' in form and 'hx-target="#task-list"' in form

    def test_the_list_takes_as_many_queries_for_thirty_tasks_as_for_three(self):
        client = self.as_user(self.reviewer)
        client.get(INBOX)  # warm the per-process definition cache
        with CaptureQueriesContext(connection) as three:
            client.get(INBOX)
        for _ in range(27):
            self.reach_approve()
        with self.assertNumQueries(len(three)):
            response = client.get(INBOX)
        assert len(self.sections(response)["group"]) == 30


class TaskPageTests(InboxTestCase):
    def test_the_application_is_shown_readably_and_escaped(self):
        payload = {
            "applicant": "<script>alert(1)</script>",
            "site": {"street": "Main <b>St</b>", "parcels": ["A-1", "B-2"]},
            "urgent": True,
        }
        task = self.reach_approve(payload)
        response = self.as_user(self.reviewer).get(task_url(task))
        assert response.status_code == 200
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
        assert "<script>alert" not in response.text and "<b>St</b>" not in response.text
        assert re.search(
            r"<dt>Site</dt>\s*<dd>\s*<dl class=\"payload\">\s*<dt>Street</dt>", response.text
        )
        assert "<dt>#2</dt>" in response.text and "B-2" in response.text
        assert "<dd>Yes</dd>" in response.text

    def test_the_page_has_no_inline_script_or_style_and_gives_htmx_the_csrf_token(self):
        task = self.reach_approve()
        response = self.as_user(self.reviewer).get(task_url(task))
        scripts = re.findall(r"<script[^>]*>", response.text)
        assert scripts and all("src=" in tag for tag in scripts)
        assert "<style" not in response.text and " style=" not in response.text
        token = re.search(r"hx-headers='\{\"X-CSRFToken\": \"(\w+)\"\}'", response.text)
        assert token and len(token.group(1)) == 64

    def test_the_history_and_the_allowed_outcomes_are_shown(self):
        steps = [
            SEED["steps"][0],
            {**SEED["steps"][1], "on": {"needs-info": "validate"}},
            SEED["steps"][2],
        ]
        task = self.reach_approve(definition=make_definition({**SEED, "steps": steps}))
        response = self.as_user(self.reviewer).get(task_url(task))
        buttons = re.findall(r'<button type="submit" name="result" value="([\w-]+)"', response.text)
        assert buttons == ["approved", "rejected", "needs-info"]
        assert "Needs info" in response.text
        assert re.search(
            r"<strong>Validate</strong> <span class=\"state\">done</span>", response.text
        )
        assert re.search(
            r"<strong>Approve</strong> <span class=\"state\">waiting</span>", response.text
        )

    def test_an_outsider_cannot_open_the_task_or_read_the_application(self):
        task = self.reach_approve({"applicant": "Ada Secret"})
        response = self.as_user(self.outsider).get(task_url(task))
        assert response.status_code == 403
        assert "belongs to plan-reviewers" in response.text and "Ada Secret" not in response.text

    def test_an_unknown_task_is_404(self):
        self.as_user(self.reviewer)
        assert self.client.get("/tasks/00000000-0000-0000-0000-000000000000/").status_code == 404
        assert self.client.get("/tasks/not-a-uuid/").status_code == 404


class DecisionTests(InboxTestCase):
    def test_approving_without_javascript_completes_the_step_and_redirects_back(self):
        task = self.reach_approve()
        response = self.as_user(self.reviewer).post(
            task_url(task, "decide"),
            {"result": "approved", "reason": "All in order.", "note": "Checked the plans."},
        )
        assert response.status_code == 302 and response["Location"] == task_url(task)
        task.refresh_from_db()
        instance = WorkflowInstance.objects.get(pk=task.instance_id)
        assert (task.state, task.result, task.reason) == ("succeeded", "approved", "All in order.")
        assert task.note == "Checked the plans."
        assert instance.status == "completed"  # notify ran right after the decision's commit
        page = self.client.get(task_url(task))
        assert "Recorded “Approve”" in page.text and "This task is closed" in page.text

    def test_approving_with_htmx_swaps_the_panel_and_the_history_in_place(self):
        task = self.reach_approve()
        response = self.as_user(self.reviewer).post(
            task_url(task, "decide"), {"result": "rejected", "reason": "No plans."}, **HTMX
        )
        assert response.status_code == 200
        assert response.text.strip().startswith('<section id="action-panel"')
        assert 'id="task-history"' in response.text and 'hx-swap-oob="true"' in response.text
        assert "Recorded “Reject”" in response.text and "<html" not in response.text

    def test_a_refusal_without_a_reason_comes_back_with_the_error_on_the_field(self):
        task = self.reach_approve()
        body = {"result": "rejected", "reason": " ", "note": "Typed <note>"}
        for extra in ({}, HTMX):
            response = self.as_user(self.reviewer).post(task_url(task, "decide"), body, **extra)
            assert response.status_code == 400
            text = response.text
            error = re.search(
                r'<p id="decision-reason-error" class="error-message">([^<]+)</p>', text
            )
            assert error and "give a reason for the refusal" in error.group(1)
            reason = re.search(r'<textarea id="decision-reason"[^>]*>', text).group()
            assert 'aria-invalid="true"' in reason
            assert 'aria-describedby="decision-reason-hint decision-reason-error"' in reason
            assert ">Typed &lt;note&gt;</textarea>" in text  # what was typed is kept, escaped
        task.refresh_from_db()
        assert task.state == RunState.WAITING and not task.result

    def test_the_reason_and_the_note_are_labelled_for_what_they_are(self):
        task = self.reach_approve()
        text = self.as_user(self.reviewer).get(task_url(task)).text
        assert '<label for="decision-reason">Reason for the applicant</label>' in text
        assert "Shown to the applicant with the decision. Required to refuse." in text
        assert "Only staff see it. It is never sent to the applicant." in text

    def test_a_non_member_is_refused_with_403_and_nothing_changes(self):
        task = self.reach_approve()
        for extra in ({}, HTMX):
            response = self.as_user(self.outsider).post(
                task_url(task, "decide"), {"result": "approved"}, **extra
            )
            assert response.status_code == 403
            assert "belongs to plan-reviewers" in response.text and "Ada" not in response.text
        task.refresh_from_db()
        assert task.state == RunState.WAITING and not task.result

    def test_a_second_decision_is_refused_with_409_and_the_page_stays_usable(self):
        task = self.reach_approve()
        self.as_user(self.reviewer).post(task_url(task, "decide"), {"result": "approved"})
        response = self.as_user(self.colleague).post(
            task_url(task, "decide"), {"result": "rejected"}
        )
        assert response.status_code == 409
        assert "already" in response.text and "This task is closed" in response.text
        assert "Back to my tasks" in response.text
        assert StepRun.objects.get(pk=task.pk).result == "approved"

    def test_an_outcome_the_step_does_not_allow_is_refused(self):
        task = self.reach_approve()
        response = self.as_user(self.reviewer).post(task_url(task, "decide"), {"result": "bribed"})
        assert response.status_code == 403 and "not an outcome of this step" in response.text
        response = self.client.post(task_url(task, "decide"), {"result": ""})
        assert response.status_code == 400 and "choose an outcome" in response.text
        assert StepRun.objects.get(pk=task.pk).state == RunState.WAITING

    def test_the_applicant_may_see_but_not_decide_their_own_application(self):
        task = self.reach_approve({"applicant": "Rita", "applicantUsername": "rita"})
        page = self.as_user(self.reviewer).get(task_url(task))
        assert "separation of duties" in page.text and 'name="result"' not in page.text
        response = self.client.post(task_url(task, "decide"), {"result": "approved"})
        assert response.status_code == 403
        assert StepRun.objects.get(pk=task.pk).state == RunState.WAITING

    def test_actions_need_the_csrf_token(self):
        task = self.reach_approve()
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.reviewer)
        assert client.post(task_url(task, "decide"), {"result": "approved"}).status_code == 403
        assert StepRun.objects.get(pk=task.pk).state == RunState.WAITING


class ClaimTests(InboxTestCase):
    def test_a_claim_by_one_reviewer_refuses_the_other_reviewers_actions(self):
        task = self.reach_approve()
        assert self.as_user(self.reviewer).post(task_url(task, "claim")).status_code == 302
        claim = self.as_user(self.colleague).post(task_url(task, "claim"), **HTMX)
        assert claim.status_code == 409 and "already taken by rita" in claim.text
        assert "Claimed by rita" in claim.text  # the panel stays usable and says who has it
        decide = self.client.post(task_url(task, "decide"), {"result": "approved"})
        assert decide.status_code == 403 and "rita has claimed this task" in decide.text
        assert StepRun.objects.get(pk=task.pk).state == RunState.WAITING

    # Two reviewers claiming at the same moment: a real race in tests/test_concurrency.py.

    def test_the_claimant_can_release_the_task_back_to_the_group(self):
        task = self.reach_approve()
        client = self.as_user(self.reviewer)
        page = client.get(task_url(task))
        assert ">Claim</button>" in page.text
        client.post(task_url(task, "claim"))
        assert "Release to the group" in client.get(task_url(task)).text
        response = client.post(task_url(task, "release"), **HTMX)
        assert response.status_code == 200 and "back in the group" in response.text
        assert StepRun.objects.get(pk=task.pk).claimed_by is None

    def test_a_backup_accepts_an_escalated_task_and_approves_it(self):
        task = self.escalate(self.reach_approve())
        client = self.as_user(self.backup)
        assert "Accept this task" in client.get(task_url(task)).text
        accepted = client.post(task_url(task, "claim"), **HTMX)
        assert accepted.status_code == 200 and "You accepted this task" in accepted.text
        client.post(task_url(task, "decide"), {"result": "approved"})
        assert WorkflowInstance.objects.get(pk=task.instance_id).status == "completed"
        assert StepRun.objects.get(pk=task.pk).completed_by == "user:bob"


class ReassignTests(InboxTestCase):
    def setUp(self):
        super().setUp()
        self.supervisor = make_user("sue", "Supervisors")
        self.task = self.reach_approve()

    def test_a_supervisor_reassigns_with_a_reason_and_the_history_records_it(self):
        response = self.as_user(self.supervisor).post(
            task_url(self.task, "reassign"),
            {"to": "group:backup-reviewers", "reason": "Rita is ill"},
        )
        assert response.status_code == 302
        event = Event.objects.get(run=self.task, type=Event.Type.REASSIGNED)
        assert (event.actor, event.detail["to"], event.detail["reason"]) == (
            "user:sue",
            "group:backup-reviewers",
            "Rita is ill",
        )
        assert event.detail["from"] == "group:plan-reviewers"
        page = self.client.get(task_url(self.task))
        assert "Reassigned" in page.text and "Rita is ill" in page.text
        assert self.sections(self.as_user(self.backup).get(INBOX))["group"] == [
            self.task.instance.case_number
        ]

    def test_a_reassignment_without_a_reason_is_refused(self):
        response = self.as_user(self.supervisor).post(
            task_url(self.task, "reassign"), {"to": "group:backup-reviewers", "reason": " "}, **HTMX
        )
        assert response.status_code == 400 and "give a reason" in response.text
        assert StepRun.objects.get(pk=self.task.pk).assignee_group.name == "plan-reviewers"

    def test_only_supervisors_see_and_may_use_the_reassign_form(self):
        assert (
            "Reassign (supervisors)"
            not in self.as_user(self.reviewer).get(task_url(self.task)).text
        )
        response = self.client.post(
            task_url(self.task, "reassign"), {"to": "group:backup-reviewers", "reason": "mine"}
        )
        assert response.status_code == 403 and "only supervisors can reassign" in response.text
        assert (
            "Reassign (supervisors)" in self.as_user(self.supervisor).get(task_url(self.task)).text
        )
        assert not Event.objects.filter(type=Event.Type.REASSIGNED).exists()


class FinishedInstanceTests(InboxTestCase):
    def test_a_decided_task_leaves_every_inbox(self):
        task = self.reach_approve()
        self.as_user(self.reviewer).post(task_url(task, "decide"), {"result": "approved"})
        run_queued(task.instance)
        assert WorkflowInstance.objects.get(pk=task.instance_id).status == Status.COMPLETED
        assert self.sections(self.client.get(INBOX)) == {"mine": [], "group": [], "offered": []}


class TracesAndTimesTests(InboxTestCase):
    """Item 8 of issue 14: a closed task says so, moments are written for people, and who had
    a task keeps a trace of it once it is escalated away."""

    def test_a_closed_task_page_says_closed_and_never_how_long_is_left(self):
        task = self.reach_approve()
        self.as_user(self.reviewer).post(task_url(task, "decide"), {"result": "approved"})
        text = self.client.get(task_url(task)).text
        meta = re.search(r'<p class="task-meta">(.*?)</p>', text, re.S).group(1)
        assert "Closed" in meta and " left" not in meta and "waiting" not in meta
        assert re.search(
            r'<time datetime="[^"]+">\d{1,2} \w{3} \d{4}, \d\d:\d\d CES?T</time>', meta
        )

    def test_moments_are_written_for_people_with_the_time_zone_never_as_iso_text(self):
        task = self.reach_approve()
        runtime.process_due(now=task.wake_at + timedelta(seconds=1))  # the first reminder
        assert Event.objects.filter(run=task, type=Event.Type.REMINDED).exists()
        text = self.as_user(self.reviewer).get(task_url(task)).text
        visible = re.sub(r'datetime="[^"]*"', "", text)
        assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", visible), "an ISO moment is shown raw"
        due = timezone.localtime(task.due_at)
        assert f"{due:%-d %b %Y, %H:%M} {due.tzname()}</time>" in text

    def test_a_task_escalated_away_stays_readable_for_the_group_and_the_claimant(self):
        task = self.reach_approve()
        self.as_user(self.reviewer).post(task_url(task, "claim"))
        task = self.escalate(StepRun.objects.get(pk=task.pk))
        assert task.assignee_group.name == "backup-reviewers"
        event = Event.objects.get(run=task, type=Event.Type.ESCALATED)
        assert (event.detail["from"], event.detail["claimed_by"]) == (
            "group:plan-reviewers",
            "rita",
        )
        for user in (self.reviewer, self.colleague):
            inbox = self.as_user(user).get(INBOX).text
            trace = re.search(r'id="section-passed-on".*?</section>', inbox, re.S).group()
            assert task.instance.case_number in trace and "backup-reviewers" in trace
            page = self.client.get(task_url(task))
            assert page.status_code == 200 and 'name="result"' not in page.text
        assert self.as_user(self.outsider).get(task_url(task)).status_code == 403
        decide = self.as_user(self.colleague).post(task_url(task, "decide"), {"result": "approved"})
        assert decide.status_code == 403
        assert StepRun.objects.get(pk=task.pk).state == RunState.WAITING

    def test_the_new_holder_sees_no_trace_section_for_tasks_that_are_theirs(self):
        task = self.escalate(self.reach_approve())
        inbox = self.as_user(self.backup).get(INBOX).text
        assert 'id="section-passed-on"' not in inbox and task.instance.case_number in inbox
