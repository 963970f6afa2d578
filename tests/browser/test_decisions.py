"""Decisions citizens can read, walked in a real browser at phone and desktop widths: the seed's
payload without an address refused at validation, a reviewer's refusal made in the inbox, an
approval; the tracker's words, the email, and axe on every page on the way."""

import threading
from importlib import import_module

import pytest
from django.core import mail

from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.scenarios import seed_as_make_run
from tests.browser.test_axe import assert_no_blocking_violation
from tests.factories import make_user, run_queued, start
from workflows_app.management.demo_server import serve
from workflows_app.models import RunState, StepRun

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

pytestmark = pytest.mark.browser

SIZES = {"phone": PHONE, "desktop": DESKTOP}
SEED_PAYLOAD = {"applicant": "Jane Citizen", "email": "jane@example.org"}  # no address
MISSING = "the address of the site is missing"


@pytest.fixture
def demo_validation():
    """The demo validation service of `make run`, on a free port."""
    server = serve(port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/validate"
    server.shutdown()
    server.server_close()


@pytest.fixture
def jobs_run_at_once(monkeypatch):
    """Queued jobs (emails) run right away in the process that sends them, as a worker would."""

    def run(func: str, *args, **options):
        module, _, name = func.rpartition(".")
        getattr(import_module(module), name)(*args)

    monkeypatch.setattr("workflows_app.runtime.queue.async_task", run)


@pytest.fixture
def seed(transactional_db, demo_validation, jobs_run_at_once):
    """The seed as `make run` serves it: its files, public, the demo validation over HTTP."""
    return seed_as_make_run(demo_validation)


def at_approve(definition, **payload):
    instance = start(definition, {**SEED_PAYLOAD, "address": "12 High Street", **payload})
    run_queued(instance)  # a worker calls the demo validation service
    instance.refresh_from_db()
    assert instance.current_step == "approve"
    return instance


@pytest.mark.parametrize("size", SIZES)
def test_the_seed_payload_without_an_address_is_refused_with_its_reason(
    page, live_server, seed, size
):
    page.set_viewport_size(SIZES[size])
    instance = start(seed, SEED_PAYLOAD)
    run_queued(instance)
    page.goto(instance.tracker_url)
    expect(page.locator("#status-title")).to_have_text("Status: Refused")
    expect(page.locator(".status .reasons li")).to_have_text([MISSING])
    expect(page.get_by_text("We have also sent you this decision by email.")).to_be_visible()
    assert "Complete" not in page.locator("main").inner_text()
    assert_no_blocking_violation(page, live_server)
    [email] = [m for m in mail.outbox if m.to == ["jane@example.org"]]
    assert email.subject == f"Your application {instance.case_number} has been refused"
    assert f"- {MISSING}\n" in email.body


@pytest.mark.parametrize("size", SIZES)
def test_a_reviewers_refusal_shows_refused_and_the_reason(page, live_server, sign_in, seed, size):
    instance = at_approve(seed)
    task = StepRun.objects.get(instance=instance, state=RunState.WAITING)
    staff = sign_in(make_user("rita", "plan-reviewers")).new_page()
    staff.set_viewport_size(SIZES[size])
    staff.goto(f"/tasks/{task.pk}/")
    staff.get_by_label("Note for staff").fill("Zq-internal: spoke to the neighbours")
    staff.get_by_role("button", name="Reject").click()
    reason = staff.get_by_label("Reason for the applicant")
    expect(reason).to_have_attribute("aria-invalid", "true")
    expect(staff.locator("#decision-reason-error")).to_contain_text("give a reason")
    expect(staff.get_by_label("Note for staff")).to_have_value(
        "Zq-internal: spoke to the neighbours"
    )
    assert_no_blocking_violation(staff, live_server)

    staff.get_by_label("Reason for the applicant").fill("The extension is taller than 7 m.")
    staff.get_by_role("button", name="Reject").click()
    expect(staff.get_by_role("status")).to_contain_text("is now rejected")

    page.set_viewport_size(SIZES[size])
    page.goto(instance.tracker_url)
    expect(page.locator("#status-title")).to_have_text("Status: Refused")
    expect(page.locator(".status .reasons li")).to_have_text(["The extension is taller than 7 m."])
    assert "Zq-internal" not in page.content()
    assert_no_blocking_violation(page, live_server)
    [email] = [m for m in mail.outbox if m.to == ["jane@example.org"]]
    assert "- The extension is taller than 7 m.\n" in email.body and "Zq" not in email.body


@pytest.mark.parametrize("size", SIZES)
def test_an_approval_shows_approved(page, live_server, sign_in, seed, size):
    instance = at_approve(seed)
    task = StepRun.objects.get(instance=instance, state=RunState.WAITING)
    staff = sign_in(make_user("rita", "plan-reviewers")).new_page()
    staff.goto(f"/tasks/{task.pk}/")
    staff.get_by_role("button", name="Approve").click()
    expect(staff.get_by_role("status")).to_contain_text("is now completed")

    page.set_viewport_size(SIZES[size])
    page.goto(instance.tracker_url)
    expect(page.locator("#status-title")).to_have_text("Status: Approved")
    expect(page.get_by_text("Your application has been approved.")).to_be_visible()
    expect(page.get_by_text("We have also sent you this decision by email.")).to_be_visible()
    assert_no_blocking_violation(page, live_server)
    [email] = [m for m in mail.outbox if m.to == ["jane@example.org"]]
    assert email.subject == f"Your application {instance.case_number} has been approved"


@pytest.mark.parametrize("size", SIZES)
def test_the_front_page(page, live_server, seed, size):
    page.set_viewport_size(SIZES[size])
    page.goto("/")
    expect(page.get_by_role("heading", name="Services you can apply for")).to_be_visible()
    expect(page.get_by_role("heading", name="Building permit")).to_be_visible()
    expect(page.get_by_label("Case number or tracking link")).to_be_visible()
    assert_no_blocking_violation(page, live_server)
    overflow = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    assert page.evaluate(overflow) <= 0


def test_the_staff_pages_do_not_scroll_sideways_on_a_phone(live_server, sign_in, seed):
    instances = [at_approve(seed, applicant=f"Applicant {n}") for n in range(3)]
    task = StepRun.objects.get(instance=instances[0], state=RunState.WAITING)
    staff = sign_in(make_user("rita", "plan-reviewers")).new_page()
    staff.set_viewport_size(PHONE)
    width = "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    for url in ("/tasks/", f"/tasks/{task.pk}/"):
        staff.goto(url)
        scroll, client = staff.evaluate(width)
        assert scroll <= client, f"{url} is {scroll} px wide in a {client} px phone viewport"
        assert_no_blocking_violation(staff, live_server)
