"""Webhook queries: endpoints, the event feed's cursors and source rows, and the outbox rows that are deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.db import AnyRow, insert_or_ignore
from carehub.models import Alert, EventFeedCursor, Message, Outbox, Ticket, WebhookEndpoint
from channels.base import ChannelKind, DeliveryStatus

ENDPOINTS = WebhookEndpoint.__table__  # type: ignore[attr-defined]
CURSORS = EventFeedCursor.__table__  # type: ignore[attr-defined]
OUTBOX = Outbox.__table__  # type: ignore[attr-defined]
TICKETS = Ticket.__table__  # type: ignore[attr-defined]
MESSAGES = Message.__table__  # type: ignore[attr-defined]
ALERTS = Alert.__table__  # type: ignore[attr-defined]

STAGE_CHUNK = 200  # rows per INSERT: well under SQLite's bound-parameter limit


# ---- endpoints ------------------------------------------------------------------------------------------------


async def create_endpoint(conn: AsyncConnection, values: dict[str, Any]) -> AnyRow:
    return (await conn.execute(insert(ENDPOINTS).values(**values).returning(*ENDPOINTS.c))).one()


async def get_endpoint(conn: AsyncConnection, endpoint_id: int) -> AnyRow | None:
    return (await conn.execute(select(ENDPOINTS).where(ENDPOINTS.c.id == endpoint_id))).one_or_none()


async def list_endpoints(conn: AsyncConnection) -> list[AnyRow]:
    return list((await conn.execute(select(ENDPOINTS).order_by(ENDPOINTS.c.id))).all())


async def update_endpoint(conn: AsyncConnection, endpoint_id: int, values: dict[str, Any]) -> AnyRow | None:
    result = await conn.execute(
        update(ENDPOINTS).where(ENDPOINTS.c.id == endpoint_id).values(**values).returning(*ENDPOINTS.c)
    )
    return result.one_or_none()


async def active_endpoints(conn: AsyncConnection) -> list[AnyRow]:
    query = select(ENDPOINTS.c.id, ENDPOINTS.c.url, ENDPOINTS.c.events, ENDPOINTS.c.created_at)
    return list((await conn.execute(query.where(ENDPOINTS.c.is_active.is_(True)))).all())


async def endpoints_by_id(conn: AsyncConnection, endpoint_ids: Sequence[int]) -> dict[int, AnyRow]:
    rows = await conn.execute(select(ENDPOINTS).where(ENDPOINTS.c.id.in_(sorted(set(endpoint_ids)))))
    return {int(r.id): r for r in rows}


async def deliveries(conn: AsyncConnection, endpoint_id: int, limit: int) -> list[AnyRow]:
    query = (
        select(
            OUTBOX.c.id,
            OUTBOX.c.event_id,
            OUTBOX.c.status,
            OUTBOX.c.attempts,
            OUTBOX.c.error_code,
            OUTBOX.c.last_error,
            OUTBOX.c.next_attempt_at,
            OUTBOX.c.created_at,
            OUTBOX.c.sent_at,
        )
        .where(OUTBOX.c.webhook_id == endpoint_id)
        .order_by(OUTBOX.c.id.desc())
        .limit(limit)
    )
    return list((await conn.execute(query)).all())


# ---- the event feed -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    position: datetime
    last_id: int


async def cursor(conn: AsyncConnection, source: str) -> Cursor | None:
    row = (await conn.execute(select(CURSORS).where(CURSORS.c.source == source))).one_or_none()
    return None if row is None else Cursor(row.position, row.last_id)


async def save_cursor(conn: AsyncConnection, source: str, at: Cursor) -> None:
    moved = await conn.execute(
        update(CURSORS).where(CURSORS.c.source == source).values(position=at.position, last_id=at.last_id)
    )
    if moved.rowcount == 0:
        await conn.execute(
            insert_or_ignore(conn, CURSORS).values(source=source, position=at.position, last_id=at.last_id)
        )


async def tickets_changed(
    conn: AsyncConnection, since: datetime, after: tuple[datetime, int] | None, limit: int
) -> list[AnyRow]:
    """Tickets changed at or after `since`, by (updated_at, id), after the keyset `after` if given."""
    query = select(
        TICKETS.c.id,
        TICKETS.c.status,
        TICKETS.c.priority,
        TICKETS.c.team,
        TICKETS.c.assignee_id,
        TICKETS.c.channel,
        TICKETS.c.subject,
        TICKETS.c.created_at,
        TICKETS.c.updated_at,
    ).where(TICKETS.c.updated_at >= since)
    if after is not None:
        at, last = after
        query = query.where(or_(TICKETS.c.updated_at > at, and_(TICKETS.c.updated_at == at, TICKETS.c.id > last)))
    return list((await conn.execute(query.order_by(TICKETS.c.updated_at, TICKETS.c.id).limit(limit))).all())


async def messages_after(conn: AsyncConnection, after_id: int, limit: int) -> list[AnyRow]:
    query = select(
        MESSAGES.c.id,
        MESSAGES.c.ticket_id,
        MESSAGES.c.direction,
        MESSAGES.c.channel,
        MESSAGES.c.body,
        MESSAGES.c.created_at,
    ).where(MESSAGES.c.id > after_id)
    return list((await conn.execute(query.order_by(MESSAGES.c.id).limit(limit))).all())


async def last_message_id(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.coalesce(func.max(MESSAGES.c.id), 0)))).scalar_one())


async def alerts_changed(conn: AsyncConnection, since: datetime) -> list[AnyRow]:
    """Alerts that started or finished at or after `since` (a small table: read whole windows)."""
    query = select(
        ALERTS.c.id,
        ALERTS.c.kind,
        ALERTS.c.parent_id,
        ALERTS.c.title,
        ALERTS.c.topic_id,
        ALERTS.c.area_ids,
        ALERTS.c.emergency,
        ALERTS.c.channels,
        ALERTS.c.status,
        ALERTS.c.started_at,
        ALERTS.c.finished_at,
    ).where(or_(ALERTS.c.started_at >= since, ALERTS.c.finished_at >= since))
    return list((await conn.execute(query.order_by(ALERTS.c.id))).all())


async def already_staged(
    conn: AsyncConnection, endpoint_ids: Sequence[int], event_ids: Sequence[str]
) -> set[tuple[int, str]]:
    """(endpoint id, event id) of the deliveries of these events that exist: the feed re-reads its overlap window
    every tick, and this keeps the re-read to index lookups instead of building and inserting it all again."""
    found: set[tuple[int, str]] = set()
    unique = sorted(set(event_ids))
    for start in range(0, len(unique), STAGE_CHUNK):
        rows = await conn.execute(
            select(OUTBOX.c.webhook_id, OUTBOX.c.event_id).where(
                # Both columns of uq_outbox_webhook_event, so this is index lookups.
                OUTBOX.c.webhook_id.in_(sorted(set(endpoint_ids))),
                OUTBOX.c.event_id.in_(unique[start : start + STAGE_CHUNK]),
            )
        )
        found.update((int(r.webhook_id), str(r.event_id)) for r in rows)
    return found


async def stage_deliveries(conn: AsyncConnection, rows: Sequence[dict[str, Any]], now: datetime) -> list[int]:
    """Insert delivery rows (webhook_id, event_id, to_address, body), skipping any (endpoint, event) already
    staged (INSERT ... ON CONFLICT DO NOTHING on the unique index); returns the ids of the new ones."""
    common = {
        "channel": ChannelKind.WEBHOOK.value,
        "status": DeliveryStatus.QUEUED.value,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }
    staged: list[int] = []
    for start in range(0, len(rows), STAGE_CHUNK):
        chunk = [{**common, **row} for row in rows[start : start + STAGE_CHUNK]]
        result = await conn.execute(insert_or_ignore(conn, OUTBOX).values(chunk).returning(OUTBOX.c.id))
        staged.extend(int(i) for i in result.scalars())
    return staged
