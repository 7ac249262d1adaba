"""Ticket and message queries, in SQLAlchemy Core: the inbound path runs these per webhook, so no ORM overhead."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.db import AnyRow, insert_or_ignore
from carehub.models import Message, Outbox, Ticket, TicketNote, TicketStatus
from channels.base import ChannelKind

TICKETS = Ticket.__table__  # type: ignore[attr-defined]
MESSAGES = Message.__table__  # type: ignore[attr-defined]
OUTBOX = Outbox.__table__  # type: ignore[attr-defined]
NOTES = TicketNote.__table__  # type: ignore[attr-defined]


async def create_ticket(
    conn: AsyncConnection,
    *,
    contact_id: int,
    address_id: int,
    channel: ChannelKind,
    subject: str | None,
    now: datetime,
    linked_ticket_id: int | None = None,
) -> int:
    result = await conn.execute(
        insert(TICKETS)
        .values(
            linked_ticket_id=linked_ticket_id,
            contact_id=contact_id,
            address_id=address_id,
            channel=channel.value,
            status=TicketStatus.NEW.value,
            priority="normal",
            subject=subject,
            created_at=now,
            updated_at=now,
            last_inbound_at=now,
        )
        .returning(TICKETS.c.id)
    )
    return int(result.scalar_one())


async def add_inbound_message(
    conn: AsyncConnection,
    *,
    ticket_id: int,
    channel: ChannelKind,
    body: str,
    provider_id: str,
    meta: dict[str, Any] | None,
    now: datetime,
) -> int | None:
    """Store an inbound message; None if this provider id was stored before (a redelivered webhook)."""
    result = await conn.execute(
        insert_or_ignore(conn, MESSAGES)
        .values(
            ticket_id=ticket_id,
            direction="in",
            channel=channel.value,
            body=body,
            provider_id=provider_id,
            meta=meta or None,
            created_at=now,
        )
        .returning(MESSAGES.c.id)
    )
    found = result.scalar_one_or_none()
    return None if found is None else int(found)


async def add_outbound_message(
    conn: AsyncConnection,
    *,
    ticket_id: int,
    channel: ChannelKind,
    body: str,
    author_agent_id: int | None,
    now: datetime,
    idempotency_key: str | None = None,
    meta: dict[str, Any] | None = None,
) -> int:
    result = await conn.execute(
        insert(MESSAGES)
        .values(
            ticket_id=ticket_id,
            direction="out",
            channel=channel.value,
            body=body,
            author_agent_id=author_agent_id,
            idempotency_key=idempotency_key,
            meta=meta,
            created_at=now,
        )
        .returning(MESSAGES.c.id)
    )
    return int(result.scalar_one())


async def message_by_idempotency_key(conn: AsyncConnection, agent_id: int, key: str) -> int | None:
    found = (
        await conn.execute(
            select(MESSAGES.c.id).where(MESSAGES.c.author_agent_id == agent_id, MESSAGES.c.idempotency_key == key)
        )
    ).scalar_one_or_none()
    return None if found is None else int(found)


async def note_inbound(conn: AsyncConnection, ticket_id: int, now: datetime) -> None:
    """A resident wrote again: a ticket waiting on them, or resolved recently, is open again."""
    reopen = TICKETS.c.status.in_([TicketStatus.PENDING.value, TicketStatus.RESOLVED.value])
    await conn.execute(
        update(TICKETS)
        .where(TICKETS.c.id == ticket_id)
        .values(
            last_inbound_at=now,
            updated_at=now,
            status=case((reopen, TicketStatus.OPEN.value), else_=TICKETS.c.status),
            resolved_at=case((reopen, None), else_=TICKETS.c.resolved_at),
        )
    )


async def note_reply(conn: AsyncConnection, ticket_id: int, now: datetime) -> None:
    await conn.execute(
        update(TICKETS)
        .where(TICKETS.c.id == ticket_id)
        .values(
            updated_at=now,
            first_response_at=func.coalesce(TICKETS.c.first_response_at, now),
            status=case((TICKETS.c.status == TicketStatus.NEW.value, TicketStatus.OPEN.value), else_=TICKETS.c.status),
        )
    )


async def get_ticket(conn: AsyncConnection, ticket_id: int) -> AnyRow | None:
    return (await conn.execute(select(TICKETS).where(TICKETS.c.id == ticket_id))).one_or_none()


async def messages_with_delivery(conn: AsyncConnection, ticket_id: int) -> list[AnyRow]:
    query = (
        select(
            MESSAGES.c.id,
            MESSAGES.c.direction,
            MESSAGES.c.channel,
            MESSAGES.c.body,
            MESSAGES.c.author_agent_id,
            MESSAGES.c.created_at,
            MESSAGES.c.meta,
            OUTBOX.c.status.label("delivery_status"),
            OUTBOX.c.attempts,
            OUTBOX.c.error_code,
            OUTBOX.c.last_error,
            OUTBOX.c.sent_at,
            OUTBOX.c.updated_at,
        )
        .outerjoin(OUTBOX, OUTBOX.c.message_id == MESSAGES.c.id)
        .where(MESSAGES.c.ticket_id == ticket_id)
        .order_by(MESSAGES.c.created_at, MESSAGES.c.id)
    )
    return list((await conn.execute(query)).all())


async def update_ticket(conn: AsyncConnection, ticket_id: int, values: dict[str, Any]) -> None:
    await conn.execute(update(TICKETS).where(TICKETS.c.id == ticket_id).values(**values))


async def claim_ticket(conn: AsyncConnection, ticket_id: int, agent_id: int, now: datetime) -> bool:
    """Assign to the agent only if nobody has it: two agents clicking 'claim' together cannot both win."""
    result = await conn.execute(
        update(TICKETS)
        .where(TICKETS.c.id == ticket_id, TICKETS.c.assignee_id.is_(None))
        .values(assignee_id=agent_id, updated_at=now)
    )
    return result.rowcount == 1


async def teams_of(conn: AsyncConnection, ticket_ids: Collection[int]) -> dict[int, str | None]:
    rows = await conn.execute(select(TICKETS.c.id, TICKETS.c.team).where(TICKETS.c.id.in_(sorted(ticket_ids))))
    return {r.id: r.team for r in rows}


async def add_note(
    conn: AsyncConnection, *, ticket_id: int, author_agent_id: int, body: str, mentions: list[int], now: datetime
) -> AnyRow:
    return (
        await conn.execute(
            insert(NOTES)
            .values(ticket_id=ticket_id, author_agent_id=author_agent_id, body=body, mentions=mentions, created_at=now)
            .returning(*NOTES.c)
        )
    ).one()


async def notes_of(conn: AsyncConnection, ticket_id: int) -> list[AnyRow]:
    return list(await conn.execute(select(NOTES).where(NOTES.c.ticket_id == ticket_id).order_by(NOTES.c.id)))
