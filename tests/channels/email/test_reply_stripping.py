"""reply_text against talon's fixtures: replies from common clients with the expected new text beside some of them.

talon keeps signatures in its expectations ("Sent from my iPhone"); carehub strips them, so a reply counts as a hit
when it equals talon's expected text cut at the signature. Replies without an expectation file expect "Hello".
Measured: 11 of 12 (the miss is Android's Russian attribution line, a language mailparser_reply does not know).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from channels.email.mime import parse_email
from tests.support.corpus import EMAIL

TALON = EMAIL / "talon"
STANDARD_REPLIES = sorted((TALON / "standard_replies").glob("*.eml"))
ALL_TALON_MESSAGES = sorted(TALON.rglob("*.eml"))
HIT_FLOOR = 11
_SIGNATURE_START = re.compile(r"^(?:-- ?$|Sent (?:from|with) )", re.MULTILINE)


def _expected_reply(eml: Path) -> str:
    expectation = eml.with_name(f"{eml.stem}_reply_text")
    if not expectation.exists():
        return "Hello"
    expected = expectation.read_text()
    return expected[: m.start()].strip() if (m := _SIGNATURE_START.search(expected)) else expected.strip()


def _hits() -> list[str]:
    return [
        eml.name for eml in STANDARD_REPLIES if parse_email(eml.read_bytes()).reply_text.strip() == _expected_reply(eml)
    ]


def test_standard_replies_corpus_is_present() -> None:
    assert len(STANDARD_REPLIES) == 12


def test_reply_text_matches_talon_expectations_at_the_measured_rate() -> None:
    hits = _hits()
    assert len(hits) >= HIT_FLOOR, f"{len(hits)}/{len(STANDARD_REPLIES)} hits: {hits}"


@pytest.mark.parametrize("name", ["gmail.eml", "outlook.eml", "yahoo.eml", "iphone.eml", "thunderbird.eml"])
def test_quoted_history_and_signature_are_stripped_for_common_clients(name: str) -> None:
    parsed = parse_email((TALON / "standard_replies" / name).read_bytes())
    assert parsed.reply_text == "Hello"
    assert len(parsed.text) > len(parsed.reply_text)


@pytest.mark.parametrize("path", ALL_TALON_MESSAGES, ids=[p.name for p in ALL_TALON_MESSAGES])
def test_reply_text_is_never_empty_when_text_is_not(path: Path) -> None:
    parsed = parse_email(path.read_bytes())
    assert parsed.text
    assert parsed.reply_text.strip()


def test_message_with_nothing_to_strip_keeps_its_text() -> None:
    raw = b"From: a@example.org\r\nSubject: pothole\r\n\r\nThere is a pothole on Main St.\r\n"
    parsed = parse_email(raw)
    assert parsed.reply_text == parsed.text == "There is a pothole on Main St."


def test_french_attribution_line_starts_the_quoted_history() -> None:
    raw = (
        "From: a@example.org\r\nSubject: Re: nid-de-poule\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Merci, c'est réglé.\r\n\r\nLe lun. 3 mars 2025 à 10:00, Service 311 <aide@city.example> a écrit :\r\n"
        "> Votre demande est reçue.\r\n"
    ).encode()
    parsed = parse_email(raw)
    assert parsed.reply_text == "Merci, c'est réglé."
    assert "Votre demande est reçue." in parsed.text
