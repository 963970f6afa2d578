"""A request to the applicant in a real browser (phone and desktop): the tracker says we need
something and that the deadline is paused; the emailed link opens an accessible form; the
citizen uploads a PDF; the deadline runs again and the case goes on."""

import pytest

from tests.browser.conftest import DESKTOP, PHONE, SCREENSHOTS
from tests.browser.test_axe import assert_no_blocking_violation
from tests.factories import start
from tests.requests_to_applicant import PDF, emailed_link, request_workflow
from workflows_app.models import CaseDocument, RunState, StepRun

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

pytestmark = pytest.mark.browser

APPLICATION = {"applicant": "Zebulon Quixfarnsworth", "email": "zq@example.org"}


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_the_applicant_uploads_a_pdf_through_the_emailed_link(page, live_server, size):
    page.set_viewport_size({"phone": PHONE, "desktop": DESKTOP}[size])
    instance = start(request_workflow(), APPLICATION)
    run = StepRun.objects.get(instance=instance, state=RunState.WAITING)

    page.goto(instance.tracker_url)
    expect(page.get_by_role("heading", name="We need something from you")).to_be_visible()
    expect(page.locator(".deadline")).to_contain_text("We aim to decide by")
    expect(page.locator(".badge--paused")).to_have_text("Paused while we wait for you")
    overflow = "() => document.documentElement.scrollWidth - window.innerWidth"
    assert page.evaluate(overflow) <= 0, f"the tracker scrolls sideways at {size} width"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"tracker-request-{size}.png"), full_page=True)
    assert_no_blocking_violation(page, live_server)

    page.goto(emailed_link(run))
    form = page.locator("form.answer-form")
    expect(form.get_by_label("Site plan")).to_have_attribute(
        "accept", ".pdf,application/pdf,.png,image/png,.jpg,.jpeg,image/jpeg"
    )
    assert_no_blocking_violation(page, live_server)

    form.get_by_label("Anything we should know?").fill("The shed is new.")
    form.get_by_role("button", name="Send").click()
    expect(page.get_by_role("alert")).to_contain_text("There is a problem")
    page.screenshot(path=str(SCREENSHOTS / f"request-form-{size}.png"), full_page=True)
    expect(form.get_by_label("Site plan")).to_have_attribute("aria-invalid", "true")
    expect(form.get_by_label("Anything we should know?")).to_have_value("The shed is new.")
    assert_no_blocking_violation(page, live_server)

    site_plan = {"name": "site-plan.pdf", "mimeType": "application/pdf", "buffer": PDF}
    form.get_by_label("Site plan").set_input_files(site_plan)
    form.get_by_role("button", name="Send").click()
    expect(page.get_by_role("heading", name="Thank you: we have your answer")).to_be_visible()
    expect(page.get_by_role("link", name="site-plan.pdf")).to_be_visible()

    page.goto(instance.tracker_url)
    expect(page.locator(".deadline")).to_contain_text("We aim to decide by")
    expect(page.locator(".badge--paused")).to_have_count(0)
    expect(page.get_by_text("Current step: A reviewer decides")).to_be_visible()
    instance.refresh_from_db()
    document = CaseDocument.objects.get(instance=instance)
    assert instance.context["upload-site-plan"] == {
        "sitePlan": str(document.pk),
        "note": "The shed is new.",
    }
    assert instance.current_step == "review" and instance.awaiting_applicant_since is None
