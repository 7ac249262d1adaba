"""The city's working calendar: weekly opening hours in its time zone (e.g. "mon-fri 08:30-16:30") minus holidays,
and clock arithmetic inside it (SLA due times, business minutes left). One implementation, shared by chat hours.

Days are walked in local wall-clock time (zoneinfo), so a working day is 08:30-16:30 on both sides of a DST change;
what is counted is the real time elapsed while open. Every datetime in or out is timezone-aware; results are UTC.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Self
from zoneinfo import ZoneInfo

from carehub.settings import Settings

MINUTES_PER_DAY = 24 * 60
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A calendar with no opening at all in this many days (every day a holiday) cannot give a due time.
SEARCH_DAYS = 3 * 366
_PART = re.compile(
    r"^\s*(mon|tue|wed|thu|fri|sat|sun)(?:-(mon|tue|wed|thu|fri|sat|sun))?\s+"
    r"(\d{2}):(\d{2})-(\d{2}):(\d{2})\s*$"
)


@dataclass(frozen=True)
class Span:
    first_day: int  # 0 = Monday
    last_day: int
    opens: int  # minutes after midnight
    closes: int  # up to 24:00 = 1440


@dataclass(frozen=True)
class BusinessCalendar:
    spans: tuple[Span, ...]
    zone: ZoneInfo
    closed_dates: frozenset[date] = frozenset()

    @classmethod
    def parse(cls, spec: str, zone: str, closed_dates: frozenset[date] = frozenset()) -> Self:
        """Parts separated by ';', each 'mon-fri 08:30-16:30' or 'sat 09:00-12:00'; ValueError says what is wrong."""
        spans = []
        for part in spec.split(";"):
            m = _PART.match(part)
            if m is None:
                raise ValueError(f"hours part {part.strip()!r} is not like 'mon-fri 08:30-16:30'")
            first, last, oh, om, ch, cm = m.groups()
            opens, closes = int(oh) * 60 + int(om), int(ch) * 60 + int(cm)
            if not 0 <= opens < closes <= MINUTES_PER_DAY or int(om) > 59 or int(cm) > 59:
                raise ValueError(f"hours part {part.strip()!r} must open before it closes, within 00:00-24:00")
            spans.append(Span(DAYS.index(first), DAYS.index(last or first), opens, closes))
        return cls(tuple(spans), ZoneInfo(zone), closed_dates)

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(self.zone)
        if local.date() in self.closed_dates:
            return False
        day, now = local.weekday(), local.hour * 60 + local.minute
        return any(s.first_day <= day <= s.last_day and s.opens <= now < s.closes for s in self.spans)

    def add_business_minutes(self, start: datetime, minutes: int) -> datetime:
        """The instant `minutes` of open time after `start` (0: start itself if open, else the next opening)."""
        left = timedelta(minutes=max(minutes, 0))
        for opens, closes in self._open_periods(start):
            opens = max(opens, start)
            if closes - opens >= left:
                return opens + left
            left -= closes - opens
        raise AssertionError("unreachable: _open_periods raises when the calendar runs out")

    def business_minutes_between(self, a: datetime, b: datetime) -> int:
        """Whole minutes of open time from a to b; negative when b is before a (how far past a due time)."""
        if b < a:
            return -self.business_minutes_between(b, a)
        total = timedelta()
        for opens, closes in self._open_periods(a, days=(b - a).days + 2, strict=False):
            if opens >= b:
                break
            total += min(closes, b) - max(opens, a)
        return int(total.total_seconds() // 60)

    def next_opening(self, at: datetime) -> datetime:
        """`at` itself while open, else when the calendar next opens."""
        return self.add_business_minutes(at, 0)

    def _open_periods(
        self, start: datetime, *, days: int = SEARCH_DAYS, strict: bool = True
    ) -> Iterator[tuple[datetime, datetime]]:
        """Open periods (UTC) in time order, from the one open at or after `start` (it may begin before start),
        for `days` local days; strict: running out of days is an error (a calendar that never opens)."""
        day = start.astimezone(self.zone).date()
        for _ in range(days):
            for opens, closes in self._day(day):
                if closes > start:
                    yield opens, closes
            day += timedelta(days=1)
        if strict:
            raise ValueError(
                f"the business calendar has no open hours within {SEARCH_DAYS} days of {start.isoformat()}"
            )

    def _day(self, day: date) -> list[tuple[datetime, datetime]]:
        if day in self.closed_dates:
            return []
        weekday = day.weekday()
        minutes = sorted((s.opens, s.closes) for s in self.spans if s.first_day <= weekday <= s.last_day)
        merged: list[tuple[int, int]] = []
        for opens, closes in minutes:
            if merged and opens <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], closes))
            else:
                merged.append((opens, closes))
        return [(self._instant(day, opens), self._instant(day, closes)) for opens, closes in merged]

    def _instant(self, day: date, minute: int) -> datetime:
        """A local wall-clock minute of `day` (1440: the next midnight) as UTC. A time skipped by the spring DST
        change is read with the offset before it (02:30 on the day clocks go forward is 03:30 EDT)."""
        day, minute = (day + timedelta(days=1), 0) if minute == MINUTES_PER_DAY else (day, minute)
        local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=self.zone)
        return local.astimezone(UTC)


def business_calendar(settings: Settings) -> BusinessCalendar:
    """The customer-care calendar (CAREHUB_BUSINESS_HOURS, _BUSINESS_TIMEZONE, _HOLIDAYS) that SLA clocks run in."""
    return _calendar(settings.business_hours, settings.business_timezone, frozenset(settings.holidays))


@lru_cache(maxsize=16)
def _calendar(spec: str, zone: str, holidays: frozenset[date]) -> BusinessCalendar:
    return BusinessCalendar.parse(spec, zone, holidays)
