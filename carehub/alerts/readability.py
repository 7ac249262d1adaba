"""Reading grade of alert text, computed offline, so staff are warned before sending an alert residents may not follow.

Flesch-Kincaid grade level: 0.39 x words per sentence + 11.8 x syllables per word - 15.59. A word is a run of
letters (digits are not words; "d'eau" and "don't" are two words each); a sentence is a stretch between ".", "!",
"?", "…" or a line break that holds at least one word, so abbreviations such as "St." end a sentence. Syllables are
Pyphen hyphenation points + 1 per word; hyphenation dictionaries never split off one letter and skip some breaks
("city", "area", French "conduite" count 1), so syllables and the grade tend to be somewhat low.

French uses the same formula with French syllable counts. That is an approximation: Flesch-Kincaid was fitted to
English, and Kandel-Moles, the French adaptation of Flesch, gives a reading-ease score, not a grade.
"""

from __future__ import annotations

import re
from typing import Protocol

import pyphen  # type: ignore[import-untyped, unused-ignore]  # pyphen ships no type information

GRADE_WARNING = 8.0

# Pyphen dictionary for each supported primary language subtag.
_PYPHEN_LANGUAGES = {"en": "en_US", "fr": "fr"}
_WORD = re.compile(r"[^\W\d_]+")
_SENTENCE_END = re.compile(r"[.!?…\r\n\u2028\u2029]+")


class _Hyphenator(Protocol):
    def positions(self, word: str) -> list[int]: ...


# Built once per language: loading a dictionary parses its patterns file.
_HYPHENATORS: dict[str, _Hyphenator] = {}


def reading_grade(text: str, language: str) -> float | None:
    """Flesch-Kincaid grade of `text` (1 decimal, at least 0); None for an unsupported language or no words."""
    hyphenator = _hyphenator(language)
    if hyphenator is None:
        return None
    words = _WORD.findall(text)
    if not words:
        return None
    sentences = sum(1 for part in _SENTENCE_END.split(text) if _WORD.search(part))
    syllables = sum(len(hyphenator.positions(word)) + 1 for word in words)
    grade = 0.39 * (len(words) / sentences) + 11.8 * (syllables / len(words)) - 15.59
    return round(max(grade, 0.0), 1)


def grade_warning(grade: float | None) -> bool:
    """True when a grade is above GRADE_WARNING, i.e. harder than plain-language guidance allows."""
    return grade is not None and grade > GRADE_WARNING


def _hyphenator(language: str) -> _Hyphenator | None:
    """The cached Pyphen instance for `language` ("en", "fr-CA", "en_US" ...), or None if unsupported."""
    primary = language.replace("_", "-").split("-")[0].casefold()
    pyphen_language = _PYPHEN_LANGUAGES.get(primary)
    if pyphen_language is None:
        return None
    hyphenator = _HYPHENATORS.get(pyphen_language)
    if hyphenator is None:
        hyphenator = _HYPHENATORS[pyphen_language] = pyphen.Pyphen(lang=pyphen_language)
    return hyphenator
