"""The citizen's tracker /track/<id>/ and the form /track/ that finds an application."""

import re
import uuid
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.test import Client, TestCase
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.browser.scenarios import (
    PRIVATE_PAYLOAD,
    at_review,
    broken_workflow,
    finished_runs,
    permit_workflow,
    review,
)
from tests.factories import make_definition, run_queued, start
from workflows_app import runtime
from workflows_app.models import RunState, StepRun
from workflows_app.queries import catalog, stats

HTMX = {"HTTP_HX_REQUEST": "true"}


def fragment_version(html: str) -> str:
    """The `seen` value the fragment's own poll will send."""
    return re.search(r"\?seen=([0-9a-f]+)", html).group(1)


class TrackerPageTests(TestCase):
    def setUp(self):
        stats.clear()

    def test_shows_the_workflow_name_the_case_number_and_every_step_in_plain_language(self):
        instance = at_review()
        page = self.client.get(instance.tracker_url)
        assert page.status_code == 200
        text = page.content.decode()
        for expected in (
            "<h1>Building permit</h1>",
            instance.case_number,
            "Check of your documents",
            "We check that your form is complete.",
            "Review by a planning officer",
            "An officer reads your plans and decides.",
            "Decision sent to you",
        ):
            assert expected in text

    def test_each_step_says_whether_it_is_done_waiting_for_a_person_or_coming_up(self):
        instance = at_review()
        text = self.client.get(instance.tracker_url).content.decode()
        states = re.findall(r'class="badge badge--(\w+)">([^<]+)<', text)
        assert states == [
            ("done", "Done"),
            ("waiting", "Waiting for a member of staff"),
            ("upcoming", "Coming up"),
        ]
        assert 'aria-current="step"' in text
        assert "Current step: <strong>Review by a planning officer</strong>" in text

    def test_an_escalated_step_says_it_was_passed_on_in_the_words_of_the_email(self):
        from django.core import mail

        from workflows_app.runtime import notifications

        instance = at_review(email="ada@example.org")
        runtime.process_due(now=timezone.now() + timedelta(hours=49))
        text = self.client.get(instance.tracker_url).content.decode()
        assert 'badge--escalated">Passed to another reviewer<' in text
        assert notifications.send_applicant_email(instance.pk, "escalated") == 1
        assert "passed to another reviewer" in mail.outbox[-1].body

    def test_times_are_shown_in_the_site_time_zone(self):
        instance = at_review()
        moment = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)  # 10:30 in Brussels (CET)
        StepRun.objects.filter(instance=instance, step_id="validate").update(
            started_at=moment, ended_at=moment + timedelta(minutes=5)
        )
        text = self.client.get(instance.tracker_url).content.decode()
        assert "15 January 2026, 10:30" in text
        assert "15 January 2026, 10:35" in text
        assert "Times are in the Europe/Brussels time zone." in text
        fragment = self.client.get(instance.tracker_url, **HTMX).content.decode()
        assert "Times are in the Europe/Brussels time zone." in fragment

    def test_the_current_step_shows_how_long_such_steps_usually_take_and_when_it_should_end(self):
        definition = permit_workflow()
        finished_runs(definition, "approve", [timedelta(hours=h) for h in (1, 2, 3, 4, 50)])
        instance = at_review(definition)
        started = StepRun.objects.get(instance=instance, step_id="approve").started_at
        text = self.client.get(instance.tracker_url).content.decode()
        expected = timezone.localtime(started + timedelta(hours=3))
        assert "Steps like this usually take 3\xa0hours." in text
        assert f"Expected to be done around {expected:%-d %B %Y, %H:%M}." in text

    def test_no_estimate_is_shown_before_enough_steps_have_finished(self):
        definition = permit_workflow()
        finished_runs(definition, "approve", [timedelta(hours=1)] * (stats.TYPICAL_MINIMUM - 1))
        text = self.client.get(at_review(definition).tracker_url).content.decode()
        assert "usually take" not in text

    def test_a_step_past_its_usual_time_says_it_is_taking_longer(self):
        definition = permit_workflow()
        finished_runs(definition, "approve", [timedelta(minutes=1)] * 5)
        instance = at_review(definition)
        StepRun.objects.filter(instance=instance, step_id="approve").update(
            started_at=timezone.now() - timedelta(hours=2)
        )
        text = self.client.get(instance.tracker_url).content.decode()
        assert "This one is taking longer than usual." in text

    def test_an_approved_application_says_approved_and_does_not_poll(self):
        instance = review(at_review())
        text = self.client.get(instance.tracker_url).content.decode()
        assert "Status: Approved" in text and "Your application has been approved." in text
        assert "Complete" not in text
        assert "hx-trigger" not in text
        assert 'http-equiv="refresh"' not in text

    def test_a_refused_application_says_refused_with_the_reason_and_what_to_do_next(self):
        instance = review(at_review(), "rejected", reason="The extension is too tall.")
        text = self.client.get(instance.tracker_url).content.decode()
        assert "Status: Refused" in text and "Complete" not in text
        assert re.search(
            r"The reason:</p>\s*<ul class=\"reasons\"><li>The extension is too tall.<", text
        )
        assert "You may apply again, or contact the office and quote your case number" in text
        assert 'badge--upcoming">Not reached<' in text

    def test_a_failed_application_says_it_is_not_the_citizens_fault_and_what_to_do(self):
        instance = start(broken_workflow())
        run_queued(instance)
        text = self.client.get(instance.tracker_url).content.decode()
        assert "Status: Stopped because of a problem on our side" in text
        assert "not because of anything you did" in text
        assert 'badge--failed">Could not be completed<' in text

    def test_a_cancelled_application_says_so(self):
        instance = at_review()
        runtime.cancel_instance(instance_id=instance.pk, reason="applicant withdrew")
        text = self.client.get(instance.tracker_url).content.decode()
        assert "Status: Cancelled" in text
        assert "applicant withdrew" not in text  # staff reasons stay internal

    def test_no_payload_staff_note_step_output_or_staff_name_ever_appears(self):
        instance = at_review()
        pages = [
            self.client.get(instance.tracker_url),
            self.client.get(instance.tracker_url, **HTMX),
        ]
        review(instance, "approved", note="Neighbour Ygritte objected", secret="Xanthippe")
        pages += [
            self.client.get(instance.tracker_url),
            self.client.get(instance.tracker_url, **HTMX),
        ]
        secrets = [*PRIVATE_PAYLOAD.values(), "Ygritte", "Xanthippe", "reviewer", "plan-reviewers"]
        for page in pages:
            for secret in secrets:
                assert secret not in page.content.decode()

    def test_step_titles_from_definitions_are_escaped(self):
        definition = permit_workflow()
        document = {**definition.source, "id": "evil", "name": "<b>Evil</b>"}
        document["steps"] = [
            {**document["steps"][1], "title": "<script>alert(1)</script>", "on": {}}
        ]
        instance = start(make_definition(document))
        text = self.client.get(instance.tracker_url).content.decode()
        assert "<script>alert(1)</script>" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
        assert "&lt;b&gt;Evil&lt;/b&gt;" in text

    def test_the_page_is_read_in_a_fixed_number_of_queries(self):
        instance = at_review()
        catalog.clear()
        # Its revision (nothing kept yet), the instance with its runs (one join), its
        # definition, a typical duration.
        with self.assertNumQueries(4):
            self.client.get(instance.tracker_url)
        with self.assertNumQueries(1):  # the definition and the typical duration are cached
            self.client.get(instance.tracker_url, **HTMX)

    def test_an_ended_application_needs_no_statistics(self):
        instance = review(at_review())
        catalog.clear()
        with self.assertNumQueries(3):  # its revision, the instance with its runs, its definition
            self.client.get(instance.tracker_url)

    def test_a_page_read_again_unchanged_takes_one_query_with_a_token_of_its_own(self):
        instance = at_review()
        first = self.client.get(instance.tracker_url)
        reader = Client(enforce_csrf_checks=True)
        with self.assertNumQueries(1):  # its revision; the page this process rendered
            again = reader.get(instance.tracker_url)
        assert again.status_code == 200
        assert again.content.decode().count("csrfmiddlewaretoken") >= 1
        assert "hms-csrf-token-placeholder" not in again.content.decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', again.content.decode())
        assert token and token[1] not in first.content.decode()
        switched = reader.post(
            "/i18n/setlang/",
            {"language": "en", "next": instance.tracker_url, "csrfmiddlewaretoken": token[1]},
        )
        assert switched.status_code == 302  # the kept page's form works for its new reader

    def test_a_change_or_another_address_is_rendered_afresh(self):
        instance = at_review()
        assert (
            "Waiting for a member of staff"
            in self.client.get(instance.tracker_url).content.decode()
        )
        review(instance)
        assert "Approved" in self.client.get(instance.tracker_url).content.decode()
        other = self.client.get(f"{instance.tracker_url}?from=email").content.decode()
        assert f'name="next" value="{instance.tracker_url}?from=email"' in other
        with CaptureQueriesContext(connection) as queries:  # such an address is never kept
            self.client.get(f"{instance.tracker_url}?from=email")
        assert len(queries) > 1


