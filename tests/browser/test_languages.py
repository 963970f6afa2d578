"""The citizen pages in Spanish, in a real browser: chosen by Accept-Language and by the
language switch, with no English left in what people read (or hear: screen-reader text,
labels and the page title count), `lang="es"` on the page and axe passing. The examples in
workflows/ carry the Spanish names and titles (docs/pages.md, Languages)."""

import re
from pathlib import Path

import pytest

from tests.browser.conftest import DESKTOP, PHONE, SCREENSHOTS
from tests.browser.test_axe import assert_no_blocking_violation
from tests.factories import make_definition, make_service, start
from tests.requests_to_applicant import emailed_link
from workflows_app.authoring import publishing
from workflows_app.models import RunState, StepRun

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

pytestmark = pytest.mark.browser

EXAMPLES = Path(__file__).resolve().parents[2] / "workflows"
APPLICATION = {"applicant": "Zebulon Quixfarnsworth", "address": "1 Main St", "email": "z@q.org"}
# Proper names and codes that read the same in every language.
PROPER_NAMES = {"English", "Español", "Europe/Brussels", "PDF", "Zebulon Quixfarnsworth"}
CASE_NUMBER = re.compile(r"[A-Z]{2,4}-\d{4}-[0-9A-Z]{4,}")
NOT_WORDS = re.compile(r"[\W\d_]*")  # times, dates in digits, punctuation
# Common English words that are not Spanish words: one of them means English was left.
ENGLISH = set(
    [
        "the",
        "your",
        "you",
        "we",
        "our",
        "is",
        "are",
        "has",
        "have",
        "been",
        "was",
        "were",
        "will",
        "with",
        "this",
        "that",
        "for",
        "from",
        "and",
        "application",
        "applications",
        "step",
        "steps",
        "waiting",
        "wait",
        "track",
        "services",
        "service",
        "find",
        "status",
        "submitted",
        "started",
        "finished",
        "done",
        "progress",
        "coming",
        "upcoming",
        "send",
        "time",
        "times",
        "page",
        "link",
        "here",
        "please",
        "contact",
        "office",
        "decision",
        "approved",
        "refused",
        "main",
        "skip",
        "more",
        "staff",
        "sign",
    ]
)

VISIBLE_TEXT = """() => {
  const texts = [document.title];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (node.parentElement.closest('script, style, template, noscript')) continue;
    texts.push(node.textContent);
  }
  for (const el of document.querySelectorAll('[aria-label], [title], [placeholder], [alt]')) {
    for (const name of ['aria-label', 'title', 'placeholder', 'alt']) {
      if (el.hasAttribute(name)) texts.push(el.getAttribute(name));
    }
  }
  return texts.map(t => t.replace(/\\s+/g, ' ').trim()).filter(Boolean);
}"""


def english_left(page, english_texts: set[str] = frozenset()) -> list[str]:
    """Texts of the page that are still English: a text the English page shows word for word,
    or one holding a common English word; proper names and case numbers excepted."""
    found = []
    for text in page.evaluate(VISIBLE_TEXT):
        rest = CASE_NUMBER.sub("", text)
        for name in PROPER_NAMES:
            rest = rest.replace(name, "")
        if NOT_WORDS.fullmatch(rest):
            continue
        words = {word.lower() for word in re.findall(r"[A-Za-z]+", rest)}
        if text in english_texts or words & ENGLISH:
            found.append(text)
    return found


def english_texts_of(site, url: str) -> set[str]:
    """Every text of the page as an English reader gets it (to compare the Spanish one with)."""
    english = site.new_page()
    english.set_extra_http_headers({"Accept-Language": "en"})
    english.goto(url)
    texts = set(english.evaluate(VISIBLE_TEXT))
    english.close()
    return texts


def load_examples() -> None:
    """The examples in workflows/, with validation as the built-in check (no HTTP service)."""
    publishing.load_files(sorted(EXAMPLES.glob("*.yaml")))
    make_service("validationSvc", callable="workflows_app.builtin.check_required_fields")


def in_review():
    """building-permit-full, validated, its zoning and fire-safety reviews under way."""
    from workflows_app.queries import catalog

    return start(catalog.latest_definition("building-permit-full"), APPLICATION)


