"""The tracker's polls in a real browser are conditional requests: htmx sends the step list's
ETag as If-None-Match (static/workflows_app/poll.js), the server answers 304 while nothing
changes, and the page keeps what it shows; after a change the new step list comes in."""

import time

import pytest

from tests.browser.scenarios import at_review, review, review_only_workflow
from workflows_app.web import tracker

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

pytestmark = pytest.mark.browser


@pytest.fixture
def fast_polls(monkeypatch):
    monkeypatch.setattr(tracker, "POLL_SECONDS", 1)


def test_unchanged_polls_send_if_none_match_get_304_and_swap_nothing(page, fast_polls):
    # The tracker's tag also names the minute (web/conditional.py): start well inside one.
    if (left := 60 - time.time() % 60) < 20:
        time.sleep(left + 0.5)
    instance = at_review(review_only_workflow())
    answers: list[tuple[str | None, int]] = []
    page.on(
        "response",
        lambda response: (
            answers.append((response.request.headers.get("if-none-match"), response.status))
            if response.request.headers.get("hx-request")
            else None
        ),
    )
    page.goto(instance.tracker_url)
    expect(page.locator(".badge").nth(1)).to_have_text("Waiting for a member of staff")
    page.evaluate("() => { document.getElementById('step-list').dataset.mark = 'kept'; }")
    for _ in range(20):
        if len(answers) >= 2:
            break
        page.wait_for_timeout(500)
    assert len(answers) >= 2, "the tracker should poll while the application runs"
    assert all(tag and tag.startswith('W/"') for tag, _ in answers), answers
    assert {status for _, status in answers} == {304}, answers
    # Nothing was swapped: the element the page had is still there, unchanged.
    assert page.evaluate("() => document.getElementById('step-list').dataset.mark") == "kept"
    expect(page.locator(".badge").nth(1)).to_have_text("Waiting for a member of staff")

    review(instance)
    expect(page.locator("#status-title")).to_have_text("Status: Approved", timeout=10_000)
    expect(page.locator("#announcer")).to_have_text(
        "Update: Approved. Your application has been approved."
    )
