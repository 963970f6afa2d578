"""The management commands of CONTRACT §5, in process and as real processes (exit codes)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import SimpleTestCase, TestCase
from django.utils import timezone

from tests.factories import make_definition, make_seed_services, start
from workflows_app.models import ApiToken, Event, Service, StepRun, WorkflowDefinition

REPO = Path(settings.BASE_DIR)
WORKFLOWS = sorted(str(p) for p in (REPO / "workflows").iterdir() if p.suffix in {".json", ".yaml"})
FIXTURES = REPO / "tests" / "fixtures" / "definitions"
BAD = str(FIXTURES / "many-problems.yaml")


def run(*args: str) -> tuple[str, str]:
    """call_command, returning what it wrote to stdout and stderr."""
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


class CreateApiTokenTests(TestCase):
    def test_the_last_line_is_a_token_that_the_api_accepts(self):
        out, err = run("create_api_token", "portal")
        raw = out.strip().splitlines()[-1]
        assert "shown only once" in err
        make_seed_services()
        instance = start(make_definition())
        response = self.client.get(
            f"/api/workflows/{instance.uuid}/status", headers={"Authorization": f"Bearer {raw}"}
        )
        assert response.status_code == 200

    def test_only_the_hash_of_the_token_is_stored(self):
        out, _ = run("create_api_token", "portal")
        raw = out.strip().splitlines()[-1]
        token = ApiToken.objects.get()
        assert token.key_hash == ApiToken.hash(raw)
        assert raw not in json.dumps([str(v) for v in vars(token).values()])

    def test_scopes_and_workflows_limit_the_token(self):
        out, _ = run("create_api_token", "ops", "--scope", "operate", "--workflow", "parking")
        token = ApiToken.objects.get()
        assert (token.name, token.scopes, token.workflows) == ("ops", ["operate"], ["parking"])
        assert not token.allows("start", "parking")

    def test_an_empty_name_is_refused(self):
        with pytest.raises(CommandError):
            run("create_api_token", "  ")
        assert ApiToken.objects.count() == 0


class LoadWorkflowsTests(TestCase):
    def test_the_repositorys_workflows_load_together_with_their_services(self):
        out, _ = run("load_workflows", *WORKFLOWS)
        keys = sorted(WorkflowDefinition.objects.values_list("key", "version"))
        assert keys == [
            ("address-change", 1),
            ("building-permit", 1),
            ("building-permit-full", 1),
            ("site-inspection", 1),
        ]
        assert Service.objects.count() == 8
        assert "workflow building-permit: published version 1 (3 steps)" in out
        assert out.strip().splitlines()[-1] == f"Loaded {len(WORKFLOWS)} file(s)."

    def test_loading_an_unchanged_file_again_makes_no_new_version(self):
        run("load_workflows", *WORKFLOWS)
        out, _ = run("load_workflows", *WORKFLOWS)
        assert "workflow building-permit: unchanged (version 1)" in out
        assert WorkflowDefinition.objects.count() == 4

    def test_loading_a_changed_file_makes_a_new_version_and_keeps_the_old_one(self):
        run("load_workflows", *WORKFLOWS)
        with tempfile.TemporaryDirectory() as folder:
            changed = Path(folder) / "building-permit.json"
            document = json.loads((REPO / "workflows" / "building-permit.json").read_text())
            document["name"] = "Building permit"
            changed.write_text(json.dumps(document))
            out, _ = run("load_workflows", str(changed))
        assert "workflow building-permit: changed; published version 2 (3 steps)" in out
        versions = WorkflowDefinition.objects.filter(key="building-permit")
        assert sorted(versions.values_list("version", "name")) == [(1, ""), (2, "Building permit")]

    def publish_in_the_admin(self, **changes) -> WorkflowDefinition:
        """What a supervisor does in the admin: import the seed into a draft, change it, publish."""
        from workflows_app.authoring import drafts

        latest = WorkflowDefinition.objects.filter(key="building-permit").order_by("-version")[0]
        draft = drafts.save_as_draft({**latest.source, **changes}, based_on=latest)
        definition, created = drafts.publish_draft(draft, actor="supervisor")
        assert created
        return definition

    def test_an_unchanged_file_keeps_a_newer_version_published_in_the_admin(self):
        run("load_workflows", *WORKFLOWS)
        in_admin = self.publish_in_the_admin(name="Building permit (40 s review)")
        out, _ = run("load_workflows", *WORKFLOWS)
        assert (
            "workflow building-permit: unchanged since version 1; version 2, published in the "
            "admin, stays the newest" in out
        )
        newest = WorkflowDefinition.objects.filter(key="building-permit").order_by("-version")[0]
        assert newest == in_admin and newest.origin == "draft building-permit"

    def test_a_changed_file_publishes_over_the_admins_version_and_says_so(self):
        run("load_workflows", *WORKFLOWS)
        self.publish_in_the_admin(name="From the admin")
        with tempfile.TemporaryDirectory() as folder:
            changed = Path(folder) / "building-permit.json"
            document = json.loads((REPO / "workflows" / "building-permit.json").read_text())
            changed.write_text(json.dumps({**document, "name": "From the file"}))
            out, _ = run("load_workflows", str(changed))
        assert (
            "workflow building-permit: changed; published version 3 (3 steps), over version 2, "
            "published in the admin" in out
        )
        newest = WorkflowDefinition.objects.filter(key="building-permit").order_by("-version")[0]
        assert (newest.version, newest.name) == (3, "From the file")

    def test_public_publishes_a_workflow_as_public_though_its_file_does_not_say_so(self):
        seed = str(REPO / "workflows" / "building-permit.json")
        services = str(REPO / "workflows" / "services.yaml")
        run("load_workflows", seed, services, "--public", "building-permit")
        definition = WorkflowDefinition.objects.get(key="building-permit")
        assert definition.public and definition.source["public"] is True
        out, _ = run("load_workflows", seed, services, "--public", "building-permit")
        assert "workflow building-permit: unchanged (version 1)" in out
        body = {"workflowId": "building-permit", "payload": {"applicant": "Ada"}}
        response = self.client.post("/api/workflows/start", body, content_type="application/json")
        assert response.status_code == 201

    def test_public_naming_a_workflow_no_file_defines_is_refused(self):
        with pytest.raises(CommandError, match="--public names nothing-here, which no file"):
            run("load_workflows", *WORKFLOWS, "--public", "nothing-here")
        assert WorkflowDefinition.objects.count() == 0

    def test_a_bad_file_is_refused_whole_with_every_problem_and_nothing_is_saved(self):
        err = StringIO()
        with pytest.raises(CommandError, match=r"6 problem\(s\) found; nothing was loaded"):
            call_command("load_workflows", *WORKFLOWS, BAD, stdout=StringIO(), stderr=err)
        problems = err.getvalue().strip().splitlines()
        assert len(problems) == 6 and all(p.startswith(f"{BAD}:") for p in problems)
        assert (
            f"{BAD}:6: workflow 'Building Permit', step 'validate', field 'timeout'" in problems[2]
        )
        assert (WorkflowDefinition.objects.count(), Service.objects.count()) == (0, 0)


class ValidateWorkflowTests(TestCase):
    def test_valid_files_are_reported_ok(self):
        out, _ = run("validate_workflow", *WORKFLOWS)
        assert (
            f"{REPO / 'workflows' / 'building-permit.json'}: OK — workflow building-permit (3 steps)"
            in out
        )
        assert WorkflowDefinition.objects.count() == 0  # validating saves nothing

    def validate(self, *files: str) -> list[str]:
        err = StringIO()
        with pytest.raises(SystemExit) as exit_:
            call_command("validate_workflow", *files, stdout=StringIO(), stderr=err)
        assert exit_.value.code == 1
        return err.getvalue().strip().splitlines()

    def test_problems_are_listed_and_the_exit_status_is_1(self):
        lines = self.validate(BAD, str(REPO / "workflows" / "services.yaml"))
        assert len(lines) == 7 and lines[-1] == "6 problem(s) found."

    def test_every_problem_is_listed_those_of_the_database_too(self):
        """Issue 14, item 9: a duplicate step id, a bad timeout and an unknown service."""
        path = str(FIXTURES / "three-kinds-of-problem.yaml")
        lines = self.validate(path, str(REPO / "workflows" / "services.yaml"))
        assert lines == [
            f"{path}:6: workflow 'permit', step 'validate', field 'id': duplicate step id "
            "'validate'; step #1 already uses it",
            f"{path}:8: workflow 'permit', step 'validate', field 'timeout': '48x' is not a "
            "duration; use 90s, 30m, 48h, 2d, PT48H or '2 working days'",
            f"{path}:10: workflow 'permit', step 'notify', field 'service': service 'noSuchSvc' "
            "is not registered; register it in the admin or load a services file with it",
            "3 problem(s) found.",
        ]

    def test_without_their_services_file_the_unknown_services_of_a_bad_file_are_listed(self):
        lines = self.validate(BAD)
        assert lines[-1] == "9 problem(s) found."
        assert sum("is not registered" in line for line in lines) == 3

    def test_a_user_that_does_not_exist_is_listed_with_the_files_own_problems(self):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "p.yaml"
            path.write_text(
                "id: p\nsteps:\n  - id: a\n    service: s\n    timeout: 48x\n"
                "    assignee: user:nobody\n"
            )
            lines = self.validate(str(path))
        assert lines == [
            f"{path}:4: workflow 'p', step 'a', field 'service': service 's' is not registered; "
            "register it in the admin or load a services file with it",
            f"{path}:5: workflow 'p', step 'a', field 'timeout': '48x' is not a duration; use "
            "90s, 30m, 48h, 2d, PT48H or '2 working days'",
            f"{path}:6: workflow 'p', step 'a', field 'assignee': user 'nobody' does not exist",
            "3 problem(s) found.",
        ]


class EscalateOverdueTests(TestCase):
    def test_it_escalates_an_overdue_task_now(self):
        make_seed_services("human")
        instance = start(make_definition())
        past = timezone.now() - timedelta(seconds=1)
        StepRun.objects.filter(instance=instance).update(due_at=past, wake_at=past)
        out, _ = run("escalate_overdue")
        assert out.strip() == "Sweep done: 1 overdue or due step run(s) handled."
        task = StepRun.objects.get(instance=instance)
        assert (task.escalation_level, task.assignee_group.name) == (1, "backup-reviewers")
        assert Event.objects.filter(instance=instance, type=Event.Type.ESCALATED).count() == 1

    def test_with_nothing_due_it_does_nothing(self):
        out, _ = run("escalate_overdue")
        assert out.strip() == "Sweep done: 0 overdue or due step run(s) handled."


@pytest.mark.integration
class CommandProcessTests(SimpleTestCase):
    """`python manage.py ...` as an operator runs it, on a database file of its own."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.folder = tempfile.mkdtemp(prefix="hms-commands-")
        cls.env = {**os.environ, "DATABASE_URL": f"sqlite:///{cls.folder}/db.sqlite3"}
        cls.manage("migrate", "--noinput", "-v0", check=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.folder, ignore_errors=True)
        super().tearDownClass()

    @classmethod
    def manage(cls, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(REPO / "manage.py"), *args],
            env=cls.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=check,
        )

    def test_create_api_token_prints_only_the_token_on_stdout(self):
        done = self.manage("create_api_token", "ci")
        assert done.returncode == 0
        assert done.stdout.strip().startswith("hms_") and len(done.stdout.strip().splitlines()) == 1

    def test_exit_status_is_0_for_good_files_and_1_for_bad_ones(self):
        assert self.manage("validate_workflow", *WORKFLOWS).returncode == 0
        bad = self.manage("validate_workflow", BAD)
        assert bad.returncode == 1 and "9 problem(s) found." in bad.stderr
        refused = self.manage("load_workflows", *WORKFLOWS, BAD)
        assert refused.returncode == 1 and "nothing was loaded" in refused.stderr
        assert self.manage("load_workflows", *WORKFLOWS).returncode == 0
        assert self.manage("escalate_overdue").returncode == 0

    def test_an_unmigrated_database_is_exit_status_2_with_advice(self):
        env = {**self.env, "DATABASE_URL": f"sqlite:///{self.folder}/empty.sqlite3"}
        done = subprocess.run(
            [sys.executable, str(REPO / "manage.py"), "validate_workflow", *WORKFLOWS],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2
        assert "run `python manage.py migrate` first" in done.stderr
        assert "Traceback" not in done.stderr


class SetupDemoTests(TestCase):
    """`make run` runs setup_demo at every start (in a copy of the project's folder here, so
    the demo token file lands in a scratch folder)."""

    def setup_demo(self, folder: Path) -> str:
        with self.settings(BASE_DIR=folder):
            out, _ = run("setup_demo", "--port", "8123")
        return out

    def test_the_seed_is_public_and_a_restart_keeps_the_version_published_in_the_admin(self):
        from workflows_app.authoring import drafts

        with tempfile.TemporaryDirectory() as folder:
            shutil.copytree(REPO / "workflows", Path(folder) / "workflows")
            out = self.setup_demo(Path(folder))
            assert "workflow building-permit: published version 1 (3 steps)" in out
            assert "building-permit is public (no token needed)" in out
            seed = WorkflowDefinition.objects.get(key="building-permit")
            assert seed.public
            changed = {**seed.source, "steps": [dict(s) for s in seed.source["steps"]]}
            changed["steps"][1]["timeout"] = "40s"
            draft = drafts.save_as_draft(changed, based_on=seed)
            drafts.publish_draft(draft, actor="supervisor")
            again = self.setup_demo(Path(folder))
        assert (
            "workflow building-permit: unchanged since version 1; version 2, published in the "
            "admin, stays the newest" in again
        )
        newest = WorkflowDefinition.objects.filter(key="building-permit").order_by("-version")[0]
        assert newest.version == 2 and newest.source["steps"][1]["timeout"] == "40s"
