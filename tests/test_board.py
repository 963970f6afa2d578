"""The public board /board/ and the aggregate queries behind it (workflows_app/stats.py)."""

import re
from datetime import timedelta
from unittest.mock import patch

from django.test import TestCase
from django.utils import timezone

from tests.browser.scenarios import (
    PRIVATE_PAYLOAD,
    at_review,
    finished_runs,
    permit_workflow,
    review_only_workflow,
    waiting_runs,
)
from tests.factories import make_definition
from workflows_app.models import Event, StepRun
from workflows_app.queries import stats

HTMX = {"HTTP_HX_REQUEST": "true"}


def board_rows(html: str) -> dict[str, list[str]]:
    """Step title -> the four figures of its row, as shown."""
    rows = re.findall(r'<th scope="row">([^<]+)</th>(.*?)</tr>', html, re.S)
    return {
        title: [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", cells, re.S)
        ]
        for title, cells in rows
    }


class BoardPageTests(TestCase):
    def setUp(self):
        stats.clear()

    def test_each_step_shows_how_many_wait_the_typical_and_the_longest_wait(self):
        definition = permit_workflow()
        now = timezone.now()
        waiting_runs(definition, "approve", [now - timedelta(hours=h) for h in (1, 3, 5)])
        text = self.client.get("/board/").content.decode()
        assert '<h2 id="wf-building-permit">Building permit</h2>' in text
        assert "3 applications waiting" in text
        rows = board_rows(text)
        assert rows["Review by a planning officer"] == ["3", "3\xa0hours", "5\xa0hours", "0"]
        assert rows["Check of your documents"] == ["0", "–none", "–none", "0"]

    def test_finished_steps_do_not_count_as_waiting(self):
        definition = permit_workflow()
        finished_runs(definition, "approve", [timedelta(hours=2)] * 3)
        rows = board_rows(self.client.get("/board/").content.decode())
        assert rows["Review by a planning officer"][0] == "0"

    def test_escalations_are_counted_for_today_only(self):
        instance = at_review()
        for _ in range(2):
            Event.objects.create(instance=instance, type=Event.Type.ESCALATED, step="approve")
        yesterday = stats.start_of_day(timezone.now()) - timedelta(minutes=1)
        with patch("django.utils.timezone.now", return_value=yesterday):  # events never change
            Event.objects.create(instance=instance, type=Event.Type.ESCALATED, step="approve")
        rows = board_rows(self.client.get("/board/").content.decode())
        assert rows["Review by a planning officer"][3] == "2"

    def test_each_workflow_has_its_own_table(self):
        waiting_runs(permit_workflow(), "approve", [timezone.now()])
        waiting_runs(review_only_workflow(), "approve", [timezone.now()] * 2)
        text = self.client.get("/board/").content.decode()
        assert "1 application waiting" in text and "2 applications waiting" in text
        assert text.count("<table") == 2

    def test_a_step_only_an_older_version_has_still_shows_its_waiting_applications(self):
        definition = permit_workflow()
        waiting_runs(definition, "approve", [timezone.now()])
        document = {**definition.source, "steps": [definition.source["steps"][0]]}
        make_definition(document)  # version 2 drops the review step
        rows = board_rows(self.client.get("/board/").content.decode())
        assert rows["Approve"][0] == "1"

    def test_the_board_shows_no_names_payload_or_groups(self):
        at_review()
        text = self.client.get("/board/").content.decode()
        for secret in [*PRIVATE_PAYLOAD.values(), "plan-reviewers", "reviewer"]:
            assert secret not in text

    def test_an_empty_board_says_nothing_is_published(self):
        assert "No services are published yet." in self.client.get("/board/").content.decode()

    def test_the_board_polls_and_an_htmx_request_gets_only_the_tables(self):
        waiting_runs(permit_workflow(), "approve", [timezone.now()])
        page = self.client.get("/board/")
        assert 'hx-trigger="every 10s"' in page.content.decode()
        assert (
            '<noscript><meta http-equiv="refresh" content="60"></noscript>' in page.content.decode()
        )
        fragment = self.client.get("/board/", **HTMX)
        text = fragment.content.decode()
        assert text.lstrip().startswith('<div id="board-tables"')
        assert 'hx-trigger="every 10s"' in text
        assert "<html" not in text and "<h1>" not in text
        assert "HX-Request" in fragment["Vary"]


class BoardQueryTests(TestCase):
    def setUp(self):
        stats.clear()

    def test_the_board_is_read_in_four_queries(self):
        waiting_runs(permit_workflow(), "approve", [timezone.now()])
        with self.assertNumQueries(5):  # latest versions (2), open waits, escalations, flags
            self.client.get("/board/")

    def test_the_query_count_does_not_grow_with_thousands_of_instances(self):
        definition = permit_workflow()
        now = timezone.now()
        waiting_runs(definition, "approve", [now - timedelta(minutes=m) for m in range(2000)])
        finished_runs(definition, "validate", [timedelta(seconds=1)] * 2000)
        with self.assertNumQueries(5):
            response = self.client.get("/board/")
        rows = board_rows(response.content.decode())
        assert rows["Review by a planning officer"][0] == "2000"
        assert rows["Review by a planning officer"][2] == "1\xa0day, 9\xa0hours"  # 1999 minutes

    def test_viewers_within_a_few_seconds_share_one_computation(self):
        waiting_runs(permit_workflow(), "approve", [timezone.now()])
        self.client.get("/board/")
        with self.assertNumQueries(0):
            response = self.client.get("/board/", **HTMX)
        assert board_rows(response.content.decode())["Review by a planning officer"][0] == "1"

    def test_the_figures_are_computed_again_once_they_are_a_few_seconds_old(self):
        definition = permit_workflow()
        waiting_runs(definition, "approve", [timezone.now()])
        with patch("workflows_app.queries.stats.time.time", return_value=1000.0):
            self.client.get("/board/")
        waiting_runs(definition, "approve", [timezone.now()])
        later = 1000.0 + stats.BOARD_TTL_SECONDS
        with patch("workflows_app.queries.stats.time.time", return_value=later):
            response = self.client.get("/board/")
        assert board_rows(response.content.decode())["Review by a planning officer"][0] == "2"


