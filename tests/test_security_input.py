"""Security findings of issue 13 (part 3) about hostile input: numbers JSON cannot hold, YAML
alias bombs, huge definitions, costly conditions, anonymous starts, guessable case numbers
(docs/security.md, R2)."""

import importlib
import io
import json
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from unittest.mock import patch

from django.apps import apps as django_apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.test import TestCase, override_settings
from django.utils import timezone

from tests.factories import (
    committed,
    make_seed_services,
    make_token,
    make_user,
    simple_workflow,
    start,
)
from workflows_app import engine, runtime
from workflows_app.definitions import InvalidDefinition, load_text, parse_definition
from workflows_app.models import StepRun, WorkflowDraft, WorkflowInstance


class OverflowingNumberTests(TestCase):
    """Finding 11: 1e400 overflows to Infinity, which JSON (and the database) cannot hold."""

    def setUp(self):
        make_seed_services()
        self.definition = simple_workflow("numbers", [{"id": "approve", "service": "approvalSvc"}])
        self.headers = {"Authorization": f"Bearer {make_token()}"}

    def post(self, path: str, raw: str):
        return self.client.post(path, raw, content_type="application/json", headers=self.headers)

    def test_an_overflowing_number_in_a_payload_or_in_data_is_a_400_and_nothing_is_saved(self):
        start_body = '{"workflowId": "numbers", "payload": {"area": 1e400}}'
        response = self.post("/api/workflows/start", start_body)
        assert response.status_code == 400
        assert response.json()["error"] == "malformed_json"
        assert "1e400" in response.json()["detail"]
        assert WorkflowInstance.objects.count() == 0
        task = StepRun.objects.get(instance=start(self.definition))
        for number in ("-1e400", "1E+999", "123456789e999"):
            body = '{"result": "approved", "data": {"score": NUMBER}}'.replace("NUMBER", number)
            response = self.post(f"/api/tasks/{task.pk}/complete", body)
            assert response.status_code == 400, number
            assert response.json()["error"] == "malformed_json", number
        task.refresh_from_db()
        assert task.state == "waiting"

    def test_a_definition_with_an_overflowing_number_is_refused_with_its_field(self):
        text = '{"id": "w", "input": {"maximum": 1e400}, "steps": [{"id": "a", "service": "s"}]}'
        with self.assertRaises(InvalidDefinition) as refused:
            load_text(text, source="w.json")
        assert "field 'input.maximum'" in str(refused.exception)
        assert "too large" in str(refused.exception)


class StepLimitTests(TestCase):
    """Finding 15: a workflow of thousands of steps is refused before its steps are checked."""

    def test_a_workflow_over_500_steps_is_refused_with_a_message_naming_the_file(self):
        steps = "".join(f"  - {{id: s{i}, service: svc}}\n" for i in range(8000))
        with self.assertRaises(InvalidDefinition) as refused:
            load_text(f"id: huge\nsteps:\n{steps}", source="workflows/huge.yaml")
        problems = refused.exception.problems
        assert len(problems) == 1
        assert str(problems[0]).startswith("workflows/huge.yaml:2: workflow 'huge', field 'steps'")
        assert "8000 steps" in problems[0].message and "at most 500" in problems[0].message

    def test_500_steps_are_still_allowed(self):
        steps = [{"id": f"s{i}", "service": "svc"} for i in range(500)]
        assert len(parse_definition({"id": "big", "steps": steps}).steps) == 500


