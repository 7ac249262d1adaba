"""Open311 request queries: a request is a ticket plus its open311_requests row; its status, dates and public
notes are read from the ticket, so they are always the queue's own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.db import AnyRow
from carehub.models import Message, Open311Request, Open311Service, Ticket, TicketStatus
from channels.base import ChannelKind

REQUESTS = Open311Request.__table__  # type: ignore[attr-defined]
SERVICES = Open311Service.__table__  # type: ignore[attr-defined]
TICKETS = Ticket.__table__  # type: ignore[attr-defined]
MESSAGES = Message.__table__  # type: ignore[attr-defined]

OPEN, CLOSED = "open", "closed"  # the only statuses GeoReport v2 knows
CLOSED_TICKET_STATUSES = (TicketStatus.RESOLVED.value, TicketStatus.CLOSED.value)


def open311_status() -> ColumnElement[str]:
    """The ticket's status as Open311 says it: resolved and closed are closed, everything else open."""
    return case((TICKETS.c.status.in_(CLOSED_TICKET_STATUSES), CLOSED), else_=OPEN)


def _public_note() -> Any:
    """The newest note staff published on the request (a reply on its open311 channel), if any."""
    return (
        select(MESSAGES.c.body)
        .where(
            MESSAGES.c.ticket_id == TICKETS.c.id,
            MESSAGES.c.direction == "out",
            MESSAGES.c.channel == ChannelKind.OPEN311.value,
        )
        .order_by(MESSAGES.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _request_view() -> Any:
    return (
        select(
            REQUESTS,
            TICKETS.c.status.label("ticket_status"),
            TICKETS.c.team,
            TICKETS.c.created_at.label("requested_at"),
            TICKETS.c.updated_at,
            TICKETS.c.resolution_due_at,
            TICKETS.c.merged_into_id,
            SERVICES.c.name.label("service_name"),
            _public_note().label("public_note"),
        )
        .join(TICKETS, TICKETS.c.id == REQUESTS.c.ticket_id)
        .join(SERVICES, SERVICES.c.code == REQUESTS.c.service_code)
    )


@dataclass(frozen=True)
class Filters:
    ticket_ids: list[int] | None  # given: these requests only, every other filter ignored (the spec's rule)
    service_codes: list[str]
    statuses: list[str]  # open, closed
    start: datetime
    end: datetime
    limit: int


async def find(conn: AsyncConnection, f: Filters) -> list[AnyRow]:
    query = _request_view()
    if f.ticket_ids is not None:
        query = query.where(REQUESTS.c.ticket_id.in_(f.ticket_ids))
    else:
        query = query.where(TICKETS.c.created_at >= f.start, TICKETS.c.created_at <= f.end)
        if f.service_codes:
            query = query.where(REQUESTS.c.service_code.in_(f.service_codes))
        if f.statuses:
            query = query.where(open311_status().in_(f.statuses))
    return list(await conn.execute(query.order_by(TICKETS.c.created_at.desc(), TICKETS.c.id.desc()).limit(f.limit)))


async def one(conn: AsyncConnection, ticket_id: int) -> AnyRow | None:
    return (await conn.execute(_request_view().where(REQUESTS.c.ticket_id == ticket_id))).one_or_none()


async def by_token(conn: AsyncConnection, token: str) -> int | None:
    found = (await conn.execute(select(REQUESTS.c.ticket_id).where(REQUESTS.c.token == token))).scalar_one_or_none()
    return None if found is None else int(found)


async def by_idempotency_key(conn: AsyncConnection, api_key_id: int, key: str) -> AnyRow | None:
    return (
        await conn.execute(
            select(REQUESTS.c.ticket_id, REQUESTS.c.token).where(
                REQUESTS.c.api_key_id == api_key_id, REQUESTS.c.idempotency_key == key
            )
        )
    ).one_or_none()


async def add(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(REQUESTS).values(**values))


async def of_ticket(conn: AsyncConnection, ticket_id: int) -> AnyRow | None:
    return (await conn.execute(select(REQUESTS).where(REQUESTS.c.ticket_id == ticket_id))).one_or_none()


async def changed_since_told(conn: AsyncConnection, limit: int) -> list[AnyRow]:
    """Requests whose Open311 status differs from the one the resident was last told of."""
    query = _request_view().where(
        or_(REQUESTS.c.notified_status.is_(None), REQUESTS.c.notified_status != open311_status())
    )
    return list(await conn.execute(query.order_by(REQUESTS.c.ticket_id).limit(limit)))


async def mark_told(conn: AsyncConnection, ticket_id: int, was: str | None, now_told: str) -> bool:
    """Record the status told, only if nobody recorded another since (so two tellers send once)."""
    told = REQUESTS.c.notified_status.is_(None) if was is None else REQUESTS.c.notified_status == was
    result = await conn.execute(
        update(REQUESTS).where(and_(REQUESTS.c.ticket_id == ticket_id, told)).values(notified_status=now_told)
    )
    return bool(result.rowcount)
