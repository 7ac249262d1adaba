"""Standard Webhooks signatures (standardwebhooks.com): HMAC-SHA256 over "{id}.{timestamp}.{body}" with the
endpoint's secret, sent as "v1,<base64>" in the webhook-signature header."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def signature(secret: str, event_id: str, timestamp: int, body: str) -> str:
    """The webhook-signature header's value for this delivery."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{event_id}.{timestamp}.{body}".encode()
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")
