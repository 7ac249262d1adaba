"""The acknowledgement outside business hours: which one to send (the office is closed: say when staff are back),
the sentence naming the next opening in the resident's language, and renderings cached per opening time.

The choice is made in Python from the business calendar (carehub/business_hours.py) before the ingest runs, so
the PostgreSQL functions only receive a different set of texts. Renderings name the next opening, so they are
kept for the latest opening only, not for the life of the process."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar, cast
from weakref import WeakKeyDictionary

from carehub.business_hours import business_calendar
from carehub.messaging.dates import MONTHS, WEEKDAYS
from carehub.messaging.templates import DEFAULT_LANGUAGE, MessageTemplates
from carehub.settings import Settings
from carehub.status import links as status_links
from channels.base import ChannelKind

T = TypeVar("T")
AFTER_HOURS = "ack_after_hours"


def reopening(settings: Settings, at: datetime) -> datetime | None:
    """When customer care next opens, if it is closed at `at` (UTC); None while open, or for a calendar that
    never opens (nothing true can be promised then, so the usual acknowledgement goes)."""
    try:
        opening = business_calendar(settings).next_opening(at)
    except ValueError:
        return None
    return opening if opening > at else None


def describe_opening(settings: Settings, opening: datetime, language: str) -> str:
    """ "Monday, December 1 at 8:30 a.m." / "le lundi 1er décembre à 8 h 30", in the city's time zone."""
    local = opening.astimezone(business_calendar(settings).zone)
    hour, minute = local.hour, local.minute
    if language == "fr":
        day = "1er" if local.day == 1 else str(local.day)
        clock = f"{hour} h {minute:02d}" if minute else f"{hour} h"
        return f"le {WEEKDAYS['fr'][local.weekday()]} {day} {MONTHS['fr'][local.month - 1]} à {clock}"
    twelve, suffix = hour % 12 or 12, "a.m." if hour < 12 else "p.m."
    clock = f"{twelve}:{minute:02d} {suffix}" if minute else f"{twelve} {suffix}"
    return f"{WEEKDAYS['en'][local.weekday()]}, {MONTHS['en'][local.month - 1]} {local.day} at {clock}"


def reopens_in(settings: Settings, opening: datetime, language: str) -> str:
    """describe_opening() in `language`, or English for a language without one."""
    return describe_opening(settings, opening, language if language in WEEKDAYS else DEFAULT_LANGUAGE)


_CACHE: WeakKeyDictionary[MessageTemplates, dict[tuple[str, ...], tuple[datetime, Any]]] = WeakKeyDictionary()


def for_opening(templates: MessageTemplates, key: tuple[str, ...], opening: datetime, build: Callable[[], T]) -> T:
    """build()'s result, rendered once per process and opening time: a new opening replaces the last one."""
    per_templates = _CACHE.setdefault(templates, {})
    cached = per_templates.get(key)
    if cached is None or cached[0] != opening:
        cached = (opening, build())
        per_templates[key] = cached
    return cast(T, cached[1])


def texts(
    templates: MessageTemplates, settings: Settings, channel: ChannelKind, opening: datetime, reference: str
) -> dict[str, str]:
    """The after-hours acknowledgement (SMS) in every language, with `reference` left as given (a slot)."""

    def build() -> dict[str, str]:
        return {
            language: templates.render(
                channel,
                AFTER_HOURS,
                language,
                city_name=settings.city_name,
                reference=reference,
                reopens=reopens_in(settings, opening, language),
                status_link=status_links.SLOT,
            )
            for language in templates.languages(channel, AFTER_HOURS)
        }

    return for_opening(templates, (channel.value, reference), opening, build)
