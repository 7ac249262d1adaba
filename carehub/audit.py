"""The privacy audit trail: one row per create, change, read or export of a resident's records, in the same
transaction as the action it records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.models import AuditEvent

AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]


def agent_actor(agent_id: int) -> str:
    return f"agent:{agent_id}"


async def agent_on_ticket(
    conn: AsyncConnection,
    agent_id: int,
    action: str,
    ticket_id: int,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    await by_agent(conn, agent_id, action, "ticket", ticket_id, now, detail)


async def by_agent(
    conn: AsyncConnection,
    agent_id: int,
    action: str,
    entity_type: str,
    entity_id: int,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    """What an agent did to a record (or, for "stream" and "sign_in", on their own account)."""
    await record(
        conn,
        actor=agent_actor(agent_id),
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        now=now,
        detail=detail,
    )


async def record(
    conn: AsyncConnection,
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: int,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        insert(AUDIT).values(
            at=now, actor=actor, action=action, entity_type=entity_type, entity_id=entity_id, detail=detail
        )
    )
