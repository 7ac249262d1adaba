"""Header values of a compat32-parsed message, read as policy.default would present them, without its cost.

policy.default runs its structured header parser on every msg.get() and caches nothing; most real header values are
plain ASCII that parser hands back unchanged, so those are read raw and only the rest go through it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage, Message

# Printable ASCII and folding whitespace, with nothing the structured parser rewrites: encoded words, comments,
# quoted-pairs. Checked against the corpus: such unstructured values come back from policy.default unchanged.
_PLAIN = re.compile(r"[\t\r\n -~]*\Z")
_LINE_BREAKS = re.compile(r"[\r\n]")
# policy.default re-serialises these from what it parsed (addresses requoted, dates reformatted, MIME parameters
# decoded and requoted), so even their plain values differ from the raw text.
_REWRITTEN = frozenset(
    {"date", "resent-date", "orig-date", "content-type", "content-disposition"}
    | {"from", "to", "cc", "bcc", "sender", "reply-to", "resent-from", "resent-to", "resent-cc", "resent-bcc"}
    | {"resent-sender"}
)
_ADDRESS_FIELDS = frozenset({"from", "to", "cc", "bcc", "sender", "reply-to"})
_MIME_FIELDS = ("content-type", "content-disposition")


def raw_value(msg: Message, name: str) -> str | None:
    """The first field called name (any case) as received, folding included; None when there is none."""
    wanted = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == wanted:
            return str(value)
    return None


def is_plain(value: str) -> bool:
    """True when the structured parser would find nothing to decode in value (bar folding)."""
    return _PLAIN.match(value) is not None and "=?" not in value and "(" not in value and "\\" not in value


def unfold(value: str) -> str:
    """The value with its line breaks removed, as policy.default's header_fetch_parse does."""
    return _LINE_BREAKS.sub("", value) if "\n" in value or "\r" in value else value


def header_text(msg: Message, name: str) -> str | None:
    """str(msg.get(name)) as policy.default gives it; may raise what its structured parser raises.

    Address fields read raw when plain: their quoting can differ from policy.default's, the addresses cannot.
    """
    return next(_texts(msg, name), None)


def header_texts(msg: Message, name: str) -> list[str]:
    """[str(v) for v in msg.get_all(name, [])] as policy.default gives them."""
    return list(_texts(msg, name))


def _texts(msg: Message, name: str) -> Iterator[str]:
    wanted = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == wanted:
            if hasattr(value, "name"):  # already a header object: a message built with policy.default
                yield str(value)
                continue
            text = str(value)
            if is_plain(text) and (wanted not in _REWRITTEN or wanted in _ADDRESS_FIELDS):
                yield unfold(text)
            else:
                yield str(policy.default.header_fetch_parse(key, text))


def mime_view(part: Message) -> Message:
    """part itself when its Content-Type and Content-Disposition are plain, else a policy.default copy of its headers.

    The stdlib's get_content_type / get_param / get_filename / get_content_charset give the same answers on both
    for plain values; for the rest (encoded words, undeclared 8-bit names) only policy.default decodes them.
    """
    if isinstance(part, EmailMessage) or all(is_plain(v) for k, v in part.raw_items() if k.lower() in _MIME_FIELDS):
        return part
    view = EmailMessage(policy.default)
    for key, value in part.raw_items():
        view.set_raw(key, value)
    return view
