from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.test import SimpleTestCase

from workflows_app.engine.working_time import (
    DEFAULT_CALENDAR,
    MAX_IDLE_DAYS,
    Calendar,
    add_working_seconds,
    is_working_time,
    working_days_to_seconds,
    working_seconds_between,
)

BRUSSELS = ZoneInfo("Europe/Brussels")
NEW_YORK = ZoneInfo("America/New_York")
HOUR = 3600
DAY = 8 * HOUR


def brussels(*args: int) -> datetime:
    return datetime(*args, tzinfo=BRUSSELS)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


class CalendarTests(SimpleTestCase):
    def test_default_calendar_is_brussels_nine_to_five_on_weekdays(self):
        assert Calendar() == DEFAULT_CALENDAR
        assert DEFAULT_CALENDAR.tz == "Europe/Brussels"
        assert DEFAULT_CALENDAR.hours_per_day == 8.0

    def test_hours_per_day_follows_the_calendar_hours(self):
        assert Calendar(work_start=time(8, 30), work_end=time(17, 0)).hours_per_day == 8.5

    def test_a_working_day_is_the_calendar_day_length(self):
        assert working_days_to_seconds(2, DEFAULT_CALENDAR) == 16 * HOUR
        assert working_days_to_seconds(0.5, DEFAULT_CALENDAR) == 4 * HOUR
        assert working_days_to_seconds(1, Calendar(work_end=time(16, 0))) == 7 * HOUR

    def test_weekdays_and_holidays_given_as_lists_become_frozensets(self):
        calendar = Calendar(weekdays=[0, 1], holidays=[date(2026, 1, 1)])
        assert calendar.weekdays == frozenset({0, 1})
        assert calendar.holidays == frozenset({date(2026, 1, 1)})
        assert hash(calendar) == hash(
            Calendar(weekdays=frozenset({0, 1}), holidays={date(2026, 1, 1)})
        )

    def test_invalid_calendars_are_refused(self):
        for kwargs in [
            {"work_start": time(17, 0), "work_end": time(9, 0)},
            {"work_start": time(9, 0), "work_end": time(9, 0)},
            {"weekdays": frozenset({7})},
            {"tz": "Europe/Atlantis"},
        ]:
            with self.assertRaises(ValueError, msg=kwargs):
                Calendar(**kwargs)


class IsWorkingTimeTests(SimpleTestCase):
    def test_opening_counts_and_closing_does_not(self):
        assert is_working_time(brussels(2026, 6, 8, 9, 0))
        assert is_working_time(brussels(2026, 6, 8, 16, 59, 59))
        assert not is_working_time(brussels(2026, 6, 8, 17, 0))
        assert not is_working_time(brussels(2026, 6, 8, 8, 59, 59))

    def test_weekends_and_holidays_are_not_working_time(self):
        calendar = Calendar(holidays=frozenset({date(2026, 7, 21)}))
        assert not is_working_time(brussels(2026, 6, 6, 12), calendar)
        assert not is_working_time(brussels(2026, 7, 21, 12), calendar)

    def test_the_moment_is_read_in_the_calendar_time_zone(self):
        # 08:30 UTC is 10:30 in Brussels (summer) but 04:30 in New York.
        moment = utc(2026, 6, 8, 8, 30)
        assert is_working_time(moment)
        assert not is_working_time(moment, Calendar(tz="America/New_York"))


