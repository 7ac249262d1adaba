"""Inbound email parsing: raw RFC 5322 bytes into the fields the hub stores and shows to agents.

Real mail is often malformed, so every step degrades to a lenient fallback and records a defect instead of raising;
only bytes that are not an email at all raise UnparseableEmail. The tree is parsed with compat32 (raw header strings,
a fifth of policy.default's cost) and headers are decoded as policy.default would, via channels.email.headers.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.generator import BytesGenerator
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from email.utils import format_datetime, getaddresses, parsedate_to_datetime
from io import BytesIO
from types import MappingProxyType

import nh3

from channels.email.bounces import Bounce, is_complaint, parse_bounce
from channels.email.headers import is_plain, mime_view, raw_value, unfold
from channels.email.html_text import html_to_text
from channels.email.replies import latest_reply

# Headers later stages need (loop and bounce detection); kept decoded, keyed lower-case.
KEPT_HEADERS = (
    "auto-submitted",
    "precedence",
    "x-loop",
    "x-auto-response-suppress",
    "list-id",
    "list-unsubscribe",
    "return-path",
    "content-type",
)
MAX_FILENAME_CHARS = 120
# A Subject is read from at most this much of its raw field (cut at a word break, so no encoded word is split):
# flanker's long-header.eml carries 210 KB of encoded words, and carehub keeps 300 characters of a subject anyway.
MAX_SUBJECT_RAW_CHARS = 2_000
# Deeper nesting than this is an attack or a loop (enclosed-endless style), not correspondence.
MAX_MIME_DEPTH = 20

_MSG_ID = re.compile(r"<[^<>\s]+>")
_LEADING_BLANK_LINES = re.compile(rb"\A(?:[ \t]*\r?\n)+")
_HEADER_START = re.compile(rb"^[!-9;-~]+[ \t]*:", re.MULTILINE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\udc80-\udcff]")
# A Content-Type simple enough to re-serialise as policy.default does (checked against it over the corpus):
# type/subtype, then unique name=token or name="text" parameters; anything else goes through its parser.
_MIME_ATOM = r"[!#$&+\-.^_`|~0-9A-Za-z]+"
_SIMPLE_CONTENT_TYPE = re.compile(
    rf'({_MIME_ATOM}/{_MIME_ATOM})((?:;[ \t]*{_MIME_ATOM}[ \t]*=[ \t]*(?:{_MIME_ATOM}|"[^"\\]+")[ \t]*)*)\Z'
)
_SIMPLE_PARAM = re.compile(rf'({_MIME_ATOM})[ \t]*=[ \t]*({_MIME_ATOM}|"[^"\\]+")')
_BODY_TYPES = frozenset({"text/plain", "text/html"})
# Fields policy.default re-serialises from what it parsed, so even their plain values differ from the raw text.
_REWRITTEN = frozenset({"from", "to", "content-type"})


class UnparseableEmail(Exception):
    """The bytes are not an email at all; reason says why, for the archive."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    content: bytes = field(repr=False)


@dataclass(frozen=True)
class ParsedEmail:
    message_id: str
    in_reply_to: str | None
    references: tuple[str, ...]
    from_address: str | None
    from_name: str | None
    to: tuple[str, ...]
    subject: str
    date: datetime | None
    text: str
    reply_text: str
    html_sanitized: str | None
    attachments: tuple[Attachment, ...]
    skipped_attachments: tuple[tuple[str, str], ...]
    headers: Mapping[str, str]
    defects: tuple[str, ...]
    bounce: Bounce | None  # set when this is a delivery failure report (RFC 3464 or a common prose bounce)
    complaint: bool  # an ARF spam complaint about mail we sent
    # The parsed tree, for checks that need more than the fields above (loop protection): parse once, use twice.
    # A compat32 tree (headers are raw strings): read them with channels.email.headers, not msg.get().
    message: Message = field(repr=False, compare=False)


