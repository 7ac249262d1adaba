"""Signed tokens for the links in alert mail (unsubscribe, one-click unsubscribe, manage): a purpose and a record id,
signed with CAREHUB_ALERTS_LINK_SECRET, so a link works with no cookie and no lookup table, and cannot be forged or
turned to another record. They do not expire: an unsubscribe link must work for as long as the mail exists."""

from __future__ import annotations

import base64
import hashlib
import hmac

from carehub.settings import Settings

_SIG_BYTES = 16
UNSUBSCRIBE = "unsubscribe"  # purpose: a subscription id, in an alert's unsubscribe link and List-Unsubscribe
CONFIRM = "confirm"  # purpose: an address id, in a subscription's confirmation link (with its code)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signature(settings: Settings, purpose: str, value: int) -> bytes:
    key = settings.alerts_link_secret.get_secret_value().encode()
    return hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).digest()[:_SIG_BYTES]


def sign(settings: Settings, purpose: str, value: int) -> str:
    """A URL-safe token for (purpose, value)."""
    return f"{value}.{_b64(_signature(settings, purpose, value))}"


def verify(settings: Settings, purpose: str, token: str) -> int | None:
    """The value the token was signed for, or None if it was not signed by us for this purpose."""
    value_text, _, signature = token.partition(".")
    if not value_text.isdigit() or len(value_text) > 18 or not signature:
        return None
    value = int(value_text)
    expected = _b64(_signature(settings, purpose, value))
    return value if hmac.compare_digest(expected, signature) else None
