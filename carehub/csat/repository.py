"""Survey queries (SQLAlchemy Core): one row per ticket, found by ticket or by the SHA-256 of its link key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.db import AnyRow, insert_or_ignore
from carehub.models import Contact, CsatSurvey, Message, Ticket

SURVEYS = CsatSurvey.__table__  # type: ignore[attr-defined]
MESSAGES = Message.__table__  # type: ignore[attr-defined]
TICKETS = Ticket.__table__  # type: ignore[attr-defined]
CONTACTS = Contact.__table__  # type: ignore[attr-defined]


async def agent_replied(conn: AsyncConnection, ticket_id: int) -> bool:
    """Whether an agent (not an automatic message) ever wrote to the resident on this ticket."""
    query = select(
        exists().where(
            MESSAGES.c.ticket_id == ticket_id,
            MESSAGES.c.direction == "out",
            MESSAGES.c.author_agent_id.is_not(None),
        )
    )
    return bool((await conn.execute(query)).scalar_one())


async def create(
    conn: AsyncConnection, *, ticket_id: int, team: str | None, channel: str, token_hash: str, now: datetime
) -> int | None:
    """The ticket's survey; None if it has one already (the unique ticket_id refuses a second, race or not)."""
    result = await conn.execute(
        insert_or_ignore(conn, SURVEYS)
        .values(ticket_id=ticket_id, team=team, channel=channel, token_hash=token_hash, sent_at=now)
        .returning(SURVEYS.c.id)
    )
    found = result.scalar_one_or_none()
    return None if found is None else int(found)


async def by_ticket(conn: AsyncConnection, ticket_id: int) -> AnyRow | None:
    return (await conn.execute(select(SURVEYS).where(SURVEYS.c.ticket_id == ticket_id))).one_or_none()


async def by_token_hash(conn: AsyncConnection, token_hash: str) -> AnyRow | None:
    """The survey with the ticket's resident language (the page speaks it)."""
    query = (
        select(SURVEYS, CONTACTS.c.language)
        .join(TICKETS, TICKETS.c.id == SURVEYS.c.ticket_id)
        .join(CONTACTS, CONTACTS.c.id == TICKETS.c.contact_id)
        .where(SURVEYS.c.token_hash == token_hash)
    )
    return (await conn.execute(query)).one_or_none()


async def record_answer(
    conn: AsyncConnection, survey_id: int, *, rating: int, comment: str | None, now: datetime, keep_comment: bool
) -> None:
    values: dict[str, Any] = {"rating": rating, "answered_at": now}
    if not keep_comment:
        values["comment"] = comment
    await conn.execute(update(SURVEYS).where(SURVEYS.c.id == survey_id).values(**values))


async def unanswered_since(conn: AsyncConnection, ticket_id: int, since: datetime) -> AnyRow | None:
    """The ticket's survey if it is still waiting for an answer and was sent after `since`."""
    query = select(SURVEYS).where(
        and_(SURVEYS.c.ticket_id == ticket_id, SURVEYS.c.rating.is_(None), SURVEYS.c.sent_at >= since)
    )
    return (await conn.execute(query)).one_or_none()


async def others_since(conn: AsyncConnection, ticket_id: int, message_id: int, since: datetime) -> bool:
    """Whether anyone wrote on the ticket since `since` (other than message_id and our automatic messages):
    if so, the ticket was not simply waiting resolved when message_id came."""
    query = select(
        exists().where(
            MESSAGES.c.ticket_id == ticket_id,
            MESSAGES.c.id != message_id,
            MESSAGES.c.created_at > since,
            (MESSAGES.c.direction == "in") | MESSAGES.c.author_agent_id.is_not(None),
        )
    )
    return bool((await conn.execute(query)).scalar_one())


async def mark_message(conn: AsyncConnection, message_id: int, meta: dict[str, Any]) -> None:
    await conn.execute(update(MESSAGES).where(MESSAGES.c.id == message_id).values(meta=meta))


async def message_meta(conn: AsyncConnection, message_id: int) -> dict[str, Any] | None:
    value = (await conn.execute(select(MESSAGES.c.meta).where(MESSAGES.c.id == message_id))).scalar_one_or_none()
    return dict(value) if value else None


async def contact_of(conn: AsyncConnection, contact_id: int) -> AnyRow:
    return (
        await conn.execute(select(CONTACTS.c.language, CONTACTS.c.display_name).where(CONTACTS.c.id == contact_id))
    ).one()