def alias_bomb(levels: int = 7, width: int = 9) -> str:
    """A few hundred bytes of YAML whose aliases expand to width**levels values."""
    names = "abcdefghijklmnop"
    lines = [f"x-a: &a [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        refs = ", ".join([f"*{names[level - 1]}"] * width)
        lines.append(f"x-{names[level]}: &{names[level]} [{refs}]")
    lines += ["id: bomb", "steps:", "  - {id: one, service: okSvc}"]
    return "\n".join(lines) + "\n"


class AliasBombTests(TestCase):
    """Finding 4: aliases that expand past a small node budget are refused before any walk."""

    def test_validate_workflow_refuses_the_7_by_9_bomb_naming_the_file_and_line(self):
        text = alias_bomb()
        assert len(text) < 600
        path = Path(self.enterContext(tempfile.TemporaryDirectory())) / "bomb.yaml"
        path.write_text(text)
        err = io.StringIO()
        with self.assertRaises(SystemExit) as exited:
            call_command("validate_workflow", str(path), stderr=err)
        assert exited.exception.code == 1
        assert f"{path}:7: YAML aliases expand" in err.getvalue()
        assert "alias *f" in err.getvalue()

    def test_the_admin_import_refuses_it_and_saves_nothing(self):
        self.client.force_login(make_user("root", is_staff=True, is_superuser=True))
        upload = SimpleUploadedFile("bomb.yaml", alias_bomb(levels=6).encode())
        page = self.client.post("/admin/workflows_app/workflowdraft/import/", {"file": upload})
        assert page.status_code == 200
        assert "bomb.yaml:6: YAML aliases expand" in page.content.decode()
        assert not WorkflowDraft.objects.exists()

    def test_anchors_shared_by_many_steps_stay_allowed(self):
        steps = "".join(f"  - {{<<: *human, id: s{i}}}\n" for i in range(200))
        text = "x-human: &human {service: svc, timeout: 2d, onTimeout: fail}\nid: ok\nsteps:\n"
        (spec,) = load_text(text + steps, source="ok.yaml").workflows
        assert len(spec.steps) == 200


@override_settings(
    HMS_PUBLIC_MAX_PAYLOAD_BYTES=64 * 1024,
    HMS_PUBLIC_STARTS_PER_WINDOW=3,
    HMS_PUBLIC_WINDOW_SECONDS=3600,
)
class AnonymousStartTests(TestCase):
    """Finding 14: anonymous starts are limited in size and rate; `payload.email` must be an
    address; a malformed one met later fails the notify step at once."""

    def setUp(self):
        make_seed_services()
        simple_workflow(
            "dog-licence",
            [{"id": "check", "service": "okSvc"}, {"id": "notify", "service": "notificationSvc"}],
            public=True,
        )

    def start(self, payload: dict, *, ip: str = "198.51.100.7", token: str | None = None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body = json.dumps({"workflowId": "dog-licence", "payload": payload})
        return self.client.post(
            "/api/workflows/start",
            body,
            content_type="application/json",
            headers=headers,
            REMOTE_ADDR=ip,
        )

    def test_an_anonymous_payload_over_64_kib_is_413_but_a_token_may_send_it(self):
        big = {"notes": "x" * (70 * 1024)}
        refused = self.start(big)
        assert refused.status_code == 413
        assert refused.json()["error"] == "payload_too_large"
        assert "64 KiB" in refused.json()["detail"]
        assert WorkflowInstance.objects.count() == 0
        assert self.start(big, token=make_token()).status_code == 201

    def test_anonymous_starts_are_limited_per_address_with_429_and_retry_after(self):
        for _ in range(3):
            assert self.start({}).status_code == 201
        refused = self.start({})
        assert refused.status_code == 429
        assert refused.json()["error"] == "too_many_requests"
        assert 0 < int(refused["Retry-After"]) <= 3600
        assert self.start({}, ip="198.51.100.8").status_code == 201
        assert self.start({}, token=make_token()).status_code == 201
        assert WorkflowInstance.objects.count() == 5

    def test_a_malformed_email_is_refused_at_start_naming_the_field(self):
        for email in ("ada@example.org\r\nBcc: everyone@example.org", "not an address", 42):
            response = self.start({"email": email})
            assert response.status_code == 422, email
            assert response.json()["error"] == "invalid_payload"
            assert response.json()["problems"][0].startswith("payload/email:")
        assert WorkflowInstance.objects.count() == 0
        assert self.start({"email": "ada@example.org"}).status_code == 201

    def test_a_malformed_email_met_by_the_notify_step_fails_it_at_once(self):
        definition = simple_workflow(
            "permit",
            [
                {"id": "approve", "service": "approvalSvc"},
                {"id": "notify", "service": "notificationSvc"},
            ],
        )
        instance = start(definition, {})
        # An address stored before starts were checked (or written by an operator).
        bad = "ada@example.org\r\nBcc: everyone@example.org"
        WorkflowInstance.objects.filter(pk=instance.pk).update(payload={"email": bad})
        task = StepRun.objects.get(instance=instance, step_id="approve")
        make_user("rita", "plan-reviewers")
        committed(runtime.complete_task, run_id=task.pk, result="approved", actor="user:rita")
        notify = StepRun.objects.get(instance=instance, step_id="notify")
        instance.refresh_from_db()
        assert (notify.state, notify.attempts) == ("failed", 1)
        assert instance.status == "failed"
        assert "payload.email" in instance.error["detail"]


CROCKFORD_CODE = r"[0-9ABCDEFGHJKMNPQRSTVWXYZ]{6}"


@override_settings(HMS_LOOKUPS_PER_WINDOW=5, HMS_LOOKUP_WINDOW_SECONDS=600)
class CaseNumberTests(TestCase):
    """Finding 2: case numbers cannot be derived from each other, and lookups by case number
    are limited per client address."""

    def setUp(self):
        self.definition = simple_workflow("building-permit", public=True)

    def find(self, typed: str, ip: str = "198.51.100.9"):
        return self.client.get("/track/", {"q": typed}, REMOTE_ADDR=ip)

    def test_consecutive_case_numbers_are_random_codes_not_counters(self):
        year = timezone.localdate().year
        numbers = [start(self.definition).case_number for _ in range(5)]
        for number in numbers:
            assert re.fullmatch(rf"BP-{year}-{CROCKFORD_CODE}", number), number
            assert re.search(r"[A-Z]", number.rsplit("-", 1)[1]), number
        assert len(set(numbers)) == 5
        pks = WorkflowInstance.objects.order_by("pk").values_list("pk", flat=True)
        assert not any(number.endswith(f"{pk:06d}") for number in numbers for pk in pks)

    def test_a_new_number_is_found_however_it_is_typed(self):
        instance = start(self.definition)
        prefix, year, code = instance.case_number.split("-")
        sloppy = code.lower().replace("0", "o").replace("1", "l")
        for typed in (instance.case_number, f" {prefix.lower()}-{year}-{sloppy} "):
            response = self.find(typed)
            assert (response.status_code, response["Location"]) == (302, instance.tracker_url)

    def test_an_old_sequential_number_kept_by_the_migration_is_still_found(self):
        instance = start(self.definition)
        WorkflowInstance.objects.filter(pk=instance.pk).update(case_number="BP-2025-000042")
        for typed in ("BP-2025-000042", "bp-2025-42"):
            response = self.find(typed)
            assert (response.status_code, response["Location"]) == (302, instance.tracker_url)

    def test_lookups_that_find_nothing_are_limited_per_address_with_429(self):
        instance = start(self.definition)
        year = timezone.localdate().year
        for n in range(5):
            assert self.find(f"BP-{year}-{n:06d}").status_code == 200
        refused = self.find(instance.case_number)
        assert refused.status_code == 429
        assert refused["Content-Type"].startswith("text/plain")
        assert 0 < int(refused["Retry-After"]) <= 600
        assert "Too many" in refused.content.decode()
        assert self.find(instance.case_number, ip="198.51.100.10").status_code == 302

    def test_a_collision_draws_another_code(self):
        taken = start(self.definition).case_number
        code = taken.rsplit("-", 1)[1]
        fresh = "7KQ3MX" if code != "7KQ3MX" else "8KQ3MX"
        with patch("workflows_app.models.instances.random_code", side_effect=[code, fresh]):
            instance = start(self.definition)
        assert instance.case_number.endswith(f"-{fresh}")
        assert WorkflowInstance.objects.filter(case_number=instance.case_number).count() == 1

    def test_the_migration_gives_earlier_instances_the_numbers_they_had(self):
        migration = importlib.import_module("workflows_app.migrations.0011_case_numbers")
        instance = start(self.definition)
        moment = datetime(2025, 12, 31, 23, 30, tzinfo=UTC)  # 2026 in Brussels already
        WorkflowInstance.objects.filter(pk=instance.pk).update(case_number="", created_at=moment)
        migration.number_existing(django_apps, None)
        instance.refresh_from_db()
        assert instance.case_number == f"BP-2026-{instance.pk:06d}"
        assert self.find(f"bp-2026-{instance.pk}").status_code == 302


def nested_all(levels: int) -> str:
    """payload.l.all(a, payload.l.all(b, ... a + b + ... >= 0)), `levels` deep."""
    names = "abcdefgh"[:levels]
    inner = " + ".join(names) + " >= 0"
    for name in reversed(names):
        inner = f"payload.l.all({name}, {inner})"
    return inner


class ConditionCostTests(TestCase):
    """Finding 6: a condition's cost is limited (nesting refused at validation, a run-time
    estimate against the data), and conditions are evaluated outside the write transaction."""

    def workflow(self, condition: str, key: str = "costly"):
        make_seed_services()
        steps = [
            {"id": "check", "service": "okSvc", "next": [{"if": condition, "goto": "end"}]},
            {"id": "approve", "service": "approvalSvc"},
        ]
        return simple_workflow(key, steps)

    def test_six_nested_comprehensions_are_refused_at_validation_naming_the_field(self):
        text = json.dumps(
            {
                "id": "bomb",
                "steps": [
                    {"id": "check", "service": "s", "next": [{"if": nested_all(6), "goto": "end"}]}
                ],
            }
        )
        with self.assertRaises(InvalidDefinition) as refused:
            load_text(text, source="bomb.json")
        message = str(refused.exception)
        assert "bomb.json:1: workflow 'bomb', step 'check', field 'next[0].if'" in message
        assert "nests 6 comprehensions" in message and "at most 3" in message

    def test_a_condition_too_costly_for_the_data_fails_the_instance_without_evaluating(self):
        definition = self.workflow(nested_all(2))
        small = start(definition, {"l": list(range(20))})
        assert small.status == "completed"
        big = start(definition, {"l": list(range(3000))})
        big.refresh_from_db()
        assert big.status == "failed"
        assert "too costly" in big.error["detail"] and "3000 items" in big.error["detail"]

    def test_conditions_are_evaluated_outside_the_write_transaction(self):
        definition = self.workflow("result == 'approved'", key="decided")
        make_user("rita", "plan-reviewers")
        instance = start(definition, {})
        task = StepRun.objects.get(instance=instance, step_id="approve")
        depth_here = len(connection.atomic_blocks)
        seen = []
        real_advance = engine.advance

        def watching(*args, **kwargs):
            seen.append(len(connection.atomic_blocks))
            return real_advance(*args, **kwargs)

        with patch("workflows_app.engine.advance", watching):
            committed(runtime.complete_task, run_id=task.pk, result="approved", actor="user:rita")
        assert seen and all(depth == depth_here for depth in seen), (depth_here, seen)