class AddWorkingSecondsTests(SimpleTestCase):
    def test_within_a_day(self):
        assert add_working_seconds(brussels(2026, 6, 8, 10), 3 * HOUR) == brussels(2026, 6, 8, 13)

    def test_result_is_in_utc(self):
        result = add_working_seconds(brussels(2026, 6, 8, 10), 3 * HOUR)
        assert result.tzinfo is UTC
        assert result == utc(2026, 6, 8, 11)

    def test_across_the_evening_continues_next_morning(self):
        assert add_working_seconds(brussels(2026, 6, 8, 16), 2 * HOUR) == utc(2026, 6, 9, 8)

    def test_starting_before_opening_counts_from_opening(self):
        assert add_working_seconds(brussels(2026, 6, 8, 6, 45), HOUR) == utc(2026, 6, 8, 8)

    def test_starting_after_closing_counts_from_next_opening(self):
        assert add_working_seconds(brussels(2026, 6, 8, 19), HOUR) == utc(2026, 6, 9, 8)

    def test_starting_on_a_weekend_counts_from_monday_opening(self):
        assert add_working_seconds(brussels(2026, 6, 6, 11), HOUR) == utc(2026, 6, 8, 8)

    def test_friday_afternoon_plus_two_working_days_lands_tuesday(self):
        friday = brussels(2026, 6, 5, 15)
        result = add_working_seconds(friday, working_days_to_seconds(2, DEFAULT_CALENDAR))
        assert result == brussels(2026, 6, 9, 15) == utc(2026, 6, 9, 13)

    def test_a_deadline_at_the_end_of_a_working_day_stays_at_closing_time(self):
        assert add_working_seconds(brussels(2026, 6, 8, 9), DAY) == brussels(2026, 6, 8, 17)
        assert add_working_seconds(brussels(2026, 6, 8, 13), 4 * HOUR) == utc(2026, 6, 8, 15)
        assert add_working_seconds(brussels(2026, 6, 5, 9), DAY) == brussels(2026, 6, 5, 17)

    def test_one_second_past_the_end_of_a_day_is_next_morning(self):
        result = add_working_seconds(brussels(2026, 6, 5, 9), DAY + 1)
        assert result == brussels(2026, 6, 8, 9, 0, 1)

    def test_zero_seconds_inside_working_hours_is_the_start_itself(self):
        start = brussels(2026, 6, 8, 10, 15, 30, 250)
        assert add_working_seconds(start, 0) == start

    def test_zero_seconds_outside_working_hours_is_the_next_opening(self):
        assert add_working_seconds(brussels(2026, 6, 5, 17), 0) == brussels(2026, 6, 8, 9)
        assert add_working_seconds(brussels(2026, 6, 6, 12), 0) == brussels(2026, 6, 8, 9)

    def test_start_in_another_time_zone_is_the_same_instant(self):
        start = datetime(2026, 6, 8, 4, tzinfo=NEW_YORK)  # 10:00 in Brussels
        assert add_working_seconds(start, HOUR) == brussels(2026, 6, 8, 11)

    def test_two_hundred_working_days_take_forty_weeks(self):
        start = brussels(2026, 1, 5, 9)  # a Monday, CET; the deadline is in CEST
        result = add_working_seconds(start, working_days_to_seconds(200, DEFAULT_CALENDAR))
        assert result == brussels(2026, 10, 9, 17) == utc(2026, 10, 9, 15)


class HolidayTests(SimpleTestCase):
    def test_a_public_holiday_is_skipped(self):
        calendar = Calendar(
            holidays=frozenset({date(2026, 7, 21)})
        )  # Belgian National Day, Tuesday
        result = add_working_seconds(brussels(2026, 7, 20, 16), 2 * HOUR, calendar)
        assert result == brussels(2026, 7, 22, 10) == utc(2026, 7, 22, 8)

    def test_a_friday_holiday_joins_the_weekend(self):
        calendar = Calendar(holidays=frozenset({date(2026, 5, 1)}))  # Labour Day, Friday
        result = add_working_seconds(brussels(2026, 4, 30, 16), 2 * HOUR, calendar)
        assert result == utc(2026, 5, 4, 8)

    def test_a_monday_holiday_joins_the_weekend(self):
        calendar = Calendar(holidays=frozenset({date(2026, 4, 6)}))  # Easter Monday
        result = add_working_seconds(brussels(2026, 4, 3, 16), 2 * HOUR, calendar)
        assert result == utc(2026, 4, 7, 8)

    def test_holidays_on_both_sides_of_a_weekend_are_all_skipped(self):
        holidays = {date(2026, 12, 24), date(2026, 12, 25), date(2026, 12, 26), date(2026, 12, 28)}
        calendar = Calendar(holidays=frozenset(holidays))
        result = add_working_seconds(brussels(2026, 12, 23, 16), 2 * HOUR, calendar)
        assert result == brussels(2026, 12, 29, 10) == utc(2026, 12, 29, 9)

    def test_starting_on_a_holiday_counts_from_the_next_working_day(self):
        calendar = Calendar(holidays=frozenset({date(2026, 7, 21)}))
        assert add_working_seconds(brussels(2026, 7, 21, 10), HOUR, calendar) == utc(2026, 7, 22, 8)

    def test_a_year_of_holidays_is_crossed(self):
        first = date(2027, 1, 1)
        year = frozenset(first + timedelta(days=n) for n in range(365))
        result = add_working_seconds(brussels(2026, 12, 31, 16), 2 * HOUR, Calendar(holidays=year))
        assert result == brussels(2028, 1, 3, 10)


