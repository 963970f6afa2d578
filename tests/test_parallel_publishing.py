"""Loading workflows with parallel and workflow steps: what needs the published versions."""

import tempfile
from pathlib import Path

from django.contrib.auth.models import Group
from django.test import TestCase

from tests.factories import make_definition, make_seed_services, make_service, make_user
from workflows_app.authoring import drafts, publishing
from workflows_app.definitions import InvalidDefinition, load_text
from workflows_app.models import WorkflowDefinition, WorkflowDraft

INSPECTION = """\
id: site-inspection
steps:
  - id: inspect
    service: approvalSvc
"""

PERMIT = """\
id: permit
steps:
  - id: reviews
    parallel:
      - id: zoning
        steps:
          - id: zoning-review
            service: approvalSvc
            assignee: group:zoning-officers
      - id: fire
        steps:
          - id: fire-review
            service: approvalSvc
            escalateTo: ["group:fire-chiefs"]
          - id: visit
            workflow: site-inspection
  - id: notify
    service: notificationSvc
"""


class LoadingTests(TestCase):
    def setUp(self):
        make_seed_services()
        self.folder = tempfile.TemporaryDirectory()
        self.addCleanup(self.folder.cleanup)

    def write(self, name: str, text: str) -> Path:
        path = Path(self.folder.name) / name
        path.write_text(text)
        return path

    def refused(self, *paths: Path) -> list[str]:
        with self.assertRaises(InvalidDefinition) as refusal:
            publishing.load_files(paths)
        return [str(problem) for problem in refusal.exception.problems]

    def test_a_parent_and_its_child_load_together_in_either_order(self):
        report = publishing.load_files(
            [self.write("p.yaml", PERMIT), self.write("i.yaml", INSPECTION)]
        )
        assert [d.key for d in report.published] == ["permit", "site-inspection"]
        assert "workflow permit: published version 1 (5 steps)" in report.lines

    def test_a_child_published_earlier_is_found(self):
        publishing.load_files([self.write("i.yaml", INSPECTION)])
        report = publishing.load_files([self.write("p.yaml", PERMIT)])
        assert [d.key for d in report.published] == ["permit"]

    def test_an_unknown_child_workflow_is_refused_on_its_step_and_line(self):
        problems = self.refused(self.write("p.yaml", PERMIT))
        assert problems == [
            f"{self.folder.name}/p.yaml:16: workflow 'permit', step 'visit', field 'workflow': "
            "workflow 'site-inspection' is not published; load it before this file, or in the "
            "same command, so the step can start it"
        ]
        assert not WorkflowDefinition.objects.exists()

    def test_an_unknown_child_is_listed_with_the_other_problems_of_a_refused_file(self):
        text = PERMIT.replace(
            "service: notificationSvc", "service: notificationSvc\n    timeout: 2x"
        )
        problems = self.refused(self.write("p.yaml", text))
        assert [p.split(": ", 2)[1] for p in problems] == [
            "workflow 'permit', step 'visit', field 'workflow'",
            "workflow 'permit', step 'notify', field 'timeout'",
        ]

    def test_a_workflow_calling_itself_is_refused(self):
        text = "id: loop\nsteps:\n  - {id: again, workflow: loop}\n"
        (problem,) = self.refused(self.write("l.yaml", text))
        assert problem.endswith(
            "step 'again', field 'workflow': workflows would call each other without end: "
            "'loop' -> 'loop'; a workflow step may not lead back to its own workflow"
        )

    def test_two_workflows_calling_each_other_in_one_batch_are_refused_on_both_steps(self):
        a = self.write("a.yaml", "id: a\nsteps:\n  - {id: call-b, workflow: b}\n")
        b = self.write("b.yaml", "id: b\nsteps:\n  - {id: call-a, workflow: a}\n")
        problems = self.refused(a, b)
        assert len(problems) == 2
        assert "'a' -> 'b' -> 'a'" in problems[0]
        assert "'b' -> 'a' -> 'b'" in problems[1]

    def test_a_cycle_through_a_published_workflow_is_refused(self):
        make_service("okSvc")
        make_definition({"id": "b", "steps": [{"id": "call-c", "workflow": "c"}]})
        # c does not exist yet, so b above could only be published directly, as a test can;
        # now c, calling a, and a calling b would close the ring a -> b -> c -> a.
        make_definition({"id": "c", "steps": [{"id": "call-a", "workflow": "a"}]})
        (problem,) = self.refused(
            self.write("a.yaml", "id: a\nsteps:\n  - {id: call-b, workflow: b}\n")
        )
        assert "'a' -> 'b' -> 'c' -> 'a'" in problem

    def test_services_and_users_are_checked_inside_branches(self):
        text = PERMIT.replace(
            "service: approvalSvc\n            assignee", "service: nope\n            assignee"
        )
        text = text.replace("group:fire-chiefs", "user:ghost")
        problems = self.refused(self.write("p.yaml", text), self.write("i.yaml", INSPECTION))
        assert any("step 'zoning-review', field 'service': service 'nope'" in p for p in problems)
        assert any("step 'fire-review', field 'escalateTo[0]': user 'ghost'" in p for p in problems)

    def test_groups_named_inside_branches_are_created(self):
        publishing.load_files([self.write("p.yaml", PERMIT), self.write("i.yaml", INSPECTION)])
        assert {"zoning-officers", "fire-chiefs"} <= set(
            Group.objects.values_list("name", flat=True)
        )


class DraftTests(TestCase):
    def setUp(self):
        make_seed_services()

    def test_a_file_with_parallel_steps_cannot_be_imported_as_a_draft(self):
        with self.assertRaises(InvalidDefinition) as refusal:
            drafts.import_text(PERMIT, filename="p.yaml")
        (problem,) = refusal.exception.problems
        assert problem.message.startswith(
            "step reviews of workflow 'permit' runs parallel branches or a sub-workflow, which "
            "drafts cannot hold"
        )

    def test_the_admin_does_not_start_a_draft_from_a_parallel_version(self):
        make_definition(
            {"id": "site-inspection", "steps": [{"id": "inspect", "service": "approvalSvc"}]}
        )
        (spec,) = load_text(PERMIT, source="p.yaml").workflows
        definition, _ = publishing.publish(spec)
        self.client.force_login(make_user("root", is_staff=True, is_superuser=True))
        url = f"/admin/workflows_app/workflowdefinition/{definition.pk}/edit/"
        response = self.client.post(url, follow=True)
        assert not WorkflowDraft.objects.exists()
        assert "which drafts cannot hold" in response.content.decode()
