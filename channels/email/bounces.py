"""Bounce and complaint recognition for inbound mail: RFC 3464 DSNs, common non-standard bounces, ARF reports.

A Bounce tells the ticket side which of OUR messages failed, for whom, and whether retrying can help.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from email.utils import getaddresses, parseaddr

from channels.email.headers import header_text, header_texts, mime_view

# Enhanced status code (RFC 3463). The lookarounds keep us from reading "2.5.1" out of an IP address like 10.2.5.1.
_ENHANCED_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?!\.?\d)")
# A bare SMTP reply code as it appears in transcripts ("550 ...", "550-..."), for bounces without enhanced codes.
_SMTP_CODE = re.compile(r"(?<![\d.])([45]\d\d)[ -](?!\d)")
_MESSAGE_ID_LINE = re.compile(r"^[ \t]*Message-ID:[ \t]*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
_MESSAGE_ID = re.compile(r"<[^<>\s]+@[^<>\s]+>")
_ADDRESS = re.compile(r"[\w.+'=-]+@[\w-]+(?:\.[\w-]+)+")

# Subjects that MTAs without DSN support put on their bounces (Gmail, Exchange/Office 365, Postfix, Exim, qmail,
# Sendmail, assorted appliances). Matched only together with a robot sender, so a human's "Fwd: failure notice"
# is not a bounce.
_BOUNCE_SUBJECT = re.compile(
    r"delivery status notification|undelivered mail|undeliverable|mail delivery fail|failure notice"
    r"|returned mail|delivery fail|could not be delivered|could not send|delayed|non-delivery",
    re.IGNORECASE,
)
_DELAY_WORDS = re.compile(r"\(delay\)|delayed|still being retried|will be retried|warning", re.IGNORECASE)
_ROBOT_SENDER = re.compile(r"^(?:mailer[-_.]?daemon|postmaster|mail[-_.]?delivery[-_.]?system)$", re.IGNORECASE)

# Where a text bounce stops talking about the failure and starts quoting our message back. Recipients are only
# looked for before this, since the quoted original is full of addresses that did not bounce.
_ORIGINAL_MARKER = re.compile(
    r"^.*(?:original message|copy of the message|message follows|undelivered message|returned message"
    r"|message headers follow).*$",
    re.IGNORECASE | re.MULTILINE,
)

_NOT_FAILURES = frozenset({"delivered", "relayed", "expanded"})


@dataclass(frozen=True)
class BouncedRecipient:
    """One recipient a bounce reports on."""

    address: str
    status: str | None  # RFC 3463 enhanced status, e.g. "5.1.1"
    action: str  # RFC 3464 Action: "failed", "delayed", ...
    diagnostic: str | None
    permanent: bool


@dataclass(frozen=True)
class Bounce:
    """A delivery failure report about a message we sent."""

    recipients: tuple[BouncedRecipient, ...]
    # The Message-ID (with angle brackets, as make_msgid() produces it) of OUR message that bounced.
    original_message_id: str | None

    @property
    def is_permanent(self) -> bool:
        """True when at least one recipient will never accept the message: stop sending to them."""
        return any(r.permanent for r in self.recipients)


def _is_permanent(status: str | None, diagnostic: str | None, action: str) -> bool:
    # The enhanced status class is the authority (RFC 3463: 5 = permanent, 4 = persistent transient). Without
    # one, fall back to the SMTP reply code, and only then to the action: an MTA that says "failed" gave up.
    if status is not None:
        return status.startswith("5")
    code = _SMTP_CODE.search(diagnostic or "")
    if code is not None:
        return code.group(1).startswith("5") and action == "failed"
    return action == "failed"


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _typed_value(value: str | None) -> str | None:
    """'rfc822; <a@b>' -> 'a@b' and 'smtp; 550 ...' -> '550 ...' (the RFC 3464 address-type / diagnostic-type)."""
    if value is None:
        return None
    text = _collapse(str(value))
    if ";" in text:
        text = text.split(";", 1)[1]
    return text.strip().strip("<>").strip() or None


def _status(value: str | None) -> str | None:
    found = _ENHANCED_STATUS.search(value or "")
    return None if found is None else ".".join(found.groups())


def _dsn_recipients(report: Message) -> tuple[list[BouncedRecipient], bool]:
    """The failed/delayed recipients, and whether any recipient was reported as delivered/relayed/expanded."""
    blocks = report.get_payload()
    if not isinstance(blocks, list):
        return [], False
    recipients = []
    succeeded = False
    # The first block is per-message (Reporting-MTA ...); each later one describes a recipient.
    for block in blocks[1:]:
        if not isinstance(block, Message):
            continue
        address = _typed_value(header_text(block, "Final-Recipient")) or _typed_value(
            header_text(block, "Original-Recipient")
        )
        if address is None:
            continue
        action = _collapse(header_text(block, "Action") or "").lower() or "failed"
        if action in _NOT_FAILURES:
            succeeded = True
            continue
        status = _status(header_text(block, "Status"))
        diagnostic = _typed_value(header_text(block, "Diagnostic-Code"))
        recipients.append(
            BouncedRecipient(address, status, action, diagnostic, _is_permanent(status, diagnostic, action))
        )
    return recipients, succeeded


def _message_id_from_returned_part(msg: Message) -> str | None:
    for part in msg.walk():
        ctype = _content_type(part)
        if ctype == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                found = _MESSAGE_ID.search(header_text(inner[0], "Message-ID") or "")
                if found is not None:
                    return found.group(0)
        elif ctype == "text/rfc822-headers":
            headers = HeaderParser(policy=compat32).parsestr(_text_of(part))
            found = _MESSAGE_ID.search(header_text(headers, "Message-ID") or "")
            if found is not None:
                return found.group(0)
    return None


def _original_message_id(msg: Message, body: str) -> str | None:
    returned = _message_id_from_returned_part(msg)
    if returned is not None:
        return returned
    # Exchange and some others thread the bounce onto our message.
    in_reply_to = _MESSAGE_ID.search(header_text(msg, "In-Reply-To") or "")
    if in_reply_to is not None:
        return in_reply_to.group(0)
    references = _MESSAGE_ID.findall(header_text(msg, "References") or "")
    if references:
        return str(references[-1])
    found = _MESSAGE_ID_LINE.search(body)
    return None if found is None else found.group(1)


def _text_of(part: Message) -> str:
    """The decoded text of a leaf part, never raising: bounces are often badly encoded."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = mime_view(part).get_content_charset() or "us-ascii"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        # An unknown charset name; latin-1 maps every byte, so addresses and codes survive.
        return payload.decode("latin-1")