def parse_email(raw: bytes, *, max_attachments: int = 20, max_attachment_bytes: int = 10 * 1024 * 1024) -> ParsedEmail:
    """Parse one message. Raises UnparseableEmail only when raw has no header section at all."""
    # Some gateways prepend whitespace-only lines; the parser would read them as a folded first header.
    trimmed = _LEADING_BLANK_LINES.sub(b"", raw)
    _reject_non_email(trimmed)
    try:
        msg = BytesParser(policy=policy.compat32).parsebytes(trimmed)
    except Exception as exc:  # e.g. RecursionError on absurd nesting; the hub archives it with this reason
        raise UnparseableEmail(f"the MIME parser failed: {type(exc).__name__}: {exc}") from exc
    if not msg.keys():
        raise UnparseableEmail("no header fields could be parsed")

    body = _Body(max_attachments=max_attachments, max_attachment_bytes=max_attachment_bytes)
    if trimmed != raw:
        body.defects.append("blank lines before the header section were ignored")
    body.collect(msg, depth=0)
    text = body.text()
    from_name, from_address = _sender(msg)
    subject = _header(msg, "subject")
    return ParsedEmail(
        message_id=_message_id(msg, raw, subject),
        in_reply_to=next(iter(_MSG_ID.findall(_header(msg, "in-reply-to") or "")), None),
        references=tuple(dict.fromkeys(_MSG_ID.findall(_header(msg, "references") or ""))),
        from_address=from_address,
        from_name=from_name,
        to=tuple(addr for _, addr in _addresses(msg, "to")),
        subject=" ".join((subject or "").split()),
        date=_date(msg),
        text=text,
        reply_text=latest_reply(text),
        html_sanitized=nh3.clean(body.html()) if body.html_parts else None,
        attachments=tuple(body.attachments),
        skipped_attachments=tuple(body.skipped),
        headers=MappingProxyType({k: v for k in KEPT_HEADERS if (v := _header(msg, k)) is not None}),
        defects=tuple(dict.fromkeys(body.defects)),
        bounce=parse_bounce(msg),
        complaint=is_complaint(msg),
        message=msg,
    )


def _reject_non_email(raw: bytes) -> None:
    if not raw.strip():
        raise UnparseableEmail("empty input")
    # A header section starts at the first byte (RFC 5322 section 2.1); mbox "From " lines are tolerated.
    head = raw.lstrip(b"\r\n")
    if head.startswith(b"From "):
        head = head.split(b"\n", 1)[-1]
    if not _HEADER_START.match(head[:998]):
        raise UnparseableEmail("input does not start with a header field (name: value)")


class _Body:
    """Walks the MIME tree once, sorting leaves into body text, HTML and attachments."""

    def __init__(self, *, max_attachments: int, max_attachment_bytes: int) -> None:
        self.max_attachments = max_attachments
        self.max_attachment_bytes = max_attachment_bytes
        self.plain_parts: list[str] = []
        self.html_parts: list[str] = []
        self.attachments: list[Attachment] = []
        self.skipped: list[tuple[str, str]] = []
        self.defects: list[str] = []

    def collect(self, part: Message, depth: int) -> None:
        self.defects.extend(_describe_defect(d) for d in part.defects)
        try:
            self._collect(part, depth)
        except Exception as exc:  # the stdlib raises assorted errors on hostile MIME; keep the rest of the mail
            self.defects.append(f"part skipped, could not be read: {type(exc).__name__}: {exc}")

    def _collect(self, part: Message, depth: int) -> None:
        if depth > MAX_MIME_DEPTH:
            self.defects.append(f"MIME nesting deeper than {MAX_MIME_DEPTH} levels ignored")
            return
        info = mime_view(part)  # ask MIME questions of info, take payloads from part
        ctype = info.get_content_type()
        multipart = part.is_multipart()
        if ctype == "message/rfc822" or (multipart and ctype.startswith("message/")):
            # An enclosed message is evidence the agent may want, not part of what the customer wrote.
            self._attach(info, ctype, _message_bytes(part))
            return
        if multipart:
            for sub in _subparts(part):
                self.collect(sub, depth + 1)
            return
        if ctype.startswith("multipart/"):
            # Declared multipart but no parts were found (missing or wrong boundary): the payload is all we have.
            ctype = "text/plain"
        if ctype in _BODY_TYPES and not _is_attachment(info):
            decoded = _decode_text(part, info.get_content_charset(), self.defects)
            (self.plain_parts if ctype == "text/plain" else self.html_parts).append(decoded)
            return
        payload = part.get_payload(decode=True)
        self._attach(info, ctype, payload if isinstance(payload, bytes) else b"")

    def _attach(self, part: Message, ctype: str, content: bytes) -> None:
        name = _safe_filename(_raw_filename(part), ctype, len(self.attachments) + len(self.skipped) + 1)
        if len(self.attachments) >= self.max_attachments:
            self.skipped.append((name, f"more than {self.max_attachments} attachments"))
        elif len(content) > self.max_attachment_bytes:
            self.skipped.append((name, f"{len(content)} bytes is over the {self.max_attachment_bytes} byte limit"))
        else:
            self.attachments.append(Attachment(name, ctype, len(content), content))

    def text(self) -> str:
        plain = "\n\n".join(p.strip("\n") for p in self.plain_parts).replace("\r\n", "\n").strip()
        # An empty text/plain beside real HTML is a client bug; the HTML is then the message.
        return plain or self.html_text()

    def html(self) -> str:
        return "\n".join(self.html_parts)

    def html_text(self) -> str:
        return html_to_text(self.html()).replace("\r\n", "\n") if self.html_parts else ""


