"""Screenshots of the public pages at phone and desktop widths, for the README (docs/screenshots/)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.browser.conftest import DESKTOP, PHONE, SCREENSHOTS
from tests.browser.scenarios import (
    at_review,
    finished_runs,
    permit_workflow,
    review,
    review_only_workflow,
    waiting_runs,
)
from workflows_app.models import Event

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

pytestmark = pytest.mark.browser


def busy_office():
    """Two workflows with history, queues of different ages and an escalation today."""
    permit = permit_workflow(
        public=True, description="Permission to build, extend or convert a house."
    )
    finished_runs(permit, "approve", [timedelta(hours=h) for h in (3, 8, 20, 26, 40)])
    now = timezone.now()
    waiting_runs(permit, "approve", [now - timedelta(hours=h, minutes=17) for h in (1, 4, 9, 30)])
    parking = review_only_workflow()
    waiting_runs(parking, "approve", [now - timedelta(minutes=m) for m in (12, 45)])
    instance = at_review(permit)
    Event.objects.create(instance=instance, type=Event.Type.ESCALATED, step="approve")
    return instance


def decided(definition, result: str, reason: str = ""):
    """An application with an email address, decided by a reviewer."""
    instance = at_review(definition, email="applicant@example.org")
    return review(instance, result, reason=reason)


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_screenshots_of_the_public_pages(page, size):
    page.set_viewport_size({"phone": PHONE, "desktop": DESKTOP}[size])
    instance = busy_office()
    permit = instance.definition
    refused = decided(permit, "rejected", "The extension is taller than the 7 m the plan allows.")
    approved = decided(permit, "approved")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, url, ready in (
        ("tracker", instance.tracker_url, "Steps like this usually take"),
        ("tracker-refused", refused.tracker_url, "Status: Refused"),
        ("tracker-approved", approved.tracker_url, "Status: Approved"),
        ("home", "/", "Services you can apply for"),
        ("board", "/board/", "Waiting times"),
        ("track-find", "/track/", "Track an application"),
    ):
        page.goto(url)
        expect(page.get_by_text(ready).first).to_be_visible()
        overflow = "() => document.documentElement.scrollWidth - window.innerWidth"
        assert page.evaluate(overflow) <= 0, f"{url} scrolls sideways at {size} width"
        path = SCREENSHOTS / f"{name}-{size}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000
