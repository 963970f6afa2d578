"""/reports/: numbers on a known data set, query counts, CSV downloads, who may see them."""

import csv
import io

from django.test import SimpleTestCase, TestCase

from tests.factories import make_user
from tests.report_data import build_report_data
from workflows_app.models import DecisionRollup, RollupDay
from workflows_app.queries import reports
from workflows_app.runtime import reporting


def table(response, section: str) -> list[list[str]]:
    """The rows of a section's CSV download."""
    query = response.request.get("QUERY_STRING", "")
    url = f"{response.request['PATH_INFO']}?{query}&format=csv&section={section}"
    got = response.client.get(url)
    assert got["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(got.content.decode())))


class QuantileTests(SimpleTestCase):
    def test_the_median_and_90th_percentile_interpolate_inside_their_bucket(self):
        # 1 h (bucket <= 1 h), 3 h (2-4 h), 50 h (2-3 days)
        histogram = {4: 1, 6: 1, 11: 1}
        assert reports.quantile(histogram, 0.5) == 3 * 3600
        assert reports.quantile(histogram, 0.9) == 172800 + 86400 * 0.7  # 64.8 h

    def test_no_data_has_no_percentile(self):
        assert reports.quantile({}, 0.5) is None


class ReportCase(TestCase):
    def setUp(self):
        build_report_data()
        self.supervisor = make_user("sue", "Supervisors", is_staff=True)
        self.client.force_login(self.supervisor)


class OnTimeTests(ReportCase):
    def test_decisions_on_time_by_workflow_against_the_step_time_limit(self):
        page = self.client.get("/reports/")
        assert page.status_code == 200
        assert table(page, "decisions") == [
            ["Workflow", "Total", "With a time limit", "On time", "On-time rate"],
            ["licence", "2", "0", "0", ""],
            ["permit", "3", "3", "2", "0.6667"],
        ]
        assert "66.7%" in page.content.decode()

    def test_cases_on_time_against_the_workflow_deadline(self):
        page = self.client.get("/reports/")
        assert table(page, "cases") == [
            ["Workflow", "Total", "With a time limit", "On time", "On-time rate"],
            ["licence", "2", "0", "0", ""],
            ["permit", "3", "2", "1", "0.5"],
        ]

    def test_by_group_and_by_step(self):
        by_group = self.client.get("/reports/", {"by": "group"})
        assert table(by_group, "decisions")[1:] == [
            ["backup-reviewers", "1", "1", "0", "0.0"],
            ["licence-team", "2", "0", "0", ""],
            ["plan-reviewers", "2", "2", "2", "1.0"],
        ]
        by_step = self.client.get("/reports/", {"by": "step"})
        assert [row[0] for row in table(by_step, "decisions")[1:]] == [
            "licence / check",
            "permit / approve",
        ]

    def test_by_month_adds_up_to_the_totals(self):
        rows = table(self.client.get("/reports/", {"by": "month"}), "decisions")[1:]
        assert sum(int(r[1]) for r in rows) == 5 and sum(int(r[3]) for r in rows) == 2

    def test_the_page_draws_an_svg_chart_and_a_table(self):
        html = self.client.get("/reports/").content.decode()
        chart = html[html.index("<svg viewBox") : html.index("</svg>")]
        assert 'role="img"' in chart and "<rect" in chart and "<title" in chart
        assert "style=" not in chart and "<script" not in html.split("</head>")[1]
        assert "<table>" in html


class OtherReportTests(ReportCase):
    def test_backlog_by_age(self):
        page = self.client.get("/reports/backlog/")
        assert table(page, "backlog") == [
            ["Workflow", *[label for _, label in reports.AGES], "Total"],
            ["licence", "0", "1", "0", "0", "0", "0", "1"],
            ["permit", "1", "0", "1", "0", "0", "1", "3"],
        ]

    def test_workload_per_reviewer(self):
        page = self.client.get("/reports/workload/")
        assert table(page, "workload")[1:] == [
            ["rita", "3", "2", "2", "1.0", "0"],
            ["sam", "2", "1", "0", "0.0", "0"],
        ]

    def test_median_and_90th_percentile_durations(self):
        page = self.client.get("/reports/durations/")
        assert table(page, "durations") == [
            ["Workflow", "Step", "Count", "Median (seconds)", "90th percentile (seconds)"],
            # whole cases 1.5 h (bucket 1-2 h) and 49 h (2-3 days): median = rank 1 of 2, the
            # top of 1-2 h; p90 = rank 1.8, 0.8 of the way through 2-3 days
            ["licence", "", "2", "7200", str(172800 + 69120)],
            # decisions 30 min (15-30 min) and 48 h (1-2 days)
            ["licence", "check", "2", "1800", str(86400 + 69120)],
            # whole cases 2 h, 4 h, 51 h; decisions 1 h, 3 h, 50 h
            ["permit", "", "3", "10800", "233280"],
            ["permit", "approve", "3", "10800", "233280"],
        ]


class QueryCountTests(ReportCase):
    def test_each_page_costs_a_fixed_number_of_queries_once_the_days_are_counted(self):
        self.client.get("/reports/")  # counts the missing days
        pages = {
            # session, user, permissions (2), days counted (2), the report's own queries
            "/reports/": 8,
            "/reports/?by=month": 8,
            "/reports/backlog/": 5,
            "/reports/workload/": 8,
            "/reports/durations/": 7,
        }
        for url, expected in pages.items():
            with self.assertNumQueries(expected):
                assert self.client.get(url).status_code == 200

    def test_days_are_counted_once(self):
        assert reporting.fill_rollups() > 0
        rows = DecisionRollup.objects.count()
        assert reporting.fill_rollups() == 0
        assert DecisionRollup.objects.count() == rows and RollupDay.objects.exists()


class AccessTests(TestCase):
    def test_anonymous_visitors_are_sent_to_sign_in(self):
        response = self.client.get("/reports/")
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]

    def test_staff_who_are_not_supervisors_are_refused(self):
        self.client.force_login(make_user("rob", "plan-reviewers", is_staff=True))
        for url in ("/reports/", "/reports/backlog/", "/reports/workload/", "/reports/durations/"):
            assert self.client.get(url).status_code == 403
        assert self.client.get("/reports/", {"format": "csv"}).status_code == 403

    def test_supervisors_may_read_them(self):
        self.client.force_login(make_user("sue", "Supervisors", is_staff=True))
        assert self.client.get("/reports/durations/").status_code == 200
