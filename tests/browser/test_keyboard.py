"""Keyboard-only use of the public pages: tab order, a visible focus, Enter submits."""

import pytest

from tests.browser.scenarios import at_review

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

pytestmark = pytest.mark.browser

# The header: skip link, brand, navigation, then the language switch (the other language).
HEADER_ORDER = [
    "Skip to main content",
    "City services",
    "Track an application",
    "Waiting times",
    "Español",
]


def tab(page) -> dict:
    """Press Tab; describe the element that has the focus then, and how its focus shows."""
    page.keyboard.press("Tab")
    return page.evaluate(
        """() => {
        const el = document.activeElement, style = getComputedStyle(el), box = el.getBoundingClientRect();
        return {name: (el.innerText || el.getAttribute('aria-label') || el.id || '').trim(),
                id: el.id, outline: style.outlineStyle + ' ' + style.outlineWidth,
                ring: style.boxShadow, onScreen: box.top >= 0 && box.left >= 0 && box.width > 0};
    }"""
    )


def assert_focus_visible(focus: dict) -> None:
    assert focus["outline"] == "solid 3px", focus
    assert focus["ring"] != "none", focus
    assert focus["onScreen"], focus


def test_the_tracker_header_is_reached_in_order_with_a_visible_focus(page):
    instance = at_review()
    page.goto(instance.tracker_url)
    stops = [tab(page) for _ in HEADER_ORDER]
    assert [stop["name"] for stop in stops] == HEADER_ORDER
    for stop in stops:
        assert_focus_visible(stop)


def test_the_skip_link_moves_the_focus_to_the_main_content(page):
    page.goto(at_review().tracker_url)
    tab(page)
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"


def test_the_find_form_is_filled_and_sent_with_the_keyboard_alone(page):
    instance = at_review()
    page.goto("/track/")
    stops = [tab(page) for _ in range(len(HEADER_ORDER) + 2)]
    assert [stop["name"] for stop in stops] == [*HEADER_ORDER, "q", "Find my application"]
    for stop in stops[-2:]:
        assert_focus_visible(stop)
    page.keyboard.press("Shift+Tab")
    page.keyboard.type(instance.case_number)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{instance.tracker_url}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Building permit")


def test_a_reference_that_finds_nothing_says_so_and_keeps_the_focus_in_the_field(page):
    page.goto("/track/")
    for _ in range(len(HEADER_ORDER) + 1):
        tab(page)
    page.keyboard.type("BP-1999-000001")
    page.keyboard.press("Enter")
    expect(
        page.get_by_text("We could not find an application with that reference.")
    ).to_be_visible()
    field = page.locator("#q")
    expect(field).to_be_focused()
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_value("BP-1999-000001")
