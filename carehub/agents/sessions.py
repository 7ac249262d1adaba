"""Browser sessions for the console, and the sign-in throttle. A session cookie holds a random token; the table
holds its SHA-256, the agent, a CSRF token, and when it ends (idle expiry, sign-out, or the agent disabled)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.agents.repository import AGENTS, token_digest
from carehub.db import AnyRow
from carehub.models import AgentSession, LoginFailure

SESSIONS = AgentSession.__table__  # type: ignore[attr-defined]
FAILURES = LoginFailure.__table__  # type: ignore[attr-defined]
SEEN_GRANULARITY = timedelta(minutes=1)


async def start(
    conn: AsyncConnection, agent_id: int, *, ttl: timedelta, now: datetime, ip: str | None, user_agent: str | None
) -> tuple[str, str]:
    """A new session: returns (cookie token, CSRF token)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    await conn.execute(
        insert(SESSIONS).values(
            agent_id=agent_id,
            token_hash=token_digest(token),
            csrf_token=csrf,
            created_at=now,
            last_seen_at=now,
            expires_at=now + ttl,
            ip=ip,
            user_agent=(user_agent or "")[:300] or None,
        )
    )
    return token, csrf


async def agent_for_session(conn: AsyncConnection, token: str, *, ttl: timedelta, now: datetime) -> AnyRow | None:
    """The active agent of a live session (with the session's id and CSRF token); slides the idle expiry."""
    digest = token_digest(token)
    row = (
        await conn.execute(
            select(AGENTS, SESSIONS.c.id.label("session_id"), SESSIONS.c.csrf_token, SESSIONS.c.last_seen_at)
            .join(SESSIONS, SESSIONS.c.agent_id == AGENTS.c.id)
            .where(
                SESSIONS.c.token_hash == digest,
                SESSIONS.c.revoked_at.is_(None),
                SESSIONS.c.expires_at > now,
                AGENTS.c.is_active.is_(True),
            )
        )
    ).one_or_none()
    if row is not None and row.last_seen_at < now - SEEN_GRANULARITY:
        await conn.execute(
            update(SESSIONS).where(SESSIONS.c.id == row.session_id).values(last_seen_at=now, expires_at=now + ttl)
        )
    return row


async def end(conn: AsyncConnection, session_id: int, now: datetime) -> None:
    await conn.execute(
        update(SESSIONS).where(SESSIONS.c.id == session_id, SESSIONS.c.revoked_at.is_(None)).values(revoked_at=now)
    )


async def end_all(conn: AsyncConnection, agent_id: int, now: datetime) -> int:
    result = await conn.execute(
        update(SESSIONS).where(SESSIONS.c.agent_id == agent_id, SESSIONS.c.revoked_at.is_(None)).values(revoked_at=now)
    )
    return int(result.rowcount)


async def recent_failures(conn: AsyncConnection, *, email: str, ip: str, since: datetime) -> tuple[int, int]:
    """Failed sign-ins since `since`: (for this address, from this client)."""
    by_email = select(func.count()).where(FAILURES.c.email == email, FAILURES.c.at >= since).scalar_subquery()
    by_ip = select(func.count()).where(FAILURES.c.ip == ip, FAILURES.c.at >= since).scalar_subquery()
    row = (await conn.execute(select(by_email.label("email"), by_ip.label("ip")))).one()
    return int(row.email), int(row.ip)


async def record_failure(conn: AsyncConnection, *, email: str, ip: str, now: datetime) -> None:
    await conn.execute(insert(FAILURES).values(email=email, ip=ip, at=now))


async def forget_failures(conn: AsyncConnection, email: str) -> None:
    await conn.execute(delete(FAILURES).where(FAILURES.c.email == email))
