"""The tracker of an application with parallel reviews and a sub-workflow: branches side by side
on a desktop, stacked on a phone, with plain-language titles; the child's tracker links back.
Screenshots for the README (docs/screenshots/tracker-parallel-*.png)."""

import pytest

from tests.browser.conftest import DESKTOP, PHONE, SCREENSHOTS
from tests.browser.test_axe import assert_no_blocking_violation
from tests.factories import committed, make_definition, make_service, start
from workflows_app import runtime
from workflows_app.models import RunState, StepRun, WorkflowInstance

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

pytestmark = pytest.mark.browser

INSPECTION = {
    "id": "site-inspection",
    "name": "Site inspection",
    "steps": [
        {
            "id": "visit",
            "service": "approvalSvc",
            "title": "An inspector visits the site",
            "description": "We agree a date with you by phone.",
        }
    ],
}
PERMIT = {
    "id": "building-permit-parallel",
    "name": "Building permit",
    "public": True,
    "steps": [
        {"id": "validate", "service": "okSvc", "title": "We check your application"},
        {
            "id": "reviews",
            "title": "Specialist reviews of your plans",
            "description": "Two specialists look at your plans at the same time.",
            "parallel": [
                {
                    "id": "zoning",
                    "title": "Zoning",
                    "steps": [
                        {
                            "id": "zoning-review",
                            "service": "approvalSvc",
                            "title": "A planner checks the zoning rules",
                        }
                    ],
                },
                {
                    "id": "fire",
                    "title": "Fire safety",
                    "steps": [
                        {
                            "id": "fire-review",
                            "service": "approvalSvc",
                            "title": "A fire officer checks the escape routes",
                        },
                        {
                            "id": "inspection",
                            "title": "A site inspection",
                            "workflow": "site-inspection",
                        },
                    ],
                },
            ],
        },
        {"id": "notify", "service": "okSvc", "title": "We send you the decision"},
    ],
}


def parallel_application():
    """Zoning still waiting for the planner; fire safety reviewed, its site inspection running."""
    make_service("okSvc")
    make_service("approvalSvc", "human")
    make_definition(INSPECTION)
    instance = start(make_definition(PERMIT), {"applicant": "Ada", "address": "1 Main St"})
    fire = StepRun.objects.get(instance=instance, step_id="fire-review", state=RunState.WAITING)
    committed(runtime.complete_task, run_id=fire.pk, result="approved", actor="user:fire")
    child = WorkflowInstance.objects.get(parent_run__instance=instance)
    return instance, child


def branch_boxes(page) -> list[dict]:
    return [section.bounding_box() for section in page.locator("section.branch").all()]


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_branches_stand_side_by_side_on_a_desktop_and_stack_on_a_phone(page, live_server, size):
    page.set_viewport_size({"phone": PHONE, "desktop": DESKTOP}[size])
    instance, child = parallel_application()
    page.goto(instance.tracker_url)
    expect(page.get_by_role("heading", name="Zoning", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Fire safety", exact=True)).to_be_visible()
    expect(page.get_by_text("Now in progress, at the same time:")).to_be_visible()
    expect(page.get_by_text("A planner checks the zoning rules").first).to_be_visible()
    zoning, fire = branch_boxes(page)
    if size == "desktop":
        assert zoning["y"] == fire["y"] and fire["x"] > zoning["x"] + zoning["width"] - 1
    else:
        assert fire["y"] >= zoning["y"] + zoning["height"] and fire["x"] == zoning["x"]
    overflow = "() => document.documentElement.scrollWidth - window.innerWidth"
    assert page.evaluate(overflow) <= 0, f"the tracker scrolls sideways at {size} width"
    assert_no_blocking_violation(page, live_server)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"tracker-parallel-{size}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000


def test_the_sub_workflow_links_to_its_own_tracker_which_links_back(page, live_server):
    instance, child = parallel_application()
    page.goto(instance.tracker_url)
    page.get_by_role(
        "link", name=f"Follow this part of your application: {child.case_number}"
    ).click()
    expect(page.get_by_role("heading", name="Site inspection", exact=True)).to_be_visible()
    expect(page.get_by_text("An inspector visits the site").first).to_be_visible()
    page.get_by_role("link", name=f"application {instance.case_number}").click()
    expect(page.get_by_role("heading", name="Building permit", exact=True)).to_be_visible()
    assert_no_blocking_violation(page, live_server)
