"""Keyboard-only use of the staff pages: sign in, open a task from the inbox, decide on it."""

import pytest

from tests.browser.scenarios import at_review, review_only_workflow
from tests.browser.test_axe import assert_no_blocking_violation
from tests.factories import make_user
from workflows_app.models import RunState, Status, StepRun

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

pytestmark = pytest.mark.browser

MAX_TABS = 30  # more stops than any staff page has; a missing target fails, never loops


def focused(page) -> dict:
    """Describe the element that has the focus, and whether and how its focus shows."""
    return page.evaluate(
        """() => {
        const el = document.activeElement, style = getComputedStyle(el), box = el.getBoundingClientRect();
        return {tag: el.tagName.toLowerCase(), id: el.id, name: el.name || '',
                text: (el.innerText || el.value || el.getAttribute('aria-label') || '').trim(),
                href: el.getAttribute('href') || '', inTaskList: !!el.closest('#task-list'),
                visible: el.matches(':focus-visible'), outline: style.outlineStyle,
                ring: style.boxShadow, onScreen: box.width > 0 && box.height > 0};
    }"""
    )


def tab_to(page, wanted) -> dict:
    """Press Tab until `wanted(focus)` holds; every stop on the way shows its focus."""
    focus = focused(page)
    if wanted(focus):  # the sign-in form autofocuses the username
        assert_focus_visible(focus)
        return focus
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        focus = focused(page)
        assert_focus_visible(focus)
        if wanted(focus):
            return focus
    raise AssertionError(f"{MAX_TABS} presses of Tab did not reach the element on {page.url}")


def assert_focus_visible(focus: dict) -> None:
    assert focus["visible"], focus
    assert focus["outline"] != "none" or focus["ring"] != "none", focus
    assert focus["onScreen"], focus


def sign_in_with_keys(page, username: str) -> None:
    page.goto("/accounts/login/")
    tab_to(page, lambda f: f["name"] == "username")
    page.keyboard.type(username)
    tab_to(page, lambda f: f["name"] == "password")
    page.keyboard.type("pw")
    page.keyboard.press("Enter")
    page.wait_for_url("**/tasks/")


def test_a_reviewer_signs_in_opens_a_task_and_approves_it_with_the_keyboard_alone(page):
    instance = at_review(review_only_workflow())
    task = StepRun.objects.get(instance=instance, state=RunState.WAITING)
    make_user("rita", "plan-reviewers")
    sign_in_with_keys(page, "rita")

    link = tab_to(page, lambda f: f["tag"] == "a" and f["inTaskList"])
    assert (link["text"], link["href"]) == (instance.case_number, f"/tasks/{task.pk}/")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/tasks/{task.pk}/")

    tab_to(page, lambda f: f["id"] == "decision-reason")
    page.keyboard.type("Plans meet the code.")
    approve = tab_to(page, lambda f: f["name"] == "result")
    assert approve["text"] == "Approve"
    page.keyboard.press("Space")

    expect(page.get_by_role("status")).to_contain_text(
        f"Recorded “Approve”. {instance.case_number} is now completed."
    )
    task.refresh_from_db()
    instance.refresh_from_db()
    assert (task.result, task.reason, task.completed_by) == (
        "approved",
        "Plans meet the code.",
        "user:rita",
    )
    assert instance.status == Status.COMPLETED


def test_a_wrong_password_keeps_the_reviewer_on_the_sign_in_page_with_the_reason(page):
    make_user("rita", "plan-reviewers")
    page.goto("/accounts/login/")
    tab_to(page, lambda f: f["name"] == "username")
    page.keyboard.type("rita")
    page.keyboard.press("Tab")
    page.keyboard.type("not-the-password")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("do not match")
    assert "/accounts/login/" in page.url


def test_the_sign_in_page_and_a_decided_task_have_no_serious_axe_violation(page, live_server):
    # The inbox and an open task are scanned in test_axe.py; these two pages are not.
    instance = at_review(review_only_workflow())
    task = StepRun.objects.get(instance=instance, state=RunState.WAITING)
    make_user("rita", "plan-reviewers")
    page.goto("/accounts/login/")
    assert_no_blocking_violation(page, live_server)
    sign_in_with_keys(page, "rita")
    page.goto(f"/tasks/{task.pk}/")
    page.get_by_label("Reason for the applicant").fill("The plans are incomplete.")
    page.get_by_role("button", name="Reject").click()
    expect(page.get_by_role("status")).to_contain_text("is now rejected")
    assert_no_blocking_violation(page, live_server)


def test_after_a_decision_the_focus_stays_in_the_decision_panel(page):
    instance = at_review(review_only_workflow())
    task = StepRun.objects.get(instance=instance, state=RunState.WAITING)
    make_user("rita", "plan-reviewers")
    sign_in_with_keys(page, "rita")
    page.goto(f"/tasks/{task.pk}/")
    tab_to(page, lambda f: f["name"] == "result")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("is now completed")
    # Without this a keyboard user is thrown back to the top of the page after every decision.
    # The focus moves when htmx settles the swap, a moment after the new text shows.
    page.wait_for_function("() => !!document.activeElement.closest('#action-panel')", timeout=3000)
