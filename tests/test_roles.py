"""Roles: the groups the data migration makes, and what each may and may not do in the admin."""

from django.contrib.admin.sites import site
from django.contrib.auth.models import Group
from django.test import RequestFactory, TestCase

from tests.factories import make_definition, make_seed_services, make_user, start
from workflows_app.models import (
    DraftStep,
    Event,
    Status,
    WorkflowDefinition,
    WorkflowDraft,
    WorkflowInstance,
)

ADMIN = "/admin/workflows_app"
AUTHORS = {
    "add_workflowdraft",
    "change_workflowdraft",
    "delete_workflowdraft",
    "view_workflowdraft",
    "publish_workflowdraft",
    "add_draftstep",
    "change_draftstep",
    "delete_draftstep",
    "view_draftstep",
    "view_workflowdefinition",
    "add_service",
    "change_service",
    "view_service",
}
SUPERVISORS = {
    "view_workflowinstance",
    "view_workflowdefinition",
    "cancel_instance",
    "retry_instance",
    "reassign_task",
    "add_delegation",
    "change_delegation",
    "delete_delegation",
    "view_delegation",
    # records and reports (migration 0014, docs/records.md, docs/reports.md)
    "hold_instance",
    "export_case",
    "view_reports",
}


def codenames(group: str) -> set[str]:
    return set(Group.objects.get(name=group).permissions.values_list("codename", flat=True))


def draft_body(draft: WorkflowDraft, **changes) -> dict:
    step = draft.steps.get()
    return {
        "key": draft.key,
        "name": draft.name,
        "description": "",
        "input_schema": "",
        "steps-TOTAL_FORMS": "1",
        "steps-INITIAL_FORMS": "1",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
        "steps-0-id": str(step.pk),
        "steps-0-draft": str(draft.pk),
        "steps-0-step_id": step.step_id,
        "steps-0-service": step.service,
        "steps-0-position": "10",
        **changes,
    }


class RoleGroupsTests(TestCase):
    def test_the_migration_gives_each_role_exactly_its_permissions(self):
        assert codenames("Workflow authors") == AUTHORS
        assert codenames("Supervisors") == SUPERVISORS
        assert codenames("Reviewers") == set()


class ReviewerTests(TestCase):
    def setUp(self):
        make_seed_services()
        self.definition = make_definition()
        self.draft = WorkflowDraft.objects.create(key="permit", name="Permit")
        DraftStep.objects.create(
            draft=self.draft, position=10, step_id="a", service="validationSvc"
        )
        self.client.force_login(make_user("rita", "Reviewers", is_staff=True))

    def test_a_reviewer_cannot_edit_or_publish_a_definition(self):
        url = f"{ADMIN}/workflowdraft/{self.draft.pk}/change/"
        assert self.client.get(url).status_code == 403
        assert self.client.post(url, draft_body(self.draft, name="Hacked")).status_code == 403
        assert self.client.post(url, draft_body(self.draft, _publish="1")).status_code == 403
        assert self.client.post(f"{ADMIN}/workflowdraft/add/", {"key": "new"}).status_code == 403
        assert (
            self.client.post(f"{ADMIN}/workflowdefinition/{self.definition.pk}/edit/").status_code
            == 403
        )
        self.draft.refresh_from_db()
        assert self.draft.name == "Permit"
        assert WorkflowDefinition.objects.count() == 1 and WorkflowDraft.objects.count() == 1

    def test_a_reviewer_sees_nothing_in_the_admin(self):
        page = self.client.get("/admin/").content.decode()
        assert "You don’t have permission to view or edit anything" in page
        assert self.client.get(f"{ADMIN}/workflowinstance/").status_code == 403


class AuthorTests(TestCase):
    def setUp(self):
        make_seed_services()
        self.instance = start(make_definition(), {"applicant": "Ann"})
        self.author = make_user("ava", "Workflow authors", is_staff=True)
        self.client.force_login(self.author)

    def test_an_author_may_write_drafts_and_services(self):
        assert self.client.get(f"{ADMIN}/workflowdraft/add/").status_code == 200
        assert self.client.get(f"{ADMIN}/service/add/").status_code == 200

    def test_an_author_cannot_act_on_an_instance_or_its_task(self):
        changelist = f"{ADMIN}/workflowinstance/"
        for action in ("cancel_with_reason", "retry_failed", "reassign_task"):
            body = {
                "action": action,
                "_selected_action": [self.instance.pk],
                "index": "0",
                "_confirm": "1",
                "reason": "because",
                "group": "Supervisors",
            }
            assert self.client.post(changelist, body).status_code == 403
        change = f"{ADMIN}/workflowinstance/{self.instance.pk}/change/"
        assert (
            self.client.post(
                change,
                {"CHANGE_FORM-action": "cancel_with_reason", "_selected_action": self.instance.pk},
            ).status_code
            == 403
        )
        self.instance.refresh_from_db()
        assert self.instance.status == Status.RUNNING
        assert not Event.objects.filter(
            type__in=[Event.Type.CANCELLED, Event.Type.REASSIGNED]
        ).exists()

    def test_the_actions_permission_checks_refuse_an_author(self):
        request = RequestFactory().get("/")
        request.user = self.author
        instances = site.get_model_admin(WorkflowInstance)
        assert not instances.has_cancel_permission(request)
        assert not instances.has_retry_permission(request)
        assert not instances.has_reassign_permission(request)
        assert instances.get_actions(request) == {}


class ViewOnlyStaffTests(TestCase):
    def test_seeing_instances_is_not_enough_to_cancel_one(self):
        make_seed_services()
        instance = start(make_definition())
        viewer = make_user("val", is_staff=True)
        viewer.user_permissions.add(
            *Group.objects.get(name="Supervisors").permissions.filter(
                codename="view_workflowinstance"
            )
        )
        self.client.force_login(viewer)
        response = self.client.post(
            f"{ADMIN}/workflowinstance/",
            {
                "action": "cancel_with_reason",
                "_selected_action": [instance.pk],
                "index": "0",
                "_confirm": "1",
                "reason": "because",
            },
        )
        assert response.status_code == 200  # the list again: no action is offered to them
        assert "cancel_with_reason" not in response.content.decode()
        instance.refresh_from_db()
        assert instance.status == Status.RUNNING


class SupervisorTests(TestCase):
    def setUp(self):
        make_seed_services()
        self.instance = start(make_definition())
        self.client.force_login(make_user("sam", "Supervisors", is_staff=True))

    def test_a_supervisor_cancels_with_a_reason(self):
        self.client.post(
            f"{ADMIN}/workflowinstance/",
            {
                "action": "cancel_with_reason",
                "_selected_action": [self.instance.pk],
                "index": "0",
                "_confirm": "1",
                "reason": "withdrawn",
            },
        )
        self.instance.refresh_from_db()
        assert self.instance.status == Status.CANCELLED

    def test_a_supervisor_cannot_author(self):
        assert self.client.get(f"{ADMIN}/workflowdraft/add/").status_code == 403
        assert self.client.get(f"{ADMIN}/service/add/").status_code == 403