def _body_text(msg: Message) -> str:
    """The plain-text parts outside any returned message, joined."""
    texts: list[str] = []
    stack: list[Message] = [msg]
    while stack:
        part = stack.pop(0)
        ctype = _content_type(part)
        if ctype in ("message/rfc822", "message/delivery-status", "text/rfc822-headers"):
            continue
        if part.is_multipart():
            payload = part.get_payload()
            stack.extend(p for p in payload if isinstance(p, Message))
        elif ctype == "text/plain":
            texts.append(_text_of(part))
    return "\n".join(texts)


def _content_type(part: Message) -> str:
    return mime_view(part).get_content_type()


def _is_dsn(msg: Message) -> bool:
    info = mime_view(msg)
    ctype = info.get_content_type()
    if ctype == "message/delivery-status":
        return True
    if ctype != "multipart/report":
        return False
    # Some MTAs leave out report-type (or get it wrong) but still include the machine-readable part.
    return info.get_param("report-type") == "delivery-status" or _find_delivery_status(msg) is not None


def _find_delivery_status(msg: Message) -> Message | None:
    return next((p for p in msg.walk() if _content_type(p) == "message/delivery-status"), None)


def _looks_like_text_bounce(msg: Message) -> bool:
    sender = parseaddr(header_text(msg, "From") or "")[1]
    robot = _ROBOT_SENDER.match(sender.rpartition("@")[0]) is not None
    null_sender = (header_text(msg, "Return-Path") or "").strip() == "<>"
    return (robot or null_sender) and _BOUNCE_SUBJECT.search(header_text(msg, "Subject") or "") is not None


def _text_recipients(msg: Message, notification: str) -> list[str]:
    # Exim and Gmail name the failed recipients in a header; that beats scraping prose.
    failed = getaddresses(header_texts(msg, "X-Failed-Recipients"))
    candidates = [a for _, a in failed if a] or _ADDRESS.findall(notification)
    ours = {a.lower() for _, a in getaddresses([header_text(msg, "From") or "", header_text(msg, "To") or ""])}
    seen: dict[str, None] = {}
    for address in candidates:
        local = address.rpartition("@")[0]
        if address.lower() not in ours and not _ROBOT_SENDER.match(local):
            seen.setdefault(address, None)
    return list(seen)


def _text_bounce(msg: Message, body: str) -> list[BouncedRecipient]:
    marker = _ORIGINAL_MARKER.search(body)
    notification = body if marker is None else body[: marker.start()]
    status = _status(notification)
    code_line = next(
        (
            line.strip()
            for line in notification.splitlines()
            if _ENHANCED_STATUS.search(line) or _SMTP_CODE.search(line)
        ),
        None,
    )
    delayed = _DELAY_WORDS.search(header_text(msg, "Subject") or "") or (status or "").startswith("4")
    action = "delayed" if delayed else "failed"
    diagnostic = None if code_line is None else _collapse(code_line)
    permanent = _is_permanent(status, diagnostic, action)
    # One status for all: prose bounces rarely tie codes to recipients reliably, and most name one recipient.
    return [BouncedRecipient(a, status, action, diagnostic, permanent) for a in _text_recipients(msg, notification)]


def parse_bounce(msg: Message) -> Bounce | None:
    """The bounce msg reports, or None when msg is not a bounce (success-only DSNs are not bounces).

    msg may come from either policy; headers are read as policy.default presents them.
    """
    if _is_dsn(msg):
        body = _body_text(msg)
        report = _find_delivery_status(msg)
        recipients, succeeded = ([], False) if report is None else _dsn_recipients(report)
        if succeeded and not recipients:
            # Every recipient was delivered/relayed: a success notification (RFC 3461 NOTIFY=SUCCESS), not a bounce.
            return None
        if not recipients:
            recipients = _text_bounce(msg, body)
    elif _looks_like_text_bounce(msg):
        body = _body_text(msg)
        recipients = _text_bounce(msg, body)
    else:
        return None
    return Bounce(tuple(recipients), _original_message_id(msg, body))


def reported_message_id(msg: Message) -> str | None:
    """The Message-ID of the message a report (bounce or complaint) is about, wherever the reporter put it."""
    return _original_message_id(msg, _body_text(msg))


def is_complaint(msg: Message) -> bool:
    """True for an ARF (RFC 5965) feedback report: a recipient marked our mail as spam."""
    info = mime_view(msg)
    if info.get_content_type() == "multipart/report" and info.get_param("report-type") == "feedback-report":
        return True
    # Some providers get the report-type parameter wrong but still include the machine-readable part.
    return any(_content_type(p) == "message/feedback-report" for p in msg.walk())
