"""What a resident receives for an alert, in their language: the SMS text (with the sender named and how to stop,
as CASL asks) and the email (subject, text and HTML, unsubscribe link, List-Unsubscribe one-click headers).
One place, used both by the composer's preview (segments are counted on exactly what will be sent) and by
delivery."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from carehub.messaging.templates import MessageTemplates
from carehub.models import AlertKind
from carehub.settings import Settings
from carehub.subscriptions import tokens
from channels.base import OutboundEmail
from channels.email.loops import outgoing_auto_headers

DEFAULT_LANGUAGE = "en"
SUBJECT_CHARS = 80
LANGUAGES = ("en", "fr")

# Said before the text of an update or an all-clear, so a resident knows it follows an earlier alert.
_KIND_PREFIX = {
    AlertKind.UPDATE: {"en": "Update: ", "fr": "Mise à jour : "},
    AlertKind.ALL_CLEAR: {"en": "All clear: ", "fr": "Fin de l'alerte : "},
}
# After every SMS: how to stop (GSM-7 only in both languages: one accented letter outside it doubles the cost).
_SMS_STOP = {"en": "Reply STOP to end.", "fr": "Répondez ARRET pour ne plus les recevoir."}


def content_for(content: Mapping[str, Any], language: str | None) -> tuple[str, Mapping[str, str]]:
    """(language, parts) to send to a resident who prefers `language`: theirs if the alert has it, else English."""
    if language and language in content:
        return language, content[language]
    return DEFAULT_LANGUAGE, content[DEFAULT_LANGUAGE]


def kind_prefix(kind: AlertKind, language: str) -> str:
    return _KIND_PREFIX.get(kind, {}).get(language, "")


def sms_text(settings: Settings, content: Mapping[str, Any], language: str | None, kind: AlertKind) -> str:
    """The whole SMS: "<city>: <update prefix><text> Reply STOP to end." """
    lang, parts = content_for(content, language)
    return f"{settings.city_name}: {kind_prefix(kind, lang)}{parts['sms'].strip()} {_SMS_STOP[lang]}"


def email_parts(parts: Mapping[str, str]) -> tuple[str, str]:
    """(subject, body) of the mail: the alert's own, or for an SMS-only alert sent by email as a fallback, its SMS
    text with its first sentence as the subject."""
    if parts.get("email_subject") and parts.get("email_body"):
        return parts["email_subject"].strip(), parts["email_body"].strip()
    text = parts["sms"].strip()
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    return (first if len(first) <= SUBJECT_CHARS else first[: SUBJECT_CHARS - 1].rstrip() + "…"), text


def unsubscribe_url(settings: Settings, subscription_id: int) -> str:
    token = tokens.sign(settings, tokens.UNSUBSCRIBE, subscription_id)
    return f"{settings.public_url.rstrip('/')}/alerts/unsubscribe/{token}"


def email(
    settings: Settings,
    templates: MessageTemplates,
    *,
    content: Mapping[str, Any],
    language: str | None,
    kind: AlertKind,
    topic_name: Mapping[str, str],
    subscription_id: int,
    message_id: str,
) -> OutboundEmail:
    """The alert's mail for one subscription: its unsubscribe link in the text and in List-Unsubscribe, with
    List-Unsubscribe-Post so mail clients can unsubscribe in one click (RFC 8058: a cookieless POST)."""
    lang, parts = content_for(content, language)
    subject, body = email_parts(parts)
    url = unsubscribe_url(settings, subscription_id)
    heading = f"{kind_prefix(kind, lang)}{subject}"
    text, html = templates.render_email(
        "alert",
        lang,
        heading=heading,
        body=body,
        topic_name=topic_name.get(lang, topic_name[DEFAULT_LANGUAGE]),
        unsubscribe_url=url,
        city_name=settings.city_name,
        city_postal_address=settings.city_postal_address,
        city_phone=settings.city_phone,
        city_website=settings.city_website,
    )
    headers = {
        **outgoing_auto_headers("auto-generated", settings.email_from_address),
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    return OutboundEmail(
        message_id=message_id, subject=f"{settings.city_name}: {heading}", text=text, html=html, headers=headers
    )