class DaylightSavingTests(SimpleTestCase):
    def test_spring_forward_weekend_keeps_wall_clock_hours(self):
        # Sunday 2026-03-29: Brussels moves from UTC+1 to UTC+2.
        assert add_working_seconds(brussels(2026, 3, 27, 16), 2 * HOUR) == utc(2026, 3, 30, 8)

    def test_fall_back_weekend_keeps_wall_clock_hours(self):
        # Sunday 2026-10-25: Brussels moves from UTC+2 to UTC+1.
        assert add_working_seconds(brussels(2026, 10, 23, 16), 2 * HOUR) == utc(2026, 10, 26, 9)

    def test_two_working_days_across_spring_forward_end_at_five_pm_local(self):
        start = brussels(2026, 3, 27, 9)
        assert start == utc(2026, 3, 27, 8)
        assert add_working_seconds(start, 2 * DAY) == utc(2026, 3, 30, 15)
        assert working_seconds_between(start, utc(2026, 3, 30, 15)) == 2 * DAY

    def test_two_working_days_across_fall_back_end_at_five_pm_local(self):
        start = brussels(2026, 10, 23, 9)
        assert start == utc(2026, 10, 23, 7)
        assert add_working_seconds(start, 2 * DAY) == utc(2026, 10, 26, 16)
        assert working_seconds_between(start, utc(2026, 10, 26, 16)) == 2 * DAY

    def test_a_window_spanning_the_change_counts_real_elapsed_seconds(self):
        # Open on Sundays 01:00-05:00: on 2026-03-29 the clock skips 02:00-03:00.
        calendar = Calendar(work_start=time(1), work_end=time(5), weekdays=frozenset({6}))
        day_start, day_end = brussels(2026, 3, 29, 0), brussels(2026, 3, 30, 0)
        assert working_seconds_between(day_start, day_end, calendar) == 3 * HOUR
        assert add_working_seconds(day_start, 3 * HOUR, calendar) == utc(2026, 3, 29, 3)


class UnitedStatesCalendarTests(SimpleTestCase):
    calendar = Calendar(
        tz="America/New_York",
        work_start=time(8, 30),
        work_end=time(17, 30),
        holidays=frozenset({date(2026, 11, 26)}),  # Thanksgiving
    )

    def test_a_working_day_is_nine_hours(self):
        assert self.calendar.hours_per_day == 9.0
        assert working_days_to_seconds(1, self.calendar) == 9 * HOUR

    def test_one_working_day_over_thanksgiving(self):
        start = datetime(2026, 11, 25, 16, 30, tzinfo=NEW_YORK)
        result = add_working_seconds(
            start, working_days_to_seconds(1, self.calendar), self.calendar
        )
        assert result == utc(2026, 11, 27, 21, 30)

    def test_us_spring_forward_weekend(self):
        # Sunday 2026-03-08: New York moves from UTC-5 to UTC-4.
        start = datetime(2026, 3, 6, 17, tzinfo=NEW_YORK)
        assert add_working_seconds(start, HOUR, self.calendar) == utc(2026, 3, 9, 13)


