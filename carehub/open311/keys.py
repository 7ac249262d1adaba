"""Open311 API keys: an app posts service requests with one. Issued by admins, shown once, kept only as SHA-256
(256-bit random keys need no slow hash), revocable."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.db import AnyRow
from carehub.models import Open311ApiKey

KEYS = Open311ApiKey.__table__  # type: ignore[attr-defined]
PREFIX = "o311_"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def issue(conn: AsyncConnection, label: str, created_by: int, now: datetime) -> tuple[int, str]:
    """A new key: (its id, the key itself, which is not stored and cannot be shown again)."""
    key = PREFIX + secrets.token_urlsafe(32)
    key_id = (
        await conn.execute(
            insert(KEYS)
            .values(key_hash=_hash(key), label=label, created_by=created_by, created_at=now)
            .returning(KEYS.c.id)
        )
    ).scalar_one()
    return int(key_id), key


async def verify(conn: AsyncConnection, key: str, now: datetime) -> int | None:
    """The id of this live key (and its use noted), or None."""
    if not key.startswith(PREFIX) or len(key) > 100:
        return None
    found = await conn.execute(
        update(KEYS)
        .where(KEYS.c.key_hash == _hash(key), KEYS.c.revoked_at.is_(None))
        .values(last_used_at=now)
        .returning(KEYS.c.id)
    )
    key_id = found.scalar_one_or_none()
    return None if key_id is None else int(key_id)


async def all_keys(conn: AsyncConnection) -> list[AnyRow]:
    return list(await conn.execute(select(KEYS).order_by(KEYS.c.id)))


async def revoke(conn: AsyncConnection, key_id: int, now: datetime) -> bool:
    result = await conn.execute(
        update(KEYS).where(KEYS.c.id == key_id, KEYS.c.revoked_at.is_(None)).values(revoked_at=now)
    )
    return bool(result.rowcount)