class TrackerLiveTests(TestCase):
    def test_a_running_application_polls_every_five_seconds_and_offers_a_no_script_reload(self):
        text = self.client.get(at_review().tracker_url).content.decode()
        assert 'hx-trigger="every 5s"' in text
        assert '<noscript><meta http-equiv="refresh" content="20"></noscript>' in text
        assert 'id="announcer" class="visually-hidden" role="status" aria-live="polite"' in text
        assert 'src="/static/vendor/htmx/htmx.min.js"' in text

    def test_an_htmx_poll_gets_only_the_step_list_fragment_with_an_announcement(self):
        instance = at_review()
        response = self.client.get(instance.tracker_url, **HTMX)
        text = response.content.decode()
        assert response.status_code == 200
        assert text.lstrip().startswith('<section id="step-list"')
        assert "<html" not in text and "<h1>" not in text
        assert 'hx-trigger="every 5s"' in text
        assert '<p id="announcer" hx-swap-oob="innerHTML">' in text
        assert "Update: Review by a planning officer, Waiting for a member of staff." in text
        assert "HX-Request" in response["Vary"]

    def test_a_poll_that_finds_nothing_new_gets_no_content(self):
        instance = at_review()
        version = fragment_version(self.client.get(instance.tracker_url).content.decode())
        response = self.client.get(f"{instance.tracker_url}?seen={version}", **HTMX)
        assert (response.status_code, response.content) == (204, b"")

    def test_a_poll_after_a_change_gets_the_new_state(self):
        instance = at_review()
        version = fragment_version(self.client.get(instance.tracker_url).content.decode())
        runtime.process_due(now=timezone.now() + timedelta(hours=49))
        response = self.client.get(f"{instance.tracker_url}?seen={version}", **HTMX)
        assert response.status_code == 200
        assert "Passed to another reviewer" in response.content.decode()

    def test_a_poll_that_finds_the_application_ended_stops_polling_for_good(self):
        instance = at_review()
        version = fragment_version(self.client.get(instance.tracker_url).content.decode())
        review(instance)
        response = self.client.get(f"{instance.tracker_url}?seen={version}", **HTMX)
        text = response.content.decode()
        assert response.status_code == 286  # django-htmx's HttpResponseStopPolling
        assert "hx-trigger" not in text and "hx-get" not in text
        assert "Status: Approved" in text
        assert "Update: Approved. Your application has been approved." in text


