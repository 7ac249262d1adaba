"""The business calendar: SLA clock arithmetic in Toronto working hours, across DST changes and holidays. Every
instant is asserted in UTC (EDT is UTC-4, EST is UTC-5; in 2026 Toronto goes to EDT on Mar 8, back on Nov 1)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from carehub.business_hours import BusinessCalendar, business_calendar
from carehub.settings import Settings

TORONTO = "America/Toronto"
WEEKDAYS = "mon-fri 08:30-16:30"


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def calendar(spec: str = WEEKDAYS, holidays: tuple[date, ...] = ()) -> BusinessCalendar:
    return BusinessCalendar.parse(spec, TORONTO, frozenset(holidays))


def test_friday_afternoon_target_falls_due_next_business_morning_across_the_fall_dst_change() -> None:
    friday_4pm_edt = utc(2026, 10, 30, 20, 0)
    due = calendar().add_business_minutes(friday_4pm_edt, 60)
    assert due == utc(2026, 11, 2, 14, 0)  # Monday 09:00 EST: 30 minutes on Friday, 30 on Monday
    assert calendar().business_minutes_between(friday_4pm_edt, due) == 60


def test_a_holiday_monday_pushes_the_due_time_to_tuesday() -> None:
    holiday = calendar(holidays=(date(2026, 11, 2),))
    due = holiday.add_business_minutes(utc(2026, 10, 30, 20, 0), 60)
    assert due == utc(2026, 11, 3, 14, 0)  # Tuesday 09:00 EST
    assert not holiday.is_open(utc(2026, 11, 2, 15, 0))
    assert holiday.next_opening(utc(2026, 10, 30, 21, 30)) == utc(2026, 11, 3, 13, 30)


def test_spring_dst_change_keeps_the_local_working_day() -> None:
    friday_4pm_est = utc(2026, 3, 6, 21, 0)
    assert calendar().add_business_minutes(friday_4pm_est, 60) == utc(2026, 3, 9, 13, 0)  # Monday 09:00 EDT
    # A full day's target from Friday 08:30 EST ends Friday 16:30 EST; 8 h more ends Monday 16:30 EDT.
    assert calendar().add_business_minutes(utc(2026, 3, 6, 13, 30), 16 * 60) == utc(2026, 3, 9, 20, 30)


def test_minutes_between_count_only_open_time_and_are_negative_when_overdue() -> None:
    cal = calendar()
    friday_noon, monday_noon = utc(2026, 10, 30, 16, 0), utc(2026, 11, 2, 17, 0)
    assert cal.business_minutes_between(friday_noon, monday_noon) == 4.5 * 60 + 3.5 * 60
    assert cal.business_minutes_between(monday_noon, friday_noon) == -8 * 60
    saturday = utc(2026, 10, 31, 15, 0)
    assert cal.business_minutes_between(saturday, saturday.replace(hour=20)) == 0


def test_an_always_open_calendar_counts_the_real_25_hour_day_when_clocks_go_back() -> None:
    always = calendar("mon-sun 00:00-24:00")
    saturday_noon_edt, sunday_noon_est = utc(2026, 10, 31, 16, 0), utc(2026, 11, 1, 17, 0)
    assert always.business_minutes_between(saturday_noon_edt, sunday_noon_est) == 25 * 60
    assert always.add_business_minutes(saturday_noon_edt, 25 * 60) == sunday_noon_est


def test_next_opening_is_now_while_open_and_the_next_morning_after_hours() -> None:
    cal = calendar()
    monday_10am_est = utc(2026, 11, 2, 15, 0)
    assert cal.next_opening(monday_10am_est) == monday_10am_est
    assert cal.next_opening(utc(2026, 11, 2, 21, 30)) == utc(2026, 11, 3, 13, 30)  # 16:30 EST: closed
    assert cal.add_business_minutes(utc(2026, 11, 2, 21, 30), 0) == utc(2026, 11, 3, 13, 30)


def test_split_days_and_several_parts() -> None:
    cal = calendar("mon-fri 08:30-12:00; mon-fri 13:00-16:30; sat 09:00-12:00")
    friday_11am_edt = utc(2026, 10, 30, 15, 0)
    assert cal.add_business_minutes(friday_11am_edt, 90) == utc(2026, 10, 30, 17, 30)  # over lunch: 13:30
    assert cal.add_business_minutes(utc(2026, 10, 30, 20, 0), 60) == utc(2026, 10, 31, 13, 30)  # Saturday 09:30


def test_a_calendar_that_never_opens_is_an_error_not_a_hang() -> None:
    with pytest.raises(ValueError, match="no open hours"):
        BusinessCalendar((), calendar().zone).add_business_minutes(utc(2026, 11, 2, 15, 0), 1)


@pytest.mark.parametrize("spec", ["mon-fri 8:30-16:30", "mon-fri 16:30-08:30", "weekdays 08:30-16:30"])
def test_malformed_hours_are_refused_with_the_part_named(spec: str) -> None:
    with pytest.raises(ValueError, match="hours part"):
        calendar(spec)


def test_the_calendar_comes_from_settings() -> None:
    settings = Settings(business_hours="mon-fri 09:00-17:00", holidays=[date(2026, 12, 25)])
    cal = business_calendar(settings)
    assert not cal.is_open(utc(2026, 12, 25, 15, 0))
    assert cal.is_open(utc(2026, 12, 24, 15, 0))
    assert cal.next_opening(utc(2026, 12, 24, 22, 30)) == utc(2026, 12, 28, 14, 0)  # Christmas, weekend: Monday