def spanish(site):
    """A page whose browser asks for Spanish first (Accept-Language)."""
    page = site.new_page()
    page.set_extra_http_headers({"Accept-Language": "es-ES,es;q=0.9,en;q=0.5"})
    return page


def assert_spanish(page, live_server, english_texts=frozenset()) -> None:
    assert page.locator("html").get_attribute("lang") == "es"
    assert english_left(page, english_texts) == []
    assert_no_blocking_violation(page, live_server)


def test_the_front_page_in_spanish_by_accept_language(site, live_server):
    load_examples()
    english = english_texts_of(site, "/")
    assert "Change of address" in english  # the comparison sees the English page
    page = spanish(site)
    page.goto("/")
    expect(page.get_by_role("heading", name="Servicios públicos", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Cambio de domicilio")).to_be_visible()
    assert_spanish(page, live_server, english)


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_the_tracker_in_spanish_by_accept_language(site, live_server, size):
    load_examples()
    instance = in_review()
    english = english_texts_of(site, instance.tracker_url)
    page = spanish(site)
    page.set_viewport_size({"phone": PHONE, "desktop": DESKTOP}[size])
    page.goto(instance.tracker_url)
    expect(page.get_by_role("heading", name="Licencia de obras (completa)")).to_be_visible()
    expect(page.get_by_role("heading", name="Un urbanista comprueba las normas")).to_be_visible()
    expect(page.get_by_text("Esperando a un miembro del personal").first).to_be_visible()
    expect(page.locator(".deadline")).to_contain_text("Nuestro objetivo es resolver antes del")
    assert_spanish(page, live_server, english)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = "tracker-es.png" if size == "desktop" else "tracker-es-phone.png"
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def test_the_switch_turns_the_tracker_spanish_and_a_cookie_keeps_it(site, live_server):
    load_examples()
    instance = in_review()
    page = site.new_page()
    page.set_extra_http_headers({"Accept-Language": "en"})
    page.goto(instance.tracker_url)
    assert page.locator("html").get_attribute("lang") == "en"
    english = set(page.evaluate(VISIBLE_TEXT))
    page.get_by_role("button", name="Español").click()
    expect(page.get_by_role("heading", name="Licencia de obras (completa)")).to_be_visible()
    assert page.url.endswith(instance.tracker_url)
    assert_spanish(page, live_server, english)
    page.goto("/track/")  # the cookie, not the browser's English, decides from now on
    expect(page.get_by_role("heading", name="Seguir una solicitud")).to_be_visible()
    assert_spanish(page, live_server)
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="Track an application")).to_be_visible()


def test_the_applicant_form_in_spanish(site, live_server):
    load_examples()
    make_service("reviewSvc", "human")
    definition = make_definition(
        {
            "id": "permit-with-plan",
            "name": {"en": "Building permit", "es": "Licencia de obras"},
            "deadline": "30d",
            "steps": [
                {
                    "id": "upload-site-plan",
                    "service": "sitePlanSvc",
                    "timeout": "14d",
                    "title": {"en": "Upload the site plan", "es": "Envíe el plano del terreno"},
                },
                {
                    "id": "review",
                    "service": "reviewSvc",
                    "title": {"en": "A reviewer decides", "es": "Un revisor decide"},
                },
            ],
        }
    )
    instance = start(definition, APPLICATION)
    link = emailed_link(StepRun.objects.get(instance=instance, state=RunState.WAITING))
    english = english_texts_of(site, link)
    page = spanish(site)
    page.goto(link)
    form = page.locator("form.answer-form")
    expect(form.get_by_label("Plano del terreno")).to_be_visible()
    expect(form.get_by_label("¿Algo que debamos saber del plano?")).to_be_visible()
    assert_spanish(page, live_server, english)
    form.get_by_role("button", name="Enviar").click()  # nothing chosen: the errors, in Spanish
    expect(page.get_by_role("alert")).to_contain_text("Hay un problema")
    assert_spanish(page, live_server, english)


def test_the_board_the_find_form_and_the_404_page_in_spanish(site, live_server):
    load_examples()
    in_review()
    page = spanish(site)
    for url, heading in [
        ("/board/", "Tiempos de espera"),
        ("/track/?q=BP-1999-000001", "Seguir una solicitud"),
        ("/no-such-page/", "No encontramos esa página"),
    ]:
        english = english_texts_of(site, url)
        page.goto(url)
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        assert_spanish(page, live_server, english)
