"""The citizens' front page `/`: public services in plain language, the tracking form, links."""

from django.test import TestCase, override_settings

from tests.factories import make_definition, make_user, simple_workflow
from workflows_app.queries import catalog


class FrontPageTests(TestCase):
    def test_lists_the_public_services_by_name_and_description_not_the_private_ones(self):
        simple_workflow(
            "parking-permit",
            name="Parking permit",
            description="Park near your home.",
            public=True,
        )
        simple_workflow("internal-audit", name="Internal audit")  # not public
        page = self.client.get("/")
        text = page.content.decode()
        assert page.status_code == 200
        assert "<h3>Parking permit</h3>" in text and "<p>Park near your home.</p>" in text
        assert "Internal audit" not in text

    def test_shows_the_newest_version_of_each_service(self):
        definition = simple_workflow("parking-permit", name="Parking permit", public=True)
        make_definition({**definition.source, "name": "Residents' parking"})  # v2, public
        make_definition({**definition.source, "id": "closed", "name": "Closed one"})  # private
        text = self.client.get("/").content.decode()
        assert "Residents&#x27; parking" in text and "<h3>Parking permit</h3>" not in text

    def test_offers_the_tracking_form_and_the_waiting_times(self):
        text = self.client.get("/").content.decode()
        assert '<form class="find-form" method="get" action="/track/">' in text
        assert '<label for="q">Case number or tracking link</label>' in text
        assert 'href="/board/"' in text and 'href="/tasks/"' in text

    def test_says_what_to_do_when_no_service_is_public(self):
        text = self.client.get("/").content.decode()
        assert "No service takes applications online yet" in text

    @override_settings(DEBUG=True)
    def test_is_never_djangos_debug_404_even_with_debug_on(self):
        page = self.client.get("/")
        assert page.status_code == 200 and "URLconf" not in page.content.decode()

    def test_reads_the_services_in_two_queries(self):
        for number in range(5):
            simple_workflow(f"service-{number}", public=True)
        catalog.clear()
        self.client.get("/")  # the specs are compiled once per process
        with self.assertNumQueries(2):
            self.client.get("/")

    def test_the_admins_view_site_link_goes_to_the_front_page(self):
        self.client.force_login(make_user("admin", is_staff=True, is_superuser=True))
        text = self.client.get("/admin/").content.decode()
        assert '<a href="/">View site</a>' in text

    def test_the_brand_in_the_header_leads_home(self):
        text = self.client.get("/board/").content.decode()
        assert '<a class="site-header__brand" href="/">' in text
