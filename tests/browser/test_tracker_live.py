"""The tracker in a real browser: it follows the application by itself and then stops polling."""

import pytest

from tests.browser.scenarios import at_review, review, review_only_workflow
from tests.factories import make_user
from workflows_app.models import RunState, StepRun
from workflows_app.web import tracker

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

pytestmark = pytest.mark.browser

SETTLE_MS = 10_000


@pytest.fixture
def fast_polls(monkeypatch):
    """Poll every second so the tests wait seconds, not minutes (the page reads the constant)."""
    monkeypatch.setattr(tracker, "POLL_SECONDS", 1)


def watch_polls(page) -> list[str]:
    """The URLs of the tracker's htmx polls, as the browser sends them."""
    polls: list[str] = []
    page.on(
        "request", lambda request: polls.append(request.url) if "seen=" in request.url else None
    )
    return polls


def test_the_tracker_shows_a_decision_without_a_reload_and_then_stops_polling(page, fast_polls):
    instance = at_review(review_only_workflow())
    polls = watch_polls(page)
    page.goto(instance.tracker_url)
    expect(page.locator(".badge").nth(1)).to_have_text("Waiting for a member of staff")
    page.evaluate("() => { window.notReloaded = true; }")
    for _ in range(20):  # at most 10 s for two polls one second apart
        if len(polls) >= 2:
            break
        page.wait_for_timeout(500)
    assert len(polls) >= 2, "the tracker should poll while the application runs"

    review(instance)  # the service layer, as a reviewer's decision or a callback would
    expect(page.locator("#status-title")).to_have_text("Status: Approved", timeout=SETTLE_MS)
    expect(page.locator(".badge").nth(1)).to_have_text("Approved")  # the deciding step
    expect(page.locator("#announcer")).to_have_text(
        "Update: Approved. Your application has been approved."
    )
    assert page.evaluate("() => window.notReloaded") is True
    assert page.locator("#step-list[hx-trigger]").count() == 0

    after_end = len(polls)
    page.wait_for_timeout(3500)  # three poll intervals
    assert polls[after_end:] == [], "no request may follow once the application has ended"


def test_the_tracker_follows_a_reviewer_deciding_in_another_browser(page, sign_in, fast_polls):
    instance = at_review(review_only_workflow())
    task = StepRun.objects.get(instance=instance, state=RunState.WAITING)
    page.goto(instance.tracker_url)
    expect(page.locator("#status-title")).to_have_text("Status: In progress")

    staff = sign_in(make_user("rita", "plan-reviewers")).new_page()
    staff.goto(f"/tasks/{task.pk}/")
    staff.get_by_role("button", name="Approve").click()

    expect(page.locator("#status-title")).to_have_text("Status: Approved", timeout=SETTLE_MS)
    expect(page.locator("#announcer")).to_have_text(
        "Update: Approved. Your application has been approved."
    )


def test_an_escalation_is_announced_to_screen_readers(page, fast_polls):
    from datetime import timedelta

    from django.utils import timezone

    from workflows_app import runtime

    instance = at_review(review_only_workflow())
    page.goto(instance.tracker_url)
    expect(page.locator("#announcer")).to_have_text("")
    runtime.process_due(now=timezone.now() + timedelta(hours=49))
    expect(page.locator("#announcer")).to_have_text(
        "Update: Review by a planning officer, Passed to another reviewer.", timeout=SETTLE_MS
    )
    expect(page.locator("#status-title")).to_have_text("Status: In progress")


def test_without_javascript_the_tracker_reloads_itself(
    browser, live_server, transactional_db, monkeypatch
):
    monkeypatch.setattr(tracker, "NOSCRIPT_REFRESH_SECONDS", 1)
    instance = at_review(review_only_workflow())
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(instance.tracker_url)
        expect(page.locator("#status-title")).to_have_text("Status: In progress")
        review(instance)
        expect(page.locator("#status-title")).to_have_text("Status: Approved", timeout=SETTLE_MS)
    finally:
        context.close()
