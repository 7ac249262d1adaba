"""When chat is staffed: business hours in the city's time zone (CAREHUB_CHAT_HOURS, e.g. "mon-fri 08:30-16:30;
sat 09:00-12:00"), closed dates, and the plain-language sentence that tells residents so, in their language."""

from __future__ import annotations

from collections.abc import Mapping

from carehub.business_hours import DAYS, BusinessCalendar


class Schedule(BusinessCalendar):
    """Chat's hours: the shared calendar (parsing, is_open), plus how to say them to a resident."""

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
