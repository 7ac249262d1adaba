"""An inbound SMS is a keyword command only when the whole message is the keyword, in any case or width."""

from __future__ import annotations

import pytest

from channels.sms.keywords import Command, Keyword, parse_keyword

SINGLE_WORDS: list[tuple[str, Command]] = [
    ("STOP", Command(Keyword.STOP, None, "en")),
    ("STOPALL", Command(Keyword.STOP, None, "en")),
    ("UNSUBSCRIBE", Command(Keyword.STOP, None, "en")),
    ("END", Command(Keyword.STOP, None, "en")),
    ("QUIT", Command(Keyword.STOP, None, "en")),
    ("CANCEL", Command(Keyword.STOP, None, "en")),
    ("REVOKE", Command(Keyword.STOP, None, "en")),
    ("OPTOUT", Command(Keyword.STOP, None, "en")),
    ("ARRET", Command(Keyword.STOP, None, "fr")),
    ("ARRÊT", Command(Keyword.STOP, None, "fr")),
    ("START", Command(Keyword.START, None, "en")),
    ("UNSTOP", Command(Keyword.START, None, "en")),
    ("YES", Command(Keyword.CONFIRM, None, "en")),
    ("OUI", Command(Keyword.CONFIRM, None, "fr")),
    ("HELP", Command(Keyword.HELP, None, "en")),
    ("INFO", Command(Keyword.HELP, None, "en")),
    ("AIDE", Command(Keyword.HELP, None, "fr")),
    ("JOIN", Command(Keyword.JOIN, None, "en")),
    ("ABONNER", Command(Keyword.JOIN, None, "fr")),
    ("INSCRIRE", Command(Keyword.JOIN, None, "fr")),
]


def _variants(word: str) -> list[str]:
    mixed = "".join(ch.lower() if i % 2 else ch for i, ch in enumerate(word))
    return [word, word.lower(), word.capitalize(), mixed, f"  {word.lower()}  ", f"\n{word}\n", f"\t{mixed} \r\n"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [(body, command) for word, command in SINGLE_WORDS for body in _variants(word)],
)
def test_keyword_alone_in_any_case_with_surrounding_whitespace_is_recognised(body: str, expected: Command) -> None:
    assert parse_keyword(body) == expected


def test_full_width_letters_match() -> None:
    full_width_stop = "\uff33\uff34\uff2f\uff30"
    assert parse_keyword(full_width_stop) == Command(Keyword.STOP, None, "en")


def test_non_breaking_and_ideographic_spaces_are_whitespace() -> None:
    assert parse_keyword("\u00a0Stop\u3000") == Command(Keyword.STOP, None, "en")


def test_decomposed_circumflex_matches_arret() -> None:
    assert parse_keyword("arre\u0302t") == Command(Keyword.STOP, None, "fr")


def test_keyword_is_a_str_enum() -> None:
    assert Keyword.STOP == "STOP"


@pytest.mark.parametrize("body", ["STOP!", "stop.", "Arrêt!!", "UNSUBSCRIBE.", "  Cancel! "])
def test_an_opt_out_word_with_trailing_full_stops_or_exclamation_marks_still_opts_out(body: str) -> None:
    command = parse_keyword(body)
    assert command is not None
    assert command.keyword is Keyword.STOP


@pytest.mark.parametrize("body", ["STOP?", "STOP!?", "Help!", "Yes.", "START!", "stop-it"])
def test_other_punctuation_or_other_keywords_with_punctuation_are_inquiries(body: str) -> None:
    assert parse_keyword(body) is None


@pytest.mark.parametrize(
    "body",
    [
        "",
        "   ",
        "\n",
        "stop it",
        "Stop sending me these",
        "please stop",
        "STOP PLEASE",
        "PLEASE CANCEL",
        "STOP ALL",
        "S T O P",
        "stopp",
        "yes please",
        "Oui merci",
        "help me",
        "Help?",
        "info.",
        "I need help with my water bill",
        "end of the road is flooded",
        "STOP STOP",
        "ARRETE",
    ],
)
def test_anything_but_a_bare_keyword_is_an_inquiry(body: str) -> None:
    assert parse_keyword(body) is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("JOIN SNOW", Command(Keyword.JOIN, "SNOW", "en")),
        ("join snow", Command(Keyword.JOIN, "SNOW", "en")),
        ("  Join   Water \n", Command(Keyword.JOIN, "WATER", "en")),
        ("join ward-3", Command(Keyword.JOIN, "WARD-3", "en")),
        (
            "\uff2a\uff2f\uff29\uff2e \uff53\uff4e\uff4f\uff57",  # full-width "JOIN snow"
            Command(Keyword.JOIN, "SNOW", "en"),
        ),
        ("ABONNER neige", Command(Keyword.JOIN, "NEIGE", "fr")),
        ("abonner déneigement", Command(Keyword.JOIN, "DÉNEIGEMENT", "fr")),
        ("Inscrire eau", Command(Keyword.JOIN, "EAU", "fr")),
    ],
)
def test_join_takes_one_list_name_upper_cased(body: str, expected: Command) -> None:
    assert parse_keyword(body) == expected


@pytest.mark.parametrize(
    "body",
    ["JOIN SNOW PLEASE", "join snow removal", "JOIN SNOW!", "JOIN snow.", "ABONNER à la neige", "join #snow"],
)
def test_join_with_more_than_one_word_or_punctuation_is_an_inquiry(body: str) -> None:
    assert parse_keyword(body) is None
