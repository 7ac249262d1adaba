"""Mail-loop protection: when carehub must not auto-reply, and the headers its own automatic mail carries.

Sources: RFC 3834 (Auto-Submitted, responder rules), RFC 2369/8058 (List-*), RFC 3464/6522 (multipart/report),
Microsoft's X-Auto-Response-Suppress ([MS-OXCMAIL] 2.2.3.2.20) and long-standing Precedence/X-Loop practice.
"""

from __future__ import annotations

import re
from email.message import Message
from email.utils import parseaddr
from typing import Literal

from channels.email.headers import header_text, mime_view, raw_value

# Precedence is non-standard, but list managers and bulk senders still set it, and RFC 3834 section 2 names
# it as a sign of automatic mail a responder may decline to answer. "auto_reply" is what some vacation
# responders put on their own replies.
_QUIET_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})

# Of the [MS-OXCMAIL] values, only these ask to suppress auto-replies. DR/NDR/RN/NRN ask to suppress delivery
# and read receipts, which a ticket acknowledgement is not.
_SUPPRESSING_XARS = frozenset({"all", "autoreply", "oof"})

# Robot senders: replying to them either bounces, lands in an unread queue, or starts a loop with their own
# responder. Mailman/majordomo conventions (owner-*, *-request, *-bounces) are included for the same reason.
_ROBOT_LOCAL_PART = re.compile(
    r"""^(?:
        mailer[-_.]?daemon | postmaster | bounces? | listserv | majordomo
        | no[-_.]?reply | do[-_.]?not[-_.]?reply | owner-.+
    )(?:[+].*)?$
    | ^.+-(?:request|bounces|owner)(?:[+].*)?$
    """,
    re.IGNORECASE | re.VERBOSE,
)


def _header(msg: Message, name: str) -> str | None:
    """The header's value as text, or None; malformed values degrade to their raw text instead of raising."""
    try:
        return header_text(msg, name)
    except (ValueError, IndexError, TypeError, AttributeError):
        # The stdlib's structured header parser has crashed on hostile input before; a loop check must not.
        return raw_value(msg, name)


def _address(value: str | None) -> str:
    """The bare lowercased address in a From/Return-Path value ('' when there is none)."""
    if value is None:
        return ""
    return parseaddr(value)[1].strip().lower()


def _check_headers(msg: Message) -> str | None:
    """Reasons that come straight from headers the sender set to say "this is automatic"."""
    auto_submitted = _header(msg, "Auto-Submitted")
    if auto_submitted is not None:
        keyword = auto_submitted.split(";", 1)[0].strip().lower()
        if keyword != "no":
            return f"Auto-Submitted: {keyword or '(empty)'}"
    precedence = (_header(msg, "Precedence") or "").strip().lower()
    if precedence in _QUIET_PRECEDENCE:
        return f"Precedence: {precedence}"
    if _header(msg, "X-Loop") is not None:
        return "X-Loop header present"
    xars = _header(msg, "X-Auto-Response-Suppress")
    if xars is not None:
        values = {v.strip().lower() for v in xars.split(",")}
        hit = sorted(values & _SUPPRESSING_XARS)
        if hit:
            return f"X-Auto-Response-Suppress: {', '.join(hit)}"
    for list_header in ("List-Id", "List-Unsubscribe"):
        if _header(msg, list_header) is not None:
            return f"mailing list message ({list_header})"
    ctype = mime_view(msg).get_content_type()
    if ctype in ("multipart/report", "message/delivery-status"):
        return f"delivery/feedback report ({ctype})"
    return None


def _in_domains(address: str, our_domains: frozenset[str]) -> bool:
    domain = address.rpartition("@")[2].rstrip(".")
    return any(domain == d or domain.endswith("." + d) for d in (d.lower().strip(".") for d in our_domains))


def _check_sender(msg: Message, our_domains: frozenset[str]) -> str | None:
    """Reasons that come from who sent the message."""
    return_path = _header(msg, "Return-Path")
    if return_path is not None and return_path.strip() in ("<>", ""):
        return "null sender (Return-Path: <>)"
    sender = _address(_header(msg, "From"))
    if not sender:
        return "no From address"
    if _in_domains(sender, our_domains):
        # Our own mail coming back (a forward, a misconfigured alias) would otherwise ping-pong forever.
        return f"sender {sender} is in one of our domains"
    for address in (sender, _address(return_path)):
        local = address.rpartition("@")[0]
        if local and _ROBOT_LOCAL_PART.match(local):
            return f"robot sender {address}"
    return None


def auto_reply_suppressed(msg: Message, *, our_domains: frozenset[str]) -> str | None:
    """Why carehub must not auto-reply (acknowledge) to msg, or None when an auto-reply is fine."""
    return _check_headers(msg) or _check_sender(msg, our_domains)


def outgoing_auto_headers(kind: Literal["auto-replied", "auto-generated"], loop_token: str) -> dict[str, str]:
    """Headers for mail carehub sends automatically, so other responders (and other carehubs) stay quiet.

    Auto-Submitted is the RFC 3834 signal; X-Auto-Response-Suppress: All covers Exchange/Outlook, which ignores
    Auto-Submitted for its own OOF replies; X-Loop carries our token so we recognise our own mail coming back.
    No Precedence header: it was never standardised (Auto-Submitted is the standard signal), "auto_reply" is
    honoured by no responder we can rely on, and "bulk" would hurt the deliverability of replies to citizens.
    """
    if not loop_token or any(c in loop_token for c in "\r\n"):
        # A newline here would let a caller inject headers into our own outgoing mail.
        raise ValueError("loop_token must be a non-empty single line")
    return {
        "Auto-Submitted": kind,
        "X-Auto-Response-Suppress": "All",
        "X-Loop": loop_token,
    }
