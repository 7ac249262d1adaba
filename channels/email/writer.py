"""Outgoing mail as RFC 5322 bytes, written directly (the stdlib's email package costs a hundred times more per
message): headers folded and RFC 2047-encoded where needed, a text/plain body with an HTML alternative, both
quoted-printable UTF-8, so the content is 7-bit. Refuses header injection before anything is sent.
"""

from __future__ import annotations

import binascii
import re
import secrets
from datetime import UTC, datetime
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache

from channels.base import OutboundEnvelope, PermanentSendError

# C0 controls (bar TAB), DEL, and the Unicode line breaks str.splitlines() honours: any of them in a header value
# could end the header early (CR/LF injection) or be folded into one by a lenient reader downstream.
_UNSAFE_IN_HEADER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")
# RFC 5322 field-name: printable ASCII except the colon.
_FIELD_NAME = re.compile(r"[!-9;-~]+")
# Headers the adapter writes itself; an extra header must not replace or duplicate them.
_OWN_HEADERS = frozenset(
    {
        "from",
        "sender",
        "to",
        "cc",
        "bcc",
        "date",
        "message-id",
        "subject",
        "in-reply-to",
        "references",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
    }
)

_LINE = 78  # RFC 5322's recommended limit for a line of a header; 998 is its hard limit
_MAX_LINE = 998
_ENCODED_WORD_OVERHEAD = len("=?utf-8?b??=")
_ENCODED_WORD_BYTES = 45  # base64 to 60 characters: with the overhead, 72 of the 75 an encoded word may have
_QP_LINE = 76  # RFC 2045's limit for a line of quoted-printable


def compose_bytes(env: OutboundEnvelope, *, from_address: str, from_name: str) -> bytes:
    """The RFC 5322 message for env (which must carry env.email), written directly as CRLF-terminated bytes: headers,
    then a text/plain body with an HTML alternative when there is one, both quoted-printable UTF-8, so the content
    is 7-bit (only a non-ASCII mailbox, sent with SMTPUTF8, puts UTF-8 in the To or From header). Raises
    PermanentSendError for a header that would inject others or replace one the adapter sets."""
    email = env.email
    if email is None:
        raise PermanentSendError("an email envelope needs its OutboundEmail (env.email)", code="no-email")
    lines = [
        _from_header(from_name, from_address),
        _to_header(check_header("To", env.to)),
        f"Date: {format_datetime(datetime.now(UTC))}",
        _unstructured("Message-ID", email.message_id),
        _unstructured("Subject", email.subject),
    ]
    if email.in_reply_to:
        lines.append(_unstructured("In-Reply-To", email.in_reply_to))
    if email.references:
        lines.append(_unstructured("References", " ".join(email.references)))
    for name, value in email.headers.items():
        if not _FIELD_NAME.fullmatch(name):
            raise PermanentSendError(f"not a valid header name: {name!r}", code="header-injection")
        if name.lower() in _OWN_HEADERS:
            raise PermanentSendError(f"header {name} is set by the adapter, not by extra headers", code="bad-header")
        lines.append(_unstructured(name, value))
    lines.append("MIME-Version: 1.0")
    head = "\r\n".join(lines).encode()
    if email.html is None:
        return head + _TEXT_PART_HEADERS + _quoted_printable(email.text)
    boundary = b"=_carehub_" + secrets.token_hex(12).encode()  # "=_" never occurs in quoted-printable text
    return b"".join(
        (
            head,
            b'\r\nContent-Type: multipart/alternative;\r\n boundary="',
            boundary,
            b'"\r\n\r\n--',
            boundary,
            _TEXT_PART_HEADERS,
            _quoted_printable(email.text),
            b"\r\n--",
            boundary,
            _HTML_PART_HEADERS,
            _quoted_printable(email.html),
            b"\r\n--",
            boundary,
            b"--\r\n",
        )
    )


_QP = b"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
_TEXT_PART_HEADERS = b'\r\nContent-Type: text/plain; charset="utf-8"' + _QP
_HTML_PART_HEADERS = b'\r\nContent-Type: text/html; charset="utf-8"' + _QP


