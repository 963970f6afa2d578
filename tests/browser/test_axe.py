"""axe-core (vendored from the npm registry) finds no serious or critical violation on any page."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.browser.conftest import AXE_URL_PATH, PHONE
from tests.browser.scenarios import (
    at_review,
    finished_runs,
    permit_workflow,
    review,
    waiting_runs,
)
from tests.factories import make_user
from workflows_app import runtime
from workflows_app.models import RunState, StepRun

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

pytestmark = pytest.mark.browser

# WCAG 2.0-2.2 A and AA rules, and axe's best practices (landmarks, headings, ...).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
BLOCKING = ("serious", "critical")


def axe_scan(page, live_server) -> list[dict]:
    """Run axe on the page as it stands; every violation with its impact and where."""
    # A same-origin file, not add_script_tag(path=...): that inlines the script, which the
    # page's Content-Security-Policy rightly refuses.
    page.add_script_tag(url=live_server.url + AXE_URL_PATH)
    return page.evaluate(
        """async (tags) => {
        const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
        return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            where: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
    }""",
        AXE_TAGS,
    )


def assert_no_blocking_violation(page, live_server) -> None:
    violations = axe_scan(page, live_server)
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    assert blocking == [], blocking
    # Lesser findings are not failures, but they are printed for the docs (pytest -s).
    print(f"axe {page.url}: {len(violations)} minor or moderate: {[v['id'] for v in violations]}")


def busy_permit():
    """A permit workflow with history, a waiting application and an escalated one."""
    definition = permit_workflow()
    finished_runs(definition, "approve", [timedelta(hours=h) for h in (2, 5, 20, 26, 30)])
    now = timezone.now()
    waiting_runs(definition, "approve", [now - timedelta(hours=h) for h in (1, 7, 30)])
    return definition


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_the_tracker_of_a_running_application(page, live_server, viewport):
    if viewport == "phone":
        page.set_viewport_size(PHONE)
    page.goto(at_review(busy_permit()).tracker_url)
    assert_no_blocking_violation(page, live_server)


def test_the_tracker_of_a_rejected_application(page, live_server):
    page.goto(review(at_review(), "rejected", reason="The plans are incomplete.").tracker_url)
    assert_no_blocking_violation(page, live_server)


def test_the_tracker_of_an_escalated_application(page, live_server):
    instance = at_review()
    runtime.process_due(now=timezone.now() + timedelta(hours=49))
    page.goto(instance.tracker_url)
    assert_no_blocking_violation(page, live_server)


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_the_board(page, live_server, viewport):
    if viewport == "phone":
        page.set_viewport_size(PHONE)
    busy_permit()
    page.goto("/board/")
    assert_no_blocking_violation(page, live_server)


def test_the_find_form_with_an_error(page, live_server):
    page.goto("/track/?q=nothing-like-a-case-number")
    assert_no_blocking_violation(page, live_server)


def test_the_not_found_page(page, live_server):
    page.goto("/track/not-a-tracking-id/")
    assert_no_blocking_violation(page, live_server)


def test_the_staff_inbox_and_a_task(browser, live_server, sign_in, transactional_db):
    instance = at_review(busy_permit())
    task = StepRun.objects.get(instance=instance, state=RunState.WAITING)
    staff = sign_in(make_user("rita", "plan-reviewers")).new_page()
    for url in ("/tasks/", f"/tasks/{task.pk}/"):
        staff.goto(url)
        assert staff.url.endswith(url), f"{url} redirected to {staff.url}"
        assert_no_blocking_violation(staff, live_server)
