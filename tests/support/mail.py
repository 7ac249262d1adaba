"""Building residents' mail and handing it to a hub: over the raw-MIME webhook, or to its SMTP listener."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import httpx

from carehub.clock import utcnow

WEBHOOK_SECRET = "test-email-webhook-secret"
CITY_CARE = "care@pickering.example"


def resident_mail(
    sender: str,
    subject: str,
    body: str,
    *,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    to: str = CITY_CARE,
    headers: Mapping[str, str] | None = None,
    name: str | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{name} <{sender}>" if name else sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = message_id or make_msgid(domain=sender.rpartition("@")[2])
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = " ".join(references)
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(body)
    return msg.as_bytes()


async def post_email(
    client: httpx.AsyncClient, raw: bytes, *, secret: str = WEBHOOK_SECRET, content_type: str = "message/rfc822"
) -> httpx.Response:
    return await client.post(
        "/webhooks/email",
        content=raw,
        headers={"Authorization": f"Bearer {secret}", "Content-Type": content_type},
    )