class TrackerNotFoundTests(TestCase):
    def test_an_unknown_id_gets_a_friendly_404_page(self):
        response = self.client.get(f"/track/{uuid.uuid4()}/")
        assert response.status_code == 404
        assert "We could not find that page" in response.content.decode()
        assert "Find my application" in response.content.decode()

    def test_a_malformed_id_gets_the_same_404(self):
        for bad in ("not-a-uuid", "1", "%3Cscript%3E"):
            response = self.client.get(f"/track/{bad}/")
            assert response.status_code == 404
            assert "We could not find that page" in response.content.decode()

    def test_the_integer_key_is_not_a_tracking_id(self):
        instance = at_review()
        assert self.client.get(f"/track/{instance.pk}/").status_code == 404


class FindApplicationTests(TestCase):
    def test_the_form_is_labelled_and_keyboard_ready(self):
        text = self.client.get("/track/").content.decode()
        assert '<label for="q">Case number or tracking link</label>' in text
        assert 'aria-describedby="q-hint"' in text
        assert "aria-invalid" not in text

    def test_a_case_number_finds_the_application(self):
        instance = at_review()
        for typed in (instance.case_number, f"  {instance.case_number.lower()} "):
            response = self.client.get("/track/", {"q": typed})
            assert response.status_code == 302
            assert response["Location"] == instance.tracker_url

    def test_a_pasted_tracking_link_finds_the_application(self):
        instance = at_review()
        link = f"https://city.example{instance.tracker_url}"
        response = self.client.get("/track/", {"q": link})
        assert (response.status_code, response["Location"]) == (302, instance.tracker_url)

    def test_a_case_number_with_the_wrong_prefix_or_year_finds_nothing(self):
        instance = at_review()
        prefix, year, number = instance.case_number.split("-")
        for typed in (f"XX-{year}-{number}", f"{prefix}-{int(year) - 1}-{number}", "garbage"):
            response = self.client.get("/track/", {"q": typed})
            text = response.content.decode()
            assert response.status_code == 200
            assert "We could not find an application with that reference." in text
            assert 'aria-invalid="true"' in text and 'aria-describedby="q-hint q-error"' in text

    def test_an_unknown_tracking_link_finds_nothing(self):
        response = self.client.get("/track/", {"q": f"/track/{uuid.uuid4()}/"})
        assert "We could not find an application" in response.content.decode()


class SecurityHeaderTests(TestCase):
    def test_every_public_page_sends_the_csp_and_a_same_origin_referrer_policy(self):
        instance = at_review()
        for url in ("/track/", instance.tracker_url, "/board/", f"/track/{uuid.uuid4()}/"):
            response = self.client.get(url)
            csp = response["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "style-src 'self'" in csp
            assert "unsafe-inline" not in csp
            assert response["Referrer-Policy"] == "same-origin"

    def test_public_pages_have_no_inline_script_or_style(self):
        instance = at_review()
        for url in ("/track/", instance.tracker_url, "/board/", f"/track/{uuid.uuid4()}/"):
            text = self.client.get(url).content.decode()
            assert not re.search(r"<script(?![^>]*\ssrc=)", text)
            assert "<style" not in text and " style=" not in text

    def test_tracker_pages_are_not_cached_and_say_the_language(self):
        response = self.client.get(at_review().tracker_url)
        assert "no-store" in response["Cache-Control"]
        assert '<html lang="en">' in response.content.decode()


class RunStateLabelTests(TestCase):
    def test_a_queued_automated_step_is_in_progress(self):
        instance = start(permit_workflow("http"), PRIVATE_PAYLOAD)
        assert StepRun.objects.get(instance=instance).state == RunState.QUEUED
        text = self.client.get(instance.tracker_url).content.decode()
        assert 'badge--current">In progress<' in text
