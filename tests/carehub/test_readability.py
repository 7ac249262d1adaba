"""Alert text gets a Flesch-Kincaid reading grade offline, and staff are warned above grade 8."""

from __future__ import annotations

import pytest

from carehub.alerts import readability
from carehub.alerts.readability import GRADE_WARNING, grade_warning, reading_grade

PLAIN_EN = "Boil your water. Do not drink it yet. We will text you when it is safe."
BUREAUCRATIC_EN = (
    "Pursuant to the municipality's infrastructure rehabilitation programme, residents are hereby notified that "
    "the temporary discontinuation of potable water distribution services, notwithstanding previously "
    "communicated scheduling considerations, will necessitate the implementation of precautionary boil-water "
    "advisories throughout the affected residential communities."
)
PLAIN_FR = (
    "Avis de la Ville de Pickering : bris de conduite d'eau sur le chemin Kingston. "
    "Faites bouillir l'eau avant de la boire."
)
BUREAUCRATIC_FR = (
    "Conformément aux dispositions réglementaires applicables, l'administration municipale informe la population "
    "que l'interruption temporaire de l'approvisionnement en eau potable nécessitera l'application de mesures "
    "préventives exceptionnelles."
)


def test_hand_computed_sentence_matches_the_formula() -> None:
    # Res-i-dents(3) should(1) boil(1) wa-ter(2) be-fore(2) drink-ing(2) it(1): 7 words, 12 syllables, 1 sentence.
    # 0.39 x 7 + 11.8 x 12 / 7 - 15.59 = 2.73 + 20.2286 - 15.59 = 7.3686
    assert reading_grade("Residents should boil water before drinking it.", "en") == 7.4


def test_sentences_split_on_line_breaks_and_end_punctuation() -> None:
    # Same 7 words and 12 syllables in 3 sentences: 0.39 x 7/3 + 20.2286 - 15.59 = 5.5486
    assert reading_grade("Residents should boil\nwater before drinking! It?", "en") == 5.5


def test_numbers_are_not_words() -> None:
    with_numbers = "Residents should boil water before drinking it for 24 hours."
    # "for" and "hours" add a word and a syllable each; "24" adds nothing.
    # 0.39 x 9 + 11.8 x 14 / 9 - 15.59 = 3.51 + 18.3556 - 15.59 = 6.2756
    assert reading_grade(with_numbers, "en") == 6.3


def test_plain_short_sentences_score_low() -> None:
    grade = reading_grade(PLAIN_EN, "en")
    assert grade is not None
    assert grade < 6
    assert not grade_warning(grade)


def test_grade_is_never_below_zero() -> None:
    # 8 words, 9 syllables, 2 sentences: 0.39 x 4 + 11.8 x 9 / 8 - 15.59 = -0.755
    assert reading_grade("Boil your water. Do not drink it yet.", "en") == 0.0


def test_long_bureaucratic_sentence_scores_above_12_and_warns() -> None:
    grade = reading_grade(BUREAUCRATIC_EN, "en")
    assert grade is not None
    assert grade > 12
    assert grade_warning(grade)


def test_french_text_gets_a_grade() -> None:
    plain = reading_grade(PLAIN_FR, "fr")
    hard = reading_grade(BUREAUCRATIC_FR, "fr")
    assert plain is not None
    assert hard is not None
    assert plain < 6 < 12 < hard
    assert grade_warning(hard)


@pytest.mark.parametrize("language", ["en", "EN", "en-CA", "en_US"])
def test_english_language_tags_use_english_hyphenation(language: str) -> None:
    assert reading_grade("Residents should boil water before drinking it.", language) == 7.4


@pytest.mark.parametrize("language", ["fr", "fr-CA", "FR_ca"])
def test_french_language_tags_use_french_hyphenation(language: str) -> None:
    assert reading_grade(PLAIN_FR, language) == reading_grade(PLAIN_FR, "fr")


@pytest.mark.parametrize("language", ["es", "de", "", "english"])
def test_unsupported_language_has_no_grade(language: str) -> None:
    assert reading_grade(PLAIN_EN, language) is None


@pytest.mark.parametrize("text", ["", "   \n", "123 456.", "!!! ..."])
def test_text_without_words_has_no_grade(text: str) -> None:
    assert reading_grade(text, "en") is None


def test_hyphenators_are_built_once_per_language() -> None:
    reading_grade(PLAIN_FR, "fr")
    reading_grade(PLAIN_EN, "en-CA")
    english, french = readability._HYPHENATORS["en_US"], readability._HYPHENATORS["fr"]
    reading_grade(PLAIN_FR, "fr-CA")
    reading_grade(PLAIN_EN, "en")
    assert readability._HYPHENATORS["en_US"] is english
    assert readability._HYPHENATORS["fr"] is french


@pytest.mark.parametrize(
    ("grade", "warns"),
    [(None, False), (0.0, False), (7.9, False), (GRADE_WARNING, False), (8.1, True), (14.0, True)],
)
def test_warning_is_for_grades_above_eight(grade: float | None, warns: bool) -> None:
    assert grade_warning(grade) is warns