class OpenWaitsTests(TestCase):
    def test_the_median_of_an_odd_count_is_the_middle_wait(self):
        definition = permit_workflow()
        now = timezone.now()
        waiting_runs(definition, "approve", [now - timedelta(hours=h) for h in (9, 1, 4)])
        wait = stats.open_waits()[("building-permit", "approve")]
        assert (wait.count, wait.median_since, wait.oldest_since) == (
            3,
            now - timedelta(hours=4),
            now - timedelta(hours=9),
        )

    def test_the_median_of_an_even_count_is_halfway_between_the_middle_two(self):
        definition = permit_workflow()
        now = timezone.now()
        waiting_runs(definition, "approve", [now - timedelta(hours=h) for h in (1, 2, 4, 10)])
        wait = stats.open_waits()[("building-permit", "approve")]
        assert (wait.count, wait.median_since) == (4, now - timedelta(hours=3))

    def test_steps_and_workflows_are_counted_apart(self):
        now = timezone.now()
        waiting_runs(permit_workflow(), "approve", [now] * 2)
        waiting_runs(permit_workflow(), "validate", [now] * 3)
        waiting_runs(review_only_workflow(), "approve", [now])
        counts = {key: wait.count for key, wait in stats.open_waits().items()}
        assert counts == {
            ("building-permit", "approve"): 2,
            ("building-permit", "validate"): 3,
            ("parking-permit", "approve"): 1,
        }


class TypicalDurationTests(TestCase):
    def setUp(self):
        stats.clear()

    def test_is_the_median_of_finished_runs_of_that_step_of_that_workflow(self):
        finished_runs(permit_workflow(), "approve", [timedelta(hours=h) for h in (1, 2, 6, 8)])
        finished_runs(review_only_workflow(), "approve", [timedelta(days=30)] * 5)
        finished_runs(permit_workflow(), "approve", [timedelta(hours=3)])
        assert stats.typical_duration("building-permit", "approve") == timedelta(hours=3)

    def test_is_none_with_too_few_finished_runs(self):
        finished_runs(permit_workflow(), "approve", [timedelta(hours=1)] * 4)
        assert stats.typical_duration("building-permit", "approve") is None

    def test_is_cached_so_polls_do_not_sort_the_history_again(self):
        finished_runs(permit_workflow(), "approve", [timedelta(hours=1)] * 5)
        stats.typical_duration("building-permit", "approve")
        with self.assertNumQueries(0):
            assert stats.typical_duration("building-permit", "approve") == timedelta(hours=1)


class SupervisorFlagTests(TestCase):
    def test_a_task_whose_ladder_ran_out_is_flagged_on_the_board(self):
        definition = permit_workflow()
        waiting_runs(definition, "approve", [timezone.now(), timezone.now()])
        StepRun.objects.filter(step_id="approve").update(escalation_exhausted=True)
        stats.clear()
        page = self.client.get("/board/").content.decode()
        assert "(2 with the supervisors)" in page


class CostlyBoardTests(TestCase):
    def test_a_board_that_takes_seconds_to_compute_stays_fresh_ten_times_longer(self):
        from django.core.cache import cache

        definition = permit_workflow()
        waiting_runs(definition, "approve", [timezone.now()])
        stats.clear()
        snapshot = stats._compute_board(timezone.now())
        cache.set(stats.BOARD_KEY, (1000.0, snapshot, 3.0), timeout=None)  # took 3 seconds
        waiting_runs(definition, "approve", [timezone.now()])
        with patch("workflows_app.queries.stats.time.time", return_value=1029.0):
            assert stats.board(now=timezone.now())[0].waiting == 1  # still the snapshot
        with patch("workflows_app.queries.stats.time.time", return_value=1031.0):
            assert stats.board(now=timezone.now())[0].waiting == 2  # computed again


class ExamplesOnTheBoardTests(TestCase):
    def test_each_example_lists_a_step_once(self):
        from pathlib import Path

        from workflows_app.authoring import publishing

        stats.clear()
        folder = Path(__file__).resolve().parent.parent / "workflows"
        publishing.load_files(sorted(folder.glob("*.*")))
        for workflow in stats.board(now=timezone.now()):
            titles = [step.title for step in workflow.steps]
            assert len(titles) == len(set(titles)), f"{workflow.key} lists a step twice: {titles}"
        page = self.client.get("/board/").content.decode()
        assert page.count("We send you the decision") == 1
