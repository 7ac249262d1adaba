"""The survey's words: the question on each channel (templates/messages/<channel>/csat.*), its link, and the
context the email templates need when the mail is composed for delivery."""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

from carehub.messaging.templates import MessageTemplates
from carehub.settings import Settings
from channels.base import ChannelKind

SURVEY_PATH = "/csat/"
KEY_BYTES = 32
# token_urlsafe(32): 43 characters of the URL-safe base64 alphabet.
_KEY = r"[A-Za-z0-9_-]{43}"
KEY_PATTERN = re.compile(rf"^{_KEY}$")
_LINK_IN_TEXT = re.compile(rf"(https?://\S+?{re.escape(SURVEY_PATH)}{_KEY})")


def new_key() -> str:
    return secrets.token_urlsafe(KEY_BYTES)


def hash_key(key: str) -> str:
    """What is stored: the key is 256 random bits, so a plain SHA-256 cannot be reversed by guessing."""
    return hashlib.sha256(key.encode()).hexdigest()


def survey_url(settings: Settings, key: str) -> str:
    return f"{settings.public_url.rstrip('/')}{SURVEY_PATH}{key}"


def email_context(settings: Settings, reference: str, contact_name: str | None) -> dict[str, Any]:
    """What every resident-facing email template is given about the city (as mail.ingest.ack_context)."""
    return {
        "city_name": settings.city_name,
        "reference": reference,
        "contact_name": contact_name,
        "sender_name": settings.email_from_name,
        "city_postal_address": settings.city_postal_address,
        "city_phone": settings.city_phone,
        "city_website": settings.city_website,
    }


def question(
    templates: MessageTemplates,
    settings: Settings,
    channel: ChannelKind,
    language: str,
    *,
    reference: str,
    url: str,
    contact_name: str | None,
) -> str:
    """The text stored on the ticket and sent: for email, the text part (the HTML part is made from the same
    template at delivery, see mail_context)."""
    if channel is ChannelKind.EMAIL:
        context = email_context(settings, reference, contact_name)
        text, _ = templates.render_email("csat", language, **context, survey_url=url)
        return text
    language = language if language in templates.languages(channel, "csat") else "en"
    return templates.render(channel, "csat", language, reference=reference, survey_url=url)


def mail_context(body: str) -> dict[str, Any]:
    """The survey email's own template context, read back from its stored text: the link's key is stored
    nowhere else (only its hash)."""
    found = _LINK_IN_TEXT.search(body)
    if found is None:
        raise ValueError("a survey email whose text has no survey link")
    return {"survey_url": found.group(1)}
