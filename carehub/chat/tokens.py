"""The resident's resume token: which conversation, until when, signed by the hub (HMAC-SHA256).

The widget keeps it in localStorage to continue after a reload. It names the conversation by its random key (128
bits), not its row id, and carries an expiry; without the hub's secret neither can be forged or extended."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

KEY_BYTES = 16


def new_key() -> str:
    return secrets.token_urlsafe(KEY_BYTES)


@dataclass(frozen=True)
class TokenClaims:
    key: str
    expires: int  # unix seconds


def _sign(secret: bytes, payload: str) -> str:
    digest = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issue(secret: str, key: str, expires: datetime) -> str:
    payload = f"{key}.{int(expires.timestamp())}"
    return f"{payload}.{_sign(secret.encode(), payload)}"


def verify(secret: str, token: str, now: datetime) -> TokenClaims | None:
    """The claims of a genuine, unexpired token; None for anything else."""
    if len(token) > 200:
        return None
    payload, _, signature = token.rpartition(".")
    key, _, expires = payload.partition(".")
    if not (key and expires.isdigit() and signature):
        return None
    if not hmac.compare_digest(signature, _sign(secret.encode(), payload)):
        return None
    if int(expires) < now.timestamp():
        return None
    return TokenClaims(key=key, expires=int(expires))
