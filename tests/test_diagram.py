"""The server-side SVG diagram of a workflow."""

import xml.etree.ElementTree as ET
from pathlib import Path

from django.test import SimpleTestCase

from workflows_app import definitions
from workflows_app.authoring.diagram import render_svg

ROOT = Path(__file__).resolve().parents[1]
FULL = definitions.load_file(
    ROOT / "tests" / "fixtures" / "definitions" / "permit-single-lane.yaml"
).workflows[0]
SVG = "{http://www.w3.org/2000/svg}"
KINDS = {"validationSvc": "http", "approvalSvc": "human", "notificationSvc": "python"}


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def texts(root: ET.Element) -> list[str]:
    return [el.text or "" for el in root.iter(f"{SVG}text")]


def spec_of(steps, **extra):
    return definitions.parse_definition({"id": "t", "steps": steps, **extra})


class DiagramTests(SimpleTestCase):
    def test_every_step_is_a_box_in_list_order(self):
        root = parse(render_svg(FULL, kinds=KINDS))
        titles = [t for t in texts(root) if t in {s.display_title for s in FULL.steps}]
        assert titles == [s.display_title for s in FULL.steps]
        assert len([g for g in root.iter(f"{SVG}g") if g.get("class") == "step"]) == 5

    def test_terminal_targets_have_their_own_shapes(self):
        root = parse(render_svg(FULL, kinds=KINDS))
        terminals = {
            g.get("class"): g for g in root.iter(f"{SVG}g") if "terminal" in (g.get("class") or "")
        }
        assert set(terminals) == {"terminal terminal-end", "terminal terminal-reject"}
        assert terminals["terminal terminal-end"].find(f"{SVG}ellipse") is not None
        octagon = terminals["terminal terminal-reject"].find(f"{SVG}polygon")
        assert len(octagon.get("points").split()) == 8

    def test_fail_is_drawn_only_when_something_leads_there(self):
        plain = parse(render_svg(spec_of([{"id": "a", "service": "s"}])))
        failing = parse(render_svg(spec_of([{"id": "a", "service": "s", "on": {"bad": "fail"}}])))
        assert "fail: failed" not in texts(plain)
        assert "fail: failed" in texts(failing)

    def test_routes_are_labelled_with_results_and_conditions(self):
        labels = texts(parse(render_svg(FULL, kinds=KINDS)))
        assert "on rejected" in labels
        assert any(label.startswith("if has(payload.docs)") for label in labels)
        assert "otherwise" in labels

    def test_a_loop_back_is_dashed(self):
        root = parse(render_svg(FULL, kinds=KINDS))
        dashed = [p for p in root.iter(f"{SVG}path") if p.get("stroke-dasharray")]
        # request-docs goes back to approve; upload-site-plan back to validate
        assert len(dashed) == 2

    def test_time_outs_and_escalation_ladders_are_written_on_the_step(self):
        labels = texts(parse(render_svg(FULL, kinds=KINDS)))
        assert "time-out 2 working days → escalate" in labels
        assert "escalates to: group:backup-reviewers" in labels
        assert "retries: 3 × from 5s" in labels

    def test_text_is_escaped(self):
        spec = spec_of([{"id": "a", "service": "s", "title": "<script>alert(1)</script> & co"}])
        svg = render_svg(spec)
        assert "<script>" not in svg
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in svg
        parse(svg)  # still well-formed XML

    def test_the_current_step_is_outlined(self):
        root = parse(render_svg(FULL, kinds=KINDS, current="approve"))
        wide = [r for r in root.iter(f"{SVG}rect") if r.get("stroke-width") == "3"]
        assert len(wide) == 1

    def test_no_style_attribute_so_the_csp_needs_no_exception(self):
        svg = render_svg(FULL, kinds=KINDS)
        assert "style=" not in svg and "<style" not in svg and "<script" not in svg

    def test_crossing_routes_get_separate_lanes(self):
        spec = spec_of(
            [
                {"id": "a", "service": "s", "on": {"x": "c", "y": "d"}},
                {"id": "b", "service": "s", "on": {"x": "d"}},
                {"id": "c", "service": "s"},
                {"id": "d", "service": "s"},
            ]
        )
        root = parse(render_svg(spec))
        lanes = {
            p.get("d").split(" ")[1] for p in root.iter(f"{SVG}path") if " H" in (p.get("d") or "")
        }
        assert len(lanes) == 3  # a->c, a->d and b->d overlap, so each runs in its own lane
