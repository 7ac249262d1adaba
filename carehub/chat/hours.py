"""When chat is staffed: business hours in the city's time zone (CAREHUB_CHAT_HOURS, e.g. "mon-fri 08:30-16:30;
sat 09:00-12:00"), closed dates, and the plain-language sentence that tells residents so, in their language."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

MINUTES_PER_DAY = 24 * 60
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
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
class Schedule:
    spans: tuple[Span, ...]
    zone: ZoneInfo
    closed_dates: frozenset[date] = frozenset()

    @classmethod
    def parse(cls, spec: str, zone: str, closed_dates: frozenset[date] = frozenset()) -> Schedule:
        spans = []
        for part in spec.split(";"):
            m = _PART.match(part)
            if m is None:
                raise ValueError(f"chat hours part {part.strip()!r} is not like 'mon-fri 08:30-16:30'")
            first, last, oh, om, ch, cm = m.groups()
            opens, closes = int(oh) * 60 + int(om), int(ch) * 60 + int(cm)
            if not 0 <= opens < closes <= MINUTES_PER_DAY or int(om) > 59 or int(cm) > 59:
                raise ValueError(f"chat hours part {part.strip()!r} must open before it closes, within 00:00-24:00")
            spans.append(Span(DAYS.index(first), DAYS.index(last or first), opens, closes))
        return cls(tuple(spans), ZoneInfo(zone), closed_dates)

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(self.zone)
        if local.date() in self.closed_dates:
            return False
        day, now = local.weekday(), local.hour * 60 + local.minute
        return any(s.first_day <= day <= s.last_day and s.opens <= now < s.closes for s in self.spans)

    def describe(self, strings: Mapping[str, str], lang: str) -> str:
        """ "Monday to Friday, 8:30 a.m. to 4:30 p.m." from the catalogue's day names and patterns."""
        parts = []
        for s in self.spans:
            days = (
                strings[f"day.{DAYS[s.first_day]}"]
                if s.first_day == s.last_day
                else strings["hours.day_range"].format(
                    first=strings[f"day.{DAYS[s.first_day]}"], last=strings[f"day.{DAYS[s.last_day]}"]
                )
            )
            parts.append(
                strings["hours.span"].format(days=days, opens=_clock(s.opens, lang), closes=_clock(s.closes, lang))
            )
        return "; ".join(parts)


def _clock(minutes: int, lang: str) -> str:
    hours, minute = divmod(minutes, 60)
    if lang == "en":
        if hours == 24:
            return "midnight"
        hour = hours % 12 or 12
        suffix = "a.m." if hours < 12 else "p.m."
        return f"{hour}:{minute:02d} {suffix}" if minute else f"{hour} {suffix}"
    return f"{hours} h {minute:02d}" if minute else f"{hours} h"
