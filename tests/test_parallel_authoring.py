"""The diagram draws forks and joins; the dry run walks branches; the admin offers both."""

import xml.etree.ElementTree as ET

from django.test import SimpleTestCase, TestCase

from tests.factories import make_definition, make_seed_services, make_user
from workflows_app.authoring import dryrun
from workflows_app.authoring.diagram import render_svg
from workflows_app.definitions import parse_definition
from workflows_app.models import Status, WorkflowInstance

SVG = "{http://www.w3.org/2000/svg}"


def task(step_id, **fields):
    return {"id": step_id, "service": "approvalSvc", **fields}


def permit(join="all", zoning_on=None):
    zoning = task("zoning-review", on=zoning_on or {})
    return {
        "id": "permit",
        "steps": [
            task("validate"),
            {
                "id": "reviews",
                "title": "Specialist reviews",
                "join": join,
                "parallel": [
                    {"id": "zoning", "title": "Zoning", "steps": [zoning]},
                    {
                        "id": "fire",
                        "steps": [
                            task("fire-review"),
                            {"id": "visit", "workflow": "site-inspection"},
                        ],
                    },
                ],
            },
            task("notify"),
        ],
    }


PERMIT = parse_definition(permit())


def groups(root, cls):
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == cls]


def text_of(group):
    return " ".join(t.text or "" for t in group.iter(f"{SVG}text"))


class DiagramTests(SimpleTestCase):
    def setUp(self):
        self.root = ET.fromstring(render_svg(PERMIT, kinds={"approvalSvc": "human"}))

    def test_a_parallel_step_is_a_fork_bar_then_its_branches_then_a_join_bar(self):
        (fork,) = groups(self.root, "fork")
        (join,) = groups(self.root, "join")
        assert text_of(fork) == "Specialist reviews · reviews · in parallel"
        assert text_of(join) == "join all: when every branch has ended"
        headers = [text_of(g) for g in groups(self.root, "branch")]
        assert headers == ["Zoning (branch zoning)", "Fire (branch fire)"]

    def test_each_branch_is_framed_and_its_steps_are_indented(self):
        frames = [r for r in self.root.iter(f"{SVG}rect") if r.get("class") == "branch-frame"]
        assert len(frames) == 2
        steps = {text_of(g).split(" ")[0]: g for g in groups(self.root, "step")}
        main_x = float(steps["Validate"].find(f"{SVG}rect").get("x"))
        branch_x = float(steps["Fire"].find(f"{SVG}rect").get("x"))
        assert branch_x > main_x

    def test_a_sub_workflow_step_names_its_workflow(self):
        assert any(
            "visit · sub-workflow site-inspection" in text_of(g) for g in groups(self.root, "step")
        )

    def test_every_open_step_of_an_instance_is_outlined(self):
        root = ET.fromstring(
            render_svg(PERMIT, current=["zoning-review", "fire-review", "reviews"])
        )
        wide = [r for r in root.iter(f"{SVG}rect") if r.get("stroke-width") == "3"]
        assert len(wide) == 3

    def test_join_any_says_so(self):
        root = ET.fromstring(render_svg(parse_definition(permit(join="any"))))
        assert text_of(groups(root, "join")[0]) == "join any: when the first branch ends"

    def test_a_branch_that_ends_early_leads_to_the_join_not_to_the_end(self):
        spec = parse_definition(permit(zoning_on={"skip": "end", "rejected": "reject"}))
        root = ET.fromstring(render_svg(spec))
        labels = [t.text for t in root.iter(f"{SVG}text")]
        # `end` and the following "step" of a branch's last step are both the join.
        assert "on skip, otherwise" in labels and "on rejected" in labels
        assert [
            g.get("class") for g in root.iter(f"{SVG}g") if "terminal" in (g.get("class") or "")
        ] == [
            "terminal terminal-end",
            "terminal terminal-reject",
        ]


def walk(spec, text, payload=None):
    return dryrun.dry_run(spec, payload or {}, dryrun.parse_answers(text))


class DryRunTests(SimpleTestCase):
    def test_branches_take_turns_and_the_join_fires_once_every_branch_has_ended(self):
        run = walk(
            PERMIT,
            "validate: ok\nzoning-review: approved\nfire-review: approved\nvisit: ok\nnotify: sent",
        )
        assert [(v.step, v.branch, v.result, v.goes_to, v.note) for v in run.visits] == [
            ("validate", "", "ok", "reviews", ""),
            ("zoning-review", "zoning", "approved", "end", "branch 'zoning' ends"),
            ("fire-review", "fire", "approved", "visit", ""),
            ("visit", "fire", "ok", "end", "branch 'fire' ends"),
            ("reviews", "", "ok", "notify", "join all: every branch has ended"),
            ("notify", "", "sent", "end", ""),
        ]
        assert run.status == Status.COMPLETED

    def test_join_any_cancels_the_branches_still_open(self):
        run = walk(parse_definition(permit(join="any")), "validate: ok\nfire-review: ok\nvisit: ok")
        assert [(v.step, v.goes_to, v.note) for v in run.visits][-2:] == [
            ("visit", "end", "branch 'fire' ends; cancels zoning-review"),
            ("reviews", "notify", "join any: the first branch ended"),
        ]
        assert (run.status, run.stopped_at) == (Status.RUNNING, "notify")

    def test_a_refusal_in_a_branch_ends_the_walk_and_cancels_the_other_branch(self):
        spec = parse_definition(permit(zoning_on={"rejected": "reject"}))
        run = walk(spec, "validate: ok\nzoning-review: rejected\nfire-review: ok")
        assert [(v.step, v.goes_to, v.note) for v in run.visits][-1] == (
            "zoning-review",
            "reject",
            "cancels reviews, fire-review",
        )
        assert run.status == Status.REJECTED

    def test_the_walk_says_every_step_it_waits_at(self):
        run = walk(PERMIT, "validate: ok\nfire-review: ok")
        assert (
            run.message
            == "waits at 'zoning-review', 'visit': no (more) results given for these steps"
        )
        assert run.stopped_at == "zoning-review"


class AdminTests(TestCase):
    def test_a_published_version_has_a_dry_run_that_walks_branches_and_starts_nothing(self):
        make_seed_services()
        make_definition({"id": "site-inspection", "steps": [task("inspect")]})
        definition = make_definition(permit())
        self.client.force_login(make_user("root", is_staff=True, is_superuser=True))
        url = f"/admin/workflows_app/workflowdefinition/{definition.pk}/"
        assert f'href="{url}dry-run/"' in self.client.get(f"{url}change/").content.decode()
        response = self.client.post(
            f"{url}dry-run/",
            {"payload": "{}", "results": "validate: ok\nzoning-review: approved\nfire-review: ok"},
        )
        page = response.content.decode()
        assert "waits at &#x27;visit&#x27;" in page
        assert "<td>zoning</td>" in page
        assert not WorkflowInstance.objects.exists()
