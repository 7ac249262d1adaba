"""Agent and API token queries. Tokens are stored as SHA-256 digests and looked up by digest."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.db import AnyRow
from carehub.models import Agent, AgentTeam, ApiToken, Role

AGENTS = Agent.__table__  # type: ignore[attr-defined]
TOKENS = ApiToken.__table__  # type: ignore[attr-defined]
TEAMS = AgentTeam.__table__  # type: ignore[attr-defined]
TOKEN_PREFIX = "chub_"  # noqa: S105 - a visible prefix so leaked tokens are recognisable, not a secret
LAST_USED_GRANULARITY = timedelta(minutes=5)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_agent(conn: AsyncConnection, *, email: str, name: str, role: Role, now: datetime) -> int:
    result = await conn.execute(
        insert(AGENTS)
        .values(email=email.lower(), name=name, role=role.value, is_active=True, created_at=now)
        .returning(AGENTS.c.id)
    )
    return int(result.scalar_one())


async def agent_by_email(conn: AsyncConnection, email: str) -> AnyRow | None:
    return (await conn.execute(select(AGENTS).where(AGENTS.c.email == email.lower()))).one_or_none()


async def agent_by_id(conn: AsyncConnection, agent_id: int) -> AnyRow | None:
    return (await conn.execute(select(AGENTS).where(AGENTS.c.id == agent_id))).one_or_none()


async def any_agents(conn: AsyncConnection) -> bool:
    return (await conn.execute(select(AGENTS.c.id).limit(1))).first() is not None


async def issue_token(conn: AsyncConnection, agent_id: int, label: str, now: datetime) -> str:
    token = new_token()
    await conn.execute(
        insert(TOKENS).values(agent_id=agent_id, token_hash=token_digest(token), label=label, created_at=now)
    )
    return token


async def agent_for_token(conn: AsyncConnection, token: str, now: datetime) -> AnyRow | None:
    """The active agent a live token belongs to; also records (coarsely) that the token was used."""
    digest = token_digest(token)
    row = (
        await conn.execute(
            select(AGENTS)
            .join(TOKENS, TOKENS.c.agent_id == AGENTS.c.id)
            .where(TOKENS.c.token_hash == digest, TOKENS.c.revoked_at.is_(None), AGENTS.c.is_active.is_(True))
        )
    ).one_or_none()
    if row is not None:
        await conn.execute(
            update(TOKENS)
            .where(
                TOKENS.c.token_hash == digest,
                or_(TOKENS.c.last_used_at.is_(None), TOKENS.c.last_used_at < now - LAST_USED_GRANULARITY),
            )
            .values(last_used_at=now)
        )
    return row


async def teams_of(conn: AsyncConnection, agent_id: int) -> frozenset[str]:
    return frozenset((await conn.execute(select(TEAMS.c.team).where(TEAMS.c.agent_id == agent_id))).scalars())


async def set_teams(conn: AsyncConnection, agent_id: int, teams: frozenset[str]) -> None:
    await conn.execute(delete(TEAMS).where(TEAMS.c.agent_id == agent_id))
    if teams:
        await conn.execute(insert(TEAMS), [{"agent_id": agent_id, "team": t} for t in sorted(teams)])


async def active_by_handles(conn: AsyncConnection, handles: set[str]) -> list[AnyRow]:
    """Active agents named by @handles: a whole email address, or the part before the @."""
    if not handles:
        return []
    rows = await conn.execute(select(AGENTS).where(AGENTS.c.is_active.is_(True)))
    return [r for r in rows if r.email in handles or r.email.partition("@")[0] in handles]


async def active_agents(conn: AsyncConnection) -> list[AnyRow]:
    """Every active account, by name (a city has dozens, not thousands)."""
    return list(await conn.execute(select(AGENTS).where(AGENTS.c.is_active.is_(True)).order_by(AGENTS.c.name)))
