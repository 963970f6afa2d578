"""Browser tests: Playwright drives Debian's /usr/bin/chromium against pytest-django's live server.

No browser is ever downloaded. Without /usr/bin/chromium or the `playwright` package the tests
skip with the reason, or fail when HMS_REQUIRE_FULL_CI is set (.ci/run: CI must not go green
by skipping). Playwright's sync API runs an event loop in this thread, so Django must
be told that database calls from here are safe (they are: the loop only drives the browser).
"""

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
AXE_URL_PATH = "/static/vendor/axe/axe.min.js"
# The README's screenshots are refreshed only on request (HMS_SCREENSHOTS=1 make test);
# otherwise they go to a scratch folder so a test run leaves the tree unchanged.
SCREENSHOTS = (
    ROOT / "docs" / "screenshots"
    if os.environ.get("HMS_SCREENSHOTS")
    else Path(tempfile.gettempdir()) / "hms-screenshots"
)
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def _missing(reason: str) -> None:
    """Skip on a newcomer's machine; fail where the full suite is required (.ci/run)."""
    if os.environ.get("HMS_REQUIRE_FULL_CI", "").strip().lower() in {"1", "true", "yes"}:
        pytest.fail(f"HMS_REQUIRE_FULL_CI is set: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    """One headless chromium per test module (the event loop ends with the module)."""
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is missing: pip install playwright (no browser download)")
    # Only while the loop runs, so the rest of the suite keeps Django's async-safety check.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def site(browser, live_server, transactional_db):
    """A fresh browser context on the live server; fails the test on any CSP violation."""
    from workflows_app.queries import stats

    stats.clear()
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    violations: list[str] = []
    context.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield context
    context.close()
    assert violations == [], f"the page broke its Content-Security-Policy: {violations}"


@pytest.fixture
def page(site):
    return site.new_page()


@pytest.fixture
def sign_in(browser, live_server):
    """Make a second browser context with a user signed in (a session made by the test client)."""
    from django.test import Client

    contexts = []

    def open_context(user):
        client = Client()
        client.force_login(user)
        context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
        cookie = {"name": "sessionid", "value": client.cookies["sessionid"].value}
        context.add_cookies([{**cookie, "url": live_server.url}])
        contexts.append(context)
        return context

    yield open_context
    for context in contexts:
        context.close()
