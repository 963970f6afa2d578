"""The supervisors' reports in a browser: axe finds no serious violation, the charts show
without script, and screenshots for the docs (docs/screenshots/reports-*.png)."""

import pytest

from tests.browser.conftest import PHONE, SCREENSHOTS
from tests.browser.test_axe import assert_no_blocking_violation
from tests.report_data import build_busy_report_data, make_supervisor

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

pytestmark = pytest.mark.browser

PAGES = (
    ("reports-on-time", "/reports/", "Decisions on time, by workflow"),
    ("reports-by-month", "/reports/?by=month", "Decisions on time, by month"),
    ("reports-backlog", "/reports/backlog/", "Running applications by age"),
    ("reports-workload", "/reports/workload/", "Decisions per reviewer"),
    ("reports-durations", "/reports/durations/", "How long decisions and cases take"),
)


def test_every_report_page_passes_axe_and_is_screenshotted(
    browser, live_server, sign_in, transactional_db
):
    build_busy_report_data()
    staff = sign_in(make_supervisor()).new_page()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, url, heading in PAGES:
        staff.goto(url)
        expect(staff.get_by_role("heading", name=heading)).to_be_visible()
        assert staff.locator("figure.chart svg rect").count() > 0
        assert_no_blocking_violation(staff, live_server)
        path = SCREENSHOTS / f"{name}-desktop.png"
        staff.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000


def test_the_report_fits_a_phone(browser, live_server, sign_in, transactional_db):
    build_busy_report_data()
    staff = sign_in(make_supervisor()).new_page()
    staff.set_viewport_size(PHONE)
    staff.goto("/reports/")
    expect(staff.get_by_role("heading", name="Decisions on time, by workflow")).to_be_visible()
    overflow = "() => document.documentElement.scrollWidth - window.innerWidth"
    assert staff.evaluate(overflow) <= 0
    assert_no_blocking_violation(staff, live_server)
    staff.screenshot(path=str(SCREENSHOTS / "reports-on-time-phone.png"), full_page=True)