class WorkingSecondsBetweenTests(SimpleTestCase):
    def test_within_a_day(self):
        assert (
            working_seconds_between(brussels(2026, 6, 8, 10), brussels(2026, 6, 8, 12, 30)) == 9000
        )

    def test_the_end_is_excluded_and_nights_and_weekends_count_nothing(self):
        assert (
            working_seconds_between(brussels(2026, 6, 5, 16), brussels(2026, 6, 8, 10)) == 2 * HOUR
        )
        assert working_seconds_between(brussels(2026, 6, 5, 17), brussels(2026, 6, 8, 9)) == 0

    def test_an_end_before_the_start_gives_zero(self):
        assert working_seconds_between(brussels(2026, 6, 8, 12), brussels(2026, 6, 8, 10)) == 0

    def test_a_calendar_without_working_days_counts_zero(self):
        calendar = Calendar(weekdays=frozenset())
        assert working_seconds_between(brussels(2026, 1, 1), brussels(2027, 1, 1), calendar) == 0

    def test_a_whole_year_counts_each_working_day(self):
        # 2026 has 261 weekdays.
        total = working_seconds_between(brussels(2026, 1, 1), brussels(2027, 1, 1))
        assert total == 261 * DAY

    def test_is_the_inverse_of_add_working_seconds(self):
        calendars = [
            DEFAULT_CALENDAR,
            Calendar(holidays=frozenset({date(2026, 3, 30), date(2026, 10, 26)})),
            UnitedStatesCalendarTests.calendar,
        ]
        starts = [
            brussels(2026, 3, 27, 11, 17, 3),
            brussels(2026, 3, 28, 3),
            brussels(2026, 10, 23, 16, 59, 59),
            brussels(2026, 10, 24, 23, 30),
            brussels(2026, 12, 31, 17),
            utc(2026, 3, 6, 20, 45),
        ]
        amounts = [0, 1, 59, HOUR, DAY - 1, DAY, DAY + 1, 3 * DAY + 1234, 200 * DAY]
        for calendar in calendars:
            for start in starts:
                for seconds in amounts:
                    deadline = add_working_seconds(start, seconds, calendar)
                    sample = (calendar.tz, calendar.holidays, start, seconds)
                    assert working_seconds_between(start, deadline, calendar) == seconds, sample

    def test_adding_the_time_between_reaches_an_end_inside_working_hours(self):
        start = brussels(2026, 3, 26, 14)
        for end in [
            brussels(2026, 3, 30, 11),
            brussels(2026, 4, 2, 16, 59),
            brussels(2026, 11, 3, 9, 30),
        ]:
            assert add_working_seconds(start, working_seconds_between(start, end)) == end

    def test_adding_the_time_until_an_opening_stops_at_the_previous_closing(self):
        start = brussels(2026, 3, 26, 14)
        seconds = working_seconds_between(start, brussels(2026, 11, 3, 9))
        assert add_working_seconds(start, seconds) == brussels(2026, 11, 2, 17)


class ErrorTests(SimpleTestCase):
    def test_naive_datetimes_are_refused(self):
        naive = datetime(2026, 6, 8, 10)
        with self.assertRaises(ValueError):
            add_working_seconds(naive, HOUR)
        with self.assertRaises(ValueError):
            working_seconds_between(naive, brussels(2026, 6, 8, 12))
        with self.assertRaises(ValueError):
            working_seconds_between(brussels(2026, 6, 8, 8), naive)
        with self.assertRaises(ValueError):
            is_working_time(naive)

    def test_negative_amounts_are_refused(self):
        with self.assertRaises(ValueError):
            add_working_seconds(brussels(2026, 6, 8, 10), -1)
        with self.assertRaises(ValueError):
            working_days_to_seconds(-0.5, DEFAULT_CALENDAR)

    def test_a_calendar_without_working_weekdays_is_refused(self):
        with self.assertRaises(ValueError):
            add_working_seconds(brussels(2026, 6, 8, 10), HOUR, Calendar(weekdays=frozenset()))

    def test_a_calendar_without_working_days_for_ten_years_is_refused(self):
        first = date(2026, 6, 8)
        holidays = frozenset(first + timedelta(days=n) for n in range(MAX_IDLE_DAYS + 10))
        with self.assertRaises(ValueError):
            add_working_seconds(brussels(2026, 6, 8, 10), HOUR, Calendar(holidays=holidays))
