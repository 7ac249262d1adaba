"""Routing queries, in SQLAlchemy Core: rules, what a ticket looked like on arrival, and who can take it."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.db import AnyRow, insert_or_ignore
from carehub.models import (
    ACTIVE_TICKET_STATUSES,
    Agent,
    AgentTeam,
    Contact,
    Message,
    Role,
    RoutingRule,
    Ticket,
    TicketLabel,
    TicketStatus,
)
from carehub.routing.rules import Arrival

RULES = RoutingRule.__table__  # type: ignore[attr-defined]
TICKETS = Ticket.__table__  # type: ignore[attr-defined]
MESSAGES = Message.__table__  # type: ignore[attr-defined]
CONTACTS = Contact.__table__  # type: ignore[attr-defined]
LABELS = TicketLabel.__table__  # type: ignore[attr-defined]
AGENTS = Agent.__table__  # type: ignore[attr-defined]
TEAMS = AgentTeam.__table__  # type: ignore[attr-defined]
ACTIVE = [s.value for s in ACTIVE_TICKET_STATUSES]


# ---- rules ------------------------------------------------------------------------------------------------


async def list_rules(conn: AsyncConnection, *, active_only: bool = False) -> list[AnyRow]:
    query = select(RULES).order_by(RULES.c.position, RULES.c.id)
    if active_only:
        query = query.where(RULES.c.is_active.is_(True))
    return list((await conn.execute(query)).all())


async def get_rule(conn: AsyncConnection, rule_id: int) -> AnyRow | None:
    return (await conn.execute(select(RULES).where(RULES.c.id == rule_id))).one_or_none()


async def create_rule(conn: AsyncConnection, values: dict[str, Any], created_by: int, now: datetime) -> AnyRow:
    return (
        await conn.execute(insert(RULES).values(**values, created_by=created_by, created_at=now).returning(*RULES.c))
    ).one()


async def update_rule(conn: AsyncConnection, rule_id: int, values: dict[str, Any]) -> AnyRow:
    return (await conn.execute(update(RULES).where(RULES.c.id == rule_id).values(**values).returning(*RULES.c))).one()


async def delete_rule(conn: AsyncConnection, rule_id: int) -> None:
    await conn.execute(delete(RULES).where(RULES.c.id == rule_id))


async def contact_exists(conn: AsyncConnection, contact_id: int) -> bool:
    return (await conn.execute(select(CONTACTS.c.id).where(CONTACTS.c.id == contact_id))).first() is not None


# ---- arrival ----------------------------------------------------------------------------------------------


async def take_unrouted(conn: AsyncConnection, ticket_id: int, now: datetime) -> bool:
    """Mark the ticket routed if nobody has: the one caller that gets True routes it (a second run, a racing
    sweep on another replica, changes nothing). On PostgreSQL the row stays locked until commit."""
    result = await conn.execute(
        update(TICKETS).where(TICKETS.c.id == ticket_id, TICKETS.c.routed_at.is_(None)).values(routed_at=now)
    )
    return result.rowcount == 1


async def arrival_of(conn: AsyncConnection, ticket_id: int) -> tuple[AnyRow, Arrival]:
    ticket = (
        await conn.execute(
            select(TICKETS, CONTACTS.c.language)
            .join(CONTACTS, CONTACTS.c.id == TICKETS.c.contact_id)
            .where(TICKETS.c.id == ticket_id)
        )
    ).one()
    first = (
        await conn.execute(
            select(MESSAGES.c.body)
            .where(MESSAGES.c.ticket_id == ticket_id, MESSAGES.c.direction == "in")
            .order_by(MESSAGES.c.created_at, MESSAGES.c.id)
            .limit(1)
        )
    ).scalar_one_or_none()
    return ticket, Arrival(
        channel=ticket.channel,
        language=ticket.language,
        contact_id=ticket.contact_id,
        subject=ticket.subject,
        first_message=first,
    )


async def add_labels(conn: AsyncConnection, ticket_id: int, labels: Collection[str]) -> None:
    if labels:
        await conn.execute(
            insert_or_ignore(conn, LABELS).values([{"ticket_id": ticket_id, "label": x} for x in labels])
        )


async def unrouted(
    conn: AsyncConnection, *, created_before: datetime, created_after: datetime, limit: int
) -> list[int]:
    query = (
        select(TICKETS.c.id)
        .where(
            TICKETS.c.routed_at.is_(None),
            TICKETS.c.created_at < created_before,
            TICKETS.c.created_at >= created_after,
        )
        .order_by(TICKETS.c.id)
        .limit(limit)
    )
    return [int(i) for i in (await conn.execute(query)).scalars()]


# ---- assignment -------------------------------------------------------------------------------------------


def _load(agent_id: Any) -> Any:
    return (
        select(func.count())
        .select_from(TICKETS)
        .where(TICKETS.c.assignee_id == agent_id, TICKETS.c.status.in_(ACTIVE))
        .scalar_subquery()
    )


async def candidates(conn: AsyncConnection, team: str | None, online: Collection[int]) -> list[int]:
    """Online, active agents (role agent) who can take a ticket of this team and have room for it, longest
    waiting first: never assigned, then the oldest last assignment, then by id."""
    if not online:
        return []
    query = (
        select(AGENTS.c.id)
        .where(
            AGENTS.c.id.in_(sorted(online)),
            AGENTS.c.is_active.is_(True),
            AGENTS.c.role == Role.AGENT.value,
            _load(AGENTS.c.id) < AGENTS.c.capacity,
        )
        .order_by(case((AGENTS.c.last_assigned_at.is_(None), 0), else_=1), AGENTS.c.last_assigned_at, AGENTS.c.id)
    )
    if team is not None:
        query = query.where(exists().where(and_(TEAMS.c.agent_id == AGENTS.c.id, TEAMS.c.team == team)))
    return [int(i) for i in (await conn.execute(query)).scalars()]


async def lock_agent_load(conn: AsyncConnection, agent_id: int) -> tuple[int, int]:
    """(active tickets, capacity) of the agent, counted with the agent's row locked (PostgreSQL) so that two
    replicas assigning at once take turns: the second counts what the first committed."""
    query = select(AGENTS.c.capacity).where(AGENTS.c.id == agent_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    capacity = int((await conn.execute(query)).scalar_one())
    load = int((await conn.execute(select(_load(agent_id)))).scalar_one())
    return load, capacity


async def latest_assignment(conn: AsyncConnection) -> datetime | None:
    found: datetime | None = (await conn.execute(select(func.max(AGENTS.c.last_assigned_at)))).scalar_one()
    return found


async def assign(conn: AsyncConnection, ticket_id: int, agent_id: int, stamp: datetime, now: datetime) -> bool:
    """Give an unassigned active ticket to the agent, and move the agent to the back of the rotation."""
    result = await conn.execute(
        update(TICKETS)
        .where(TICKETS.c.id == ticket_id, TICKETS.c.assignee_id.is_(None), TICKETS.c.status.in_(ACTIVE))
        .values(assignee_id=agent_id, updated_at=now)
    )
    if result.rowcount != 1:
        return False
    await conn.execute(update(AGENTS).where(AGENTS.c.id == agent_id).values(last_assigned_at=stamp))
    return True


async def waiting(conn: AsyncConnection, limit: int) -> list[AnyRow]:
    """Routed, active, unassigned tickets, oldest first."""
    query = (
        select(TICKETS.c.id, TICKETS.c.team)
        .where(
            TICKETS.c.assignee_id.is_(None),
            TICKETS.c.status.in_(ACTIVE),
            TICKETS.c.routed_at.is_not(None),
            TICKETS.c.merged_into_id.is_(None),
        )
        .order_by(TICKETS.c.created_at, TICKETS.c.id)
        .limit(limit)
    )
    return list((await conn.execute(query)).all())


async def unanswered_held_offline(conn: AsyncConnection, online: Collection[int], limit: int) -> list[AnyRow]:
    """New, unanswered tickets assigned to agents who are not online: (id, assignee_id), oldest first."""
    query = (
        select(TICKETS.c.id, TICKETS.c.assignee_id)
        .where(
            TICKETS.c.assignee_id.is_not(None),
            TICKETS.c.status == TicketStatus.NEW.value,
            TICKETS.c.first_response_at.is_(None),
        )
        .order_by(TICKETS.c.created_at, TICKETS.c.id)
        .limit(limit)
    )
    if online:
        query = query.where(TICKETS.c.assignee_id.not_in(sorted(online)))
    return list((await conn.execute(query)).all())


async def release(conn: AsyncConnection, ticket_id: int, agent_id: int, now: datetime) -> bool:
    """Back to the pool, if it is still that agent's, new and unanswered (nobody acted on it meanwhile)."""
    result = await conn.execute(
        update(TICKETS)
        .where(
            TICKETS.c.id == ticket_id,
            TICKETS.c.assignee_id == agent_id,
            TICKETS.c.status == TicketStatus.NEW.value,
            TICKETS.c.first_response_at.is_(None),
        )
        .values(assignee_id=None, updated_at=now)
    )
    return result.rowcount == 1


def next_stamp(now: datetime, latest: datetime | None) -> datetime:
    """Assignments made in the same instant still queue agents in order: each stamp is later than the last."""
    if latest is not None and latest >= now:
        return latest + timedelta(microseconds=1)
    return now
