"""Recognise an inbound SMS that is a keyword command (STOP, START, HELP, JOIN, confirm) rather than an inquiry.

Matching follows Twilio's default opt-out handling, so our subscription state agrees with Twilio's blocklist.
Twilio's "Twilio support for opt-out keywords (SMS STOP filtering)" says only single-word messages trigger the
block: "STOP" does, "STOP PLEASE" or "PLEASE CANCEL" does not. Its Advanced Opt-Out tutorial lists the default
opt-out words STOP, UNSUBSCRIBE, END, QUIT, STOPALL, REVOKE, OPTOUT and CANCEL, opt-in START, YES and UNSTOP, and
help HELP and INFO. Neither page says that punctuation is stripped. We are stricter than Twilio on opting out
only: an opt-out word with trailing full stops or exclamation marks ("STOP!", "Arrêt.") still opts out (CASL:
unsubscribing must work, and a resident who shouts STOP! means it); every other keyword must be the bare word, so
"Help!" or "Yes." from a resident in a conversation reaches an agent.
Case and Unicode width do not matter (NFKC then casefold), nor does whitespace around the word.

YES / OUI confirm a pending subscription (the caller treats CONFIRM as START when nothing is pending). JOIN and
the French ABONNER / INSCRIRE take at most one word, the alert list to join, returned upper-cased.
STATUS and the French STATUT ask where the sender's requests are; they take at most one word, a ticket reference
("PKR-000123", "pkr123" or "123"), returned upper-cased. Any other second word ("Status please") makes the text
an inquiry.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

Language = Literal["en", "fr"]


class Keyword(StrEnum):
    """What a keyword message asks for."""

    STOP = "STOP"
    START = "START"
    HELP = "HELP"
    JOIN = "JOIN"
    CONFIRM = "CONFIRM"
    STATUS = "STATUS"


@dataclass(frozen=True)
class Command:
    """A recognised keyword, its argument (JOIN's list name, STATUS's reference) and the language it was sent in."""

    keyword: Keyword
    argument: str | None
    language: Language


# Keys are casefolded, as the body will be.
_SINGLE_WORDS: dict[str, tuple[Keyword, Language]] = {
    **dict.fromkeys(
        ("stop", "stopall", "unsubscribe", "end", "quit", "cancel", "revoke", "optout"), (Keyword.STOP, "en")
    ),
    "arret": (Keyword.STOP, "fr"),
    "arrêt": (Keyword.STOP, "fr"),
    "start": (Keyword.START, "en"),
    "unstop": (Keyword.START, "en"),
    "yes": (Keyword.CONFIRM, "en"),
    "oui": (Keyword.CONFIRM, "fr"),
    "help": (Keyword.HELP, "en"),
    "info": (Keyword.HELP, "en"),
    "aide": (Keyword.HELP, "fr"),
}
_JOIN_WORDS: dict[str, Language] = {"join": "en", "abonner": "fr", "inscrire": "fr"}
_STATUS_WORDS: dict[str, Language] = {"status": "en", "statut": "fr"}

# A list name: letters, digits, "-" and "_" (so "DÉNEIGEMENT" or "ward-3"), nothing trailing.
_LIST_NAME = re.compile(r"[\w-]+")
# A ticket reference: an optional prefix of letters, an optional "-", digits.
_REFERENCE = re.compile(r"(?:[A-Za-z]{2,6}-?)?\d{1,12}")


def parse_keyword(body: str) -> Command | None:
    """The keyword command that `body` is in its entirety, or None for anything else."""
    text = unicodedata.normalize("NFKC", body).strip()
    words = text.split()
    if not words:
        return None
    first = words[0].casefold()
    if len(words) == 1 and _SINGLE_WORDS.get(first.rstrip(".!"), (None,))[0] is Keyword.STOP:
        first = first.rstrip(".!")
    if len(words) == 1 and first in _SINGLE_WORDS:
        keyword, language = _SINGLE_WORDS[first]
        return Command(keyword, None, language)
    if first in _JOIN_WORDS and len(words) <= 2:
        if len(words) == 1:
            return Command(Keyword.JOIN, None, _JOIN_WORDS[first])
        if _LIST_NAME.fullmatch(words[1]):
            return Command(Keyword.JOIN, words[1].upper(), _JOIN_WORDS[first])
    if first in _STATUS_WORDS and len(words) <= 2:
        if len(words) == 1:
            return Command(Keyword.STATUS, None, _STATUS_WORDS[first])
        if _REFERENCE.fullmatch(words[1]):
            return Command(Keyword.STATUS, words[1].upper(), _STATUS_WORDS[first])
    return None
