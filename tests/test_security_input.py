"""Security findings of issue 13 (part 3) about hostile input: numbers JSON cannot hold, YAML
alias bombs, huge definitions, costly conditions, anonymous starts, guessable case numbers
(docs/security.md, R2)."""

from django.test import TestCase

from tests.factories import make_seed_services, make_token, simple_workflow, start
from workflows_app.definitions import InvalidDefinition, load_text, parse_definition
from workflows_app.models import StepRun, WorkflowInstance


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
