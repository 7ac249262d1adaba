"""A request's status in words, English and French, for the status page and the STATUS text.

Every sentence is plain and short, and written in the GSM-7 alphabet (no ç, ê, ô...), so a text that quotes it
stays cheap; dates are the city's local time."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from carehub.messaging.dates import MONTHS
from carehub.models import TicketStatus

LANGUAGES = ("en", "fr")

_WORDS: dict[str, dict[str, str]] = {
    "en": {
        TicketStatus.NEW: "We have your request and will look at it soon.",
        TicketStatus.OPEN: "A member of our team is working on it.",
        "team": "We've sent this to {team}.",
        TicketStatus.PENDING: "We're waiting for your answer.",
        TicketStatus.RESOLVED: "We've finished working on this request.",
        TicketStatus.CLOSED: "This request is closed.",
    },
    "fr": {
        TicketStatus.NEW: "Nous avons votre demande et allons l'examiner sous peu.",
        TicketStatus.OPEN: "Un membre de notre équipe s'en occupe.",
        "team": "Nous avons transmis votre demande à : {team}.",
        TicketStatus.PENDING: "Nous attendons votre réponse.",
        TicketStatus.RESOLVED: "Nous avons terminé le travail sur cette demande.",
        TicketStatus.CLOSED: "Cette demande est fermée.",
    },
}


def language(value: object) -> str | None:
    return value if isinstance(value, str) and value in LANGUAGES else None


def team_title(team: str) -> str:
    """'roads-operations' -> 'Roads Operations': team slugs are the only names teams have."""
    return " ".join(w.capitalize() for w in team.replace("_", "-").split("-") if w)


def status_words(status: str, team: str | None, lang: str) -> str:
    """Where the request is, in a sentence: with the team it went to while it is being worked on."""
    words = _WORDS[lang if lang in _WORDS else "en"]
    if team and status in (TicketStatus.NEW, TicketStatus.OPEN):
        return words["team"].format(team=team_title(team))
    return words.get(status, words[TicketStatus.OPEN])


def when(at: datetime, zone: str, lang: str) -> str:
    """'December 7, 2026, 9:05 a.m.' / '7 décembre 2026, 9 h 05', in the city's time zone."""
    local = at.astimezone(ZoneInfo(zone))
    if lang == "fr":
        return f"{local.day} {MONTHS['fr'][local.month - 1]} {local.year}, {local.hour} h {local.minute:02d}"
    twelve, suffix = local.hour % 12 or 12, "a.m." if local.hour < 12 else "p.m."
    return f"{MONTHS['en'][local.month - 1]} {local.day}, {local.year}, {twelve}:{local.minute:02d} {suffix}"