def _quoted_printable(text: str) -> bytes:
    """text as a quoted-printable body ending in CRLF: lines of at most 76 characters, trailing white space and
    every non-ASCII or control byte encoded, a lone "." line encoded, and "From " at the start of a line written
    "=46rom " so an mbox store has nothing to escape."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"  # as the stdlib does: a part's content ends with a line break
    encoded = binascii.b2a_qp(text.encode(), istext=True, header=False)
    if b"From " in encoded:
        encoded = b"\n".join(_escape_from(line) for line in encoded.split(b"\n"))
    return encoded.replace(b"\n", b"\r\n")


def _escape_from(line: bytes) -> bytes:
    if not line.startswith(b"From "):
        return line
    line = b"=46" + line[1:]
    if len(line) <= _QP_LINE:
        return line
    cut = _QP_LINE - 1  # leaves room for the soft line break's "="
    while b"=" in line[cut - 2 : cut]:  # never inside an =XX escape
        cut -= 1
    return line[:cut] + b"=\n" + line[cut:]


@lru_cache(maxsize=16)
def _from_header(name: str, address: str) -> str:
    """The same for every message of an adapter, hence cached."""
    return _mailbox("From", check_header("From", name), check_header("From", address))


def _to_header(to: str) -> str:
    if to.isascii():
        line = f"To: {to}"
        return line if len(line) <= _LINE else _fold(line) or line
    name, address = parseaddr(to)
    if not address or not address.isascii():
        return f"To: {to}"  # a non-ASCII mailbox goes as UTF-8, sent with SMTPUTF8
    return _mailbox("To", name, address)


def _mailbox(field: str, name: str, address: str) -> str:
    if name.isascii():
        line = f"{field}: {formataddr((name, address))}"
        return line if len(line) <= _LINE else _fold(line) or line
    # RFC 2047 encoded words for the name; a reader joins adjacent ones without the folding white space between.
    words = _encoded_words(name, first_line_room=_LINE - len(field) - 2)
    last = len(words[-1]) + (len(field) + 2 if len(words) == 1 else 1)
    fold = "\r\n " if last + 2 + len(address) + 1 > _LINE else " "
    return f"{field}: " + "\r\n ".join(words) + f"{fold}<{address}>"


def _unstructured(name: str, value: str) -> str:
    """One header line, folded at spaces to fit 78 columns where it can; RFC 2047 encoded words when the value is
    not ASCII, looks like an encoded word already, or has a word too long for a line."""
    check_header(name, value)
    line = f"{name}: {value}"
    if value.isascii() and "=?" not in value:
        if len(line) <= _LINE:
            return line
        folded = _fold(line)
        if folded is not None:
            return folded
    return f"{name}: " + "\r\n ".join(_encoded_words(value, first_line_room=_LINE - len(name) - 2))


def _fold(line: str) -> str | None:
    """line folded by turning spaces into CRLF + space (unfolding gives line back), each piece as long as fits in
    78 columns; None when a piece stays longer than RFC 5322's 998."""
    words = line.split(" ")
    pieces = [words[0]]
    for word in words[1:]:
        # Fold only before a word with something visible in it (a line of white space alone is not allowed), and
        # not right after the header's name (a value starting on the next line gains a leading space).
        header_name_only = len(pieces) == 1 and " " not in pieces[0]
        if len(pieces[-1]) + 1 + len(word) > _LINE and word.strip() and not header_name_only:
            pieces.append(" " + word)
        else:
            pieces[-1] += " " + word
    if any(len(piece) > _MAX_LINE for piece in pieces):
        return None
    return "\r\n".join(pieces)


def _encoded_words(value: str, *, first_line_room: int) -> list[str]:
    """value as RFC 2047 base64 UTF-8 encoded words, each at most 75 characters and none splitting a character;
    the first fits first_line_room columns when it can."""
    data = value.encode()
    words = []
    start = 0
    limit = max(min((first_line_room - _ENCODED_WORD_OVERHEAD) // 4 * 3, _ENCODED_WORD_BYTES), 6)
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # a UTF-8 continuation byte: cut before its character
            end -= 1
        words.append(f"=?utf-8?b?{binascii.b2a_base64(data[start:end], newline=False).decode()}?=")
        start = end
        limit = _ENCODED_WORD_BYTES
    return words


def check_header(name: str, value: str) -> str:
    if _UNSAFE_IN_HEADER.search(value):
        raise PermanentSendError(
            f"header {name} contains a line break or control character: refused (header injection)",
            code="header-injection",
        )
    return value
