"""Dates in words for residents, in English and French: the month and weekday names every page and message uses."""

from __future__ import annotations

MONTHS = {
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    "fr": (
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ),
}
WEEKDAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
}


def long_date(year: int, month: int, day: int, language: str) -> str:
    """'December 7, 2026' / '7 décembre 2026'."""
    if language == "fr":
        return f"{day} {MONTHS['fr'][month - 1]} {year}"
    return f"{MONTHS['en'][month - 1]} {day}, {year}"
