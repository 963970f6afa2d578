"""The board in a real browser: it refreshes its figures by itself."""

import pytest

from tests.browser.scenarios import at_review, permit_workflow
from workflows_app.queries import stats
from workflows_app.web import board as board_views

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

pytestmark = pytest.mark.browser


def test_the_board_counts_a_new_application_without_a_reload(page, monkeypatch):
    monkeypatch.setattr(board_views, "POLL_SECONDS", 1)
    monkeypatch.setattr(stats, "BOARD_TTL_SECONDS", 1)
    definition = permit_workflow()
    at_review(definition)
    page.goto("/board/")
    review_row = page.locator(
        "tr", has=page.get_by_role("rowheader", name="Review by a planning officer")
    )
    waiting = review_row.locator("td").first
    expect(waiting).to_have_text("1")
    page.evaluate("() => { window.notReloaded = true; }")

    at_review(definition)

    expect(waiting).to_have_text("2", timeout=10_000)
    expect(page.get_by_text("2 applications waiting")).to_be_visible()
    assert page.evaluate("() => window.notReloaded") is True