def _subparts(part: Message) -> Iterator[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        yield from (p for p in payload if isinstance(p, Message))


def _is_attachment(part: Message) -> bool:
    disposition = (part.get_content_disposition() or "").lower()
    return disposition == "attachment" or _raw_filename(part) is not None


def _raw_filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
        return None if name is None else _fix_surrogates(name)
    except Exception:  # malformed RFC 2231 parameters can raise inside the stdlib
        return None


def _message_bytes(part: Message) -> bytes:
    out = BytesIO()
    for sub in _subparts(part):
        try:
            # compat32 re-emits headers as received; policy.default would refold and can choke on broken ones.
            BytesGenerator(out, mangle_from_=False, policy=policy.compat32).flatten(sub)
        except Exception:
            out.write(str(sub.get_payload()).encode("utf-8", "replace"))
    if not out.getvalue():
        payload = part.get_payload(decode=True)
        return payload if isinstance(payload, bytes) else b""
    return out.getvalue()


def _decode_text(part: Message, declared: str | None, defects: list[str]) -> str:
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    if declared:
        try:
            return data.decode(declared)
        except LookupError:
            defects.append(f"unknown charset {declared!r}; decoded leniently")
        except (UnicodeDecodeError, ValueError, TypeError):
            defects.append(f"bytes not valid in declared charset {declared!r}; decoded leniently")
    return _lenient_decode(data)


def _lenient_decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # Undeclared 8-bit mail is most often Windows-1252; replace keeps the undefined bytes visible.
        return data.decode("cp1252", "replace")


def _describe_defect(defect: Exception) -> str:
    doc = (type(defect).__doc__ or "").strip().splitlines()
    detail = str(defect)
    note = doc[0] if doc else type(defect).__name__
    return f"{note} ({detail})" if detail else note


def _safe_filename(name: str | None, content_type: str, index: int) -> str:
    cleaned = ""
    if name:
        cleaned = re.split(r"[/\\]", name)[-1]
        cleaned = _CONTROL.sub("", unicodedata.normalize("NFC", cleaned))
        cleaned = "".join(c for c in cleaned if unicodedata.category(c) not in {"Cf", "Cs"})
        cleaned = cleaned.strip().lstrip(".")  # no hidden files, no "..".
    if not cleaned:
        ext = ".eml" if content_type == "message/rfc822" else (mimetypes.guess_extension(content_type) or ".bin")
        return f"attachment-{index}{ext}"
    if len(cleaned) > MAX_FILENAME_CHARS:
        stem, dot, ext = cleaned.rpartition(".")
        keep_ext = dot and 0 < len(ext) <= 10 and stem
        cleaned = cleaned[: MAX_FILENAME_CHARS - len(ext) - 1] + "." + ext if keep_ext else cleaned[:MAX_FILENAME_CHARS]
    return cleaned


def _fix_surrogates(value: str) -> str:
    # Undeclared 8-bit header bytes come back as lone surrogates; most such mail is UTF-8, older mail Latin-1/1252.
    try:
        data = value.encode("utf-8", "surrogateescape")
    except UnicodeError:
        return value.encode("utf-8", "replace").decode("utf-8")
    return _lenient_decode(data)


def _header(msg: Message, name: str) -> str | None:
    """The decoded value of a header as policy.default gives it, or None; lenient when the header is malformed."""
    raw = raw_value(msg, name)
    if raw is None:
        return None
    if name == "subject" and len(raw) > MAX_SUBJECT_RAW_CHARS:
        words = raw[:MAX_SUBJECT_RAW_CHARS].rsplit(None, 1)
        raw = words[0] if len(words) == 2 and "=?" in words[1] else raw[:MAX_SUBJECT_RAW_CHARS]
    if _has_surrogates(raw):
        # Undeclared 8-bit bytes: the structured parser would already have replaced them with U+FFFD.
        return _decode_raw_header(raw) if "=?" in raw else _fix_surrogates(raw)
    try:
        if name == "date":
            return _date_text(unfold(raw))
        if name == "subject" and "=?" in raw and "(" not in raw and "\\" not in raw:
            # The legacy decoder gave the same text over the whole corpus, and is linear where the structured parser
            # took half a second on a 6,600-word Subject (flanker long-header.eml).
            return _decode_raw_header(unfold(raw))
        if is_plain(raw) and name not in _REWRITTEN:
            return unfold(raw)
        if name == "content-type" and is_plain(raw) and (simple := _simple_content_type(unfold(raw))) is not None:
            return simple
        return _fix_surrogates(str(policy.default.header_fetch_parse(name, raw)))
    except Exception:
        return _decode_raw_header(raw)


def _date_text(value: str) -> str:
    """What policy.default's DateHeader shows: the date reformatted, or the value as given when it is no date."""
    if not value:
        return ""
    try:
        return format_datetime(parsedate_to_datetime(value))
    except ValueError:
        return value


def _simple_content_type(value: str) -> str | None:
    """str() of policy.default's Content-Type header for a simple value, without its parser; None if not simple."""
    found = _SIMPLE_CONTENT_TYPE.match(value)
    if found is None:
        return None
    params = _SIMPLE_PARAM.findall(found.group(2))
    if len({name.lower() for name, _ in params}) != len(params):
        return None  # duplicates: policy.default drops some, with defects
    return "; ".join([found.group(1), *(f'{name}="{value.strip(chr(34))}"' for name, value in params)])


def _has_surrogates(value: str) -> bool:
    return _SURROGATE.search(value) is not None


def _decode_raw_header(raw: str) -> str:
    try:
        return _fix_surrogates(str(make_header(decode_header(raw))))
    except Exception:  # an unknown charset inside an encoded-word
        return _fix_surrogates(raw)


def _addresses(msg: Message, name: str) -> list[tuple[str, str]]:
    """(display name, lower-cased addr-spec) pairs; entries without a usable address are dropped."""
    raw = raw_value(msg, name)
    if raw is None:
        return []
    pairs: list[tuple[str, str]] = []
    if is_plain(raw):
        # Nothing to decode: the legacy parser finds the same pairs as the structured one, at a tenth of the cost.
        pairs = getaddresses([unfold(raw)])
    else:
        try:
            header = policy.default.header_fetch_parse(name, raw)
            pairs = [(a.display_name, a.addr_spec) for a in getattr(header, "addresses", ())]
        except Exception:
            pairs = []
        if not pairs:
            pairs = getaddresses([_header(msg, name) or ""])
    return [(_fix_surrogates(n), a.lower()) for n, a in pairs if "@" in a and " " not in a]


def _sender(msg: Message) -> tuple[str | None, str | None]:
    found = _addresses(msg, "from")
    if not found:
        return None, None
    display, address = found[0]
    return display or None, address


def _message_id(msg: Message, raw: bytes, subject: str | None) -> str:
    found = _MSG_ID.findall(_header(msg, "message-id") or "")
    if found:
        return str(found[0])
    # Deterministic, so a redelivered copy deduplicates against the first: from what the sender wrote (the
    # originating headers and the body), not the whole raw message, whose Received: lines differ per relay.
    digest = hashlib.sha256()
    for value in (_header(msg, "from"), _header(msg, "to"), _header(msg, "date"), subject):
        digest.update((value or "").encode("utf-8", "surrogateescape") + b"\0")
    separator = re.search(rb"\r?\n\r?\n", raw)
    digest.update(raw[separator.end() :] if separator else b"")
    return f"<{digest.hexdigest()}@carehub.invalid>"


def _date(msg: Message) -> datetime | None:
    value = _header(msg, "date")
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    # "-0000" means UTC with the sender's zone unknown (RFC 5322 3.3); storage is UTC anyway.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
