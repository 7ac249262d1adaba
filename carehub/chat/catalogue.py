"""The chat's words in each language: templates/chat/i18n/<lang>.json, read once. Adding a file adds a language;
a key missing from one falls back to English, so a half-translated catalogue never shows a raw key."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

DEFAULT_LANGUAGE = "en"

# What the hub itself says (errors, hours), in case the English catalogue lacks a key.
_SERVER_DEFAULTS = {
    "error.bad_frame": "Something went wrong with that message. Please try again.",
    "error.too_long": "That message is too long. Please keep it under {max} characters.",
    "error.rate_limited": "You are sending messages very quickly. Please wait a moment and try again.",
    "error.closed": "This chat has ended. Start a new chat to write to us again.",
    "error.bad_address": "That email address or phone number does not look right. Please check it.",
    "error.no_conversation": "Please send a message first.",
    "day.mon": "Monday",
    "day.tue": "Tuesday",
    "day.wed": "Wednesday",
    "day.thu": "Thursday",
    "day.fri": "Friday",
    "day.sat": "Saturday",
    "day.sun": "Sunday",
    "hours.day_range": "{first} to {last}",
    "hours.span": "{days}, {opens} to {closes}",
}


class Catalogue:
    def __init__(self, directory: Path) -> None:
        found = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.json"))}
        english = {**_SERVER_DEFAULTS, **found.get(DEFAULT_LANGUAGE, {})}
        self._strings: dict[str, Mapping[str, str]] = {
            lang: MappingProxyType({**english, **strings}) for lang, strings in found.items()
        }
        self._strings.setdefault(DEFAULT_LANGUAGE, MappingProxyType(english))

    @property
    def languages(self) -> list[str]:
        return sorted(self._strings)

    def language(self, requested: str | None) -> str:
        """The best language we have for a request like "fr", "fr-CA" or "en-US,en;q=0.9"."""
        for candidate in (requested or "").replace(";", ",").split(","):
            base = candidate.strip().lower().split("-")[0]
            if base in self._strings:
                return base
        return DEFAULT_LANGUAGE

    def strings(self, lang: str) -> Mapping[str, str]:
        return self._strings.get(lang, self._strings[DEFAULT_LANGUAGE])
