"""Status links: `{public_url}/s/{token}`, a random 128-bit capability of which only the SHA-256 is stored.

Nothing is signed: a token is unguessable and means something only while its hash is a live row, so a forged or
altered token matches no row, and expiry and revocation are per link, with no key to keep or rotate."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.models import StatusLink
from carehub.settings import Settings

LINKS = StatusLink.__table__  # type: ignore[attr-defined]

PATH = "/s/"
TOKEN_BYTES = 16  # 128 bits
TOKEN_CHARS = 22  # token_urlsafe(16): 22 characters of the URL-safe base64 alphabet, no padding
_TOKEN = rf"[A-Za-z0-9_-]{{{TOKEN_CHARS}}}"
TOKEN_PATTERN = re.compile(rf"^{_TOKEN}$")
_LINK_IN_TEXT = re.compile(rf"https?://[^\s<>\"']+?{re.escape(PATH)}{_TOKEN}(?![A-Za-z0-9_-])")
# Where the link goes in an acknowledgement rendered once per process (as inbound.service.REFERENCE_SLOT).
SLOT = "{status_link}"


@dataclass(frozen=True)
class Issued:
    """A new link: its row, and its URL (shown once: only the hash is kept)."""

    id: int
    url: str


@dataclass(frozen=True)
class Link:
    """A stored link, and whether it still opens the page."""

    id: int
    ticket_id: int
    expires_at: datetime
    revoked_at: datetime | None

    def live(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """What is stored: the token is 128 random bits, so a plain SHA-256 cannot be reversed by guessing."""
    return hashlib.sha256(token.encode()).hexdigest()


def url_for(settings: Settings, token: str) -> str:
    return f"{settings.public_url.rstrip('/')}{PATH}{token}"


def expiry(settings: Settings, now: datetime) -> datetime:
    return now + timedelta(days=settings.status_link_days)


def link_in(text: str) -> str | None:
    """The status link a stored message carries (an email acknowledgement is re-rendered at delivery, and its
    link is kept nowhere else)."""
    found = _LINK_IN_TEXT.search(text)
    return None if found is None else found.group(0)


async def issue(conn: AsyncConnection, settings: Settings, ticket_id: int, now: datetime) -> Issued:
    token = new_token()
    link_id = (
        await conn.execute(
            insert(LINKS)
            .values(ticket_id=ticket_id, token_hash=hash_token(token), created_at=now, expires_at=expiry(settings, now))
            .returning(LINKS.c.id)
        )
    ).scalar_one()
    return Issued(int(link_id), url_for(settings, token))


async def find(conn: AsyncConnection, token: str) -> Link | None:
    """The link this token opens (live or not); None for anything that is not one of ours."""
    if not TOKEN_PATTERN.match(token):
        return None
    row = (
        await conn.execute(
            select(LINKS.c.id, LINKS.c.ticket_id, LINKS.c.expires_at, LINKS.c.revoked_at).where(
                LINKS.c.token_hash == hash_token(token)
            )
        )
    ).one_or_none()
    return None if row is None else Link(row.id, row.ticket_id, row.expires_at, row.revoked_at)


async def touch(conn: AsyncConnection, link_id: int, now: datetime) -> None:
    await conn.execute(update(LINKS).where(LINKS.c.id == link_id).values(last_used_at=now))


async def revoke_all(conn: AsyncConnection, ticket_id: int, agent_id: int | None, now: datetime) -> list[int]:
    """End every live link of the ticket; returns their ids."""
    result = await conn.execute(
        update(LINKS)
        .where(LINKS.c.ticket_id == ticket_id, LINKS.c.revoked_at.is_(None), LINKS.c.expires_at > now)
        .values(revoked_at=now, revoked_by=agent_id)
        .returning(LINKS.c.id)
    )
    return sorted(int(i) for i in result.scalars())


def actor(link_id: int) -> str:
    """Who the audit trail says acted: the holder of this link (the resident, as far as we can know)."""
    return f"status-link:{link_id}"
