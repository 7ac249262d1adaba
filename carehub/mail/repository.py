"""Email queries: the raw inbound archive, attachments, thread lookup by Message-ID, and per-address mail state."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, cast, insert, null, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.contacts.repository import BOUNCED
from carehub.db import AnyRow
from carehub.models import Attachment, ContactAddress, InboundEmail, InboundEmailStatus, Message, Outbox, Ticket
from channels.base import ChannelKind

INBOUND = InboundEmail.__table__  # type: ignore[attr-defined]
ATTACHMENTS = Attachment.__table__  # type: ignore[attr-defined]
ADDRESSES = ContactAddress.__table__  # type: ignore[attr-defined]
MESSAGES = Message.__table__  # type: ignore[attr-defined]
OUTBOX = Outbox.__table__  # type: ignore[attr-defined]
TICKETS = Ticket.__table__  # type: ignore[attr-defined]
EMAIL = ChannelKind.EMAIL.value


async def store_raw(
    conn: AsyncConnection,
    raw: bytes,
    *,
    source: str,
    envelope_from: str | None,
    envelope_to: Sequence[str],
    now: datetime,
) -> int:
    sender, recipients = envelope_values(envelope_from, envelope_to)
    result = await conn.execute(
        insert(INBOUND)
        .values(
            received_at=now,
            source=source,
            envelope_from=sender,
            envelope_to=recipients,
            size=len(raw),
            raw=raw,
            status=InboundEmailStatus.RECEIVED.value,
            attempts=1,  # the caller processes it straight away
        )
        .returning(INBOUND.c.id)
    )
    return int(result.scalar_one())


def envelope_values(envelope_from: str | None, envelope_to: Sequence[str]) -> tuple[str | None, str | None]:
    """The SMTP envelope as stored: the sender ("" for the null sender <>), and the recipients joined."""
    return (None if envelope_from is None else envelope_from[:320]), (", ".join(envelope_to)[:1000] or None)


async def begin_processing(conn: AsyncConnection, inbound_id: int) -> AnyRow | None:
    """Count an attempt at a stored message still waiting: its raw bytes and envelope sender, or None if it was
    processed already."""
    result = await conn.execute(
        update(INBOUND)
        .where(INBOUND.c.id == inbound_id, INBOUND.c.status == InboundEmailStatus.RECEIVED.value)
        .values(attempts=INBOUND.c.attempts + 1)
        .returning(INBOUND.c.raw, INBOUND.c.envelope_from, INBOUND.c.source, INBOUND.c.attempts)
    )
    return result.one_or_none()


async def settle(
    conn: AsyncConnection, inbound_id: int, status: InboundEmailStatus, now: datetime, **values: Any
) -> None:
    if values.get("reason") is not None:
        values["reason"] = values["reason"][:1000]
    await conn.execute(
        update(INBOUND).where(INBOUND.c.id == inbound_id).values(status=status.value, processed_at=now, **values)
    )


async def stale_received(conn: AsyncConnection, older_than: datetime, limit: int) -> list[int]:
    rows = await conn.execute(
        select(INBOUND.c.id)
        .where(INBOUND.c.status == InboundEmailStatus.RECEIVED.value, INBOUND.c.received_at < older_than)
        .order_by(INBOUND.c.id)
        .limit(limit)
    )
    return [int(r.id) for r in rows]


SUMMARY_COLUMNS = (
    INBOUND.c.id,
    INBOUND.c.received_at,
    INBOUND.c.source,
    INBOUND.c.envelope_from,
    INBOUND.c.envelope_to,
    INBOUND.c.size,
    INBOUND.c.status,
    INBOUND.c.reason,
    INBOUND.c.header_message_id,
    INBOUND.c.subject,
    INBOUND.c.from_address,
    INBOUND.c.ticket_id,
    INBOUND.c.outbox_id,
    INBOUND.c.attempts,
    INBOUND.c.processed_at,
)


async def list_inbound(
    conn: AsyncConnection, status: InboundEmailStatus | None, before_id: int | None, limit: int
) -> list[AnyRow]:
    query = select(*SUMMARY_COLUMNS).order_by(INBOUND.c.id.desc()).limit(limit)
    if status is not None:
        query = query.where(INBOUND.c.status == status.value)
    if before_id is not None:
        query = query.where(INBOUND.c.id < before_id)
    return list(await conn.execute(query))


async def get_inbound(conn: AsyncConnection, inbound_id: int) -> AnyRow | None:
    return (await conn.execute(select(*SUMMARY_COLUMNS).where(INBOUND.c.id == inbound_id))).one_or_none()


async def raw_of(conn: AsyncConnection, inbound_id: int) -> bytes | None:
    found = (await conn.execute(select(INBOUND.c.raw).where(INBOUND.c.id == inbound_id))).scalar_one_or_none()
    return None if found is None else bytes(found)


async def requeue(conn: AsyncConnection, inbound_id: int) -> bool:
    """Put an archived message back in line for processing (after a fix or a configuration change)."""
    result = await conn.execute(
        update(INBOUND)
        .where(INBOUND.c.id == inbound_id, INBOUND.c.status == InboundEmailStatus.UNPROCESSABLE.value)
        .values(status=InboundEmailStatus.RECEIVED.value, processed_at=None)
    )
    return result.rowcount == 1


# ---- threading ----------------------------------------------------------------------------------------------


async def tickets_by_message_ids(conn: AsyncConnection, message_ids: Sequence[str]) -> dict[str, int]:
    """The ticket each of these Message-IDs belongs to: mail residents sent us, and mail we sent them."""
    if not message_ids:
        return {}
    inbound = select(MESSAGES.c.provider_id, MESSAGES.c.ticket_id).where(
        MESSAGES.c.channel == EMAIL, MESSAGES.c.provider_id.in_(message_ids)
    )
    outbound = (
        select(OUTBOX.c.provider_id, MESSAGES.c.ticket_id)
        .join(MESSAGES, MESSAGES.c.id == OUTBOX.c.message_id)
        .where(OUTBOX.c.channel == EMAIL, OUTBOX.c.provider_id.in_(message_ids))
    )
    rows = await conn.execute(inbound.union_all(outbound))
    return {r.provider_id: int(r.ticket_id) for r in rows}


@dataclass
class Thread:
    """A ticket's email thread: its Message-IDs oldest first (an outgoing reply's References), and the resident's
    newest message (what the reply answers: In-Reply-To, and the subject it continues)."""

    message_ids: list[str] = field(default_factory=list)
    latest_inbound_id: str | None = None
    latest_inbound_subject: str | None = None


async def email_threads(conn: AsyncConnection, ticket_ids: Collection[int], limit: int = 20) -> dict[int, Thread]:
    """The email threads of these tickets, in one query."""
    inbound = select(
        MESSAGES.c.ticket_id,
        MESSAGES.c.provider_id.label("mid"),
        MESSAGES.c.created_at.label("at"),
        MESSAGES.c.id.label("seq"),
        MESSAGES.c.meta,
    ).where(
        MESSAGES.c.ticket_id.in_(ticket_ids),
        MESSAGES.c.channel == EMAIL,
        MESSAGES.c.direction == "in",
        MESSAGES.c.provider_id.is_not(None),
    )
    outbound = (
        select(
            MESSAGES.c.ticket_id,
            OUTBOX.c.provider_id,
            MESSAGES.c.created_at,
            MESSAGES.c.id,
            cast(null(), JSON),
        )
        .join(MESSAGES, MESSAGES.c.id == OUTBOX.c.message_id)
        .where(MESSAGES.c.ticket_id.in_(ticket_ids), OUTBOX.c.channel == EMAIL, OUTBOX.c.provider_id.is_not(None))
    )
    both = inbound.union_all(outbound).subquery()
    rows = await conn.execute(select(both).order_by(both.c.ticket_id, both.c.at, both.c.seq))
    threads: dict[int, Thread] = {ticket_id: Thread() for ticket_id in ticket_ids}
    for row in rows:
        thread = threads[row.ticket_id]
        thread.message_ids.append(row.mid)
        if row.meta is not None:  # only inbound rows carry meta
            thread.latest_inbound_id = row.mid
            thread.latest_inbound_subject = row.meta.get("subject")
    for thread in threads.values():
        del thread.message_ids[:-limit]
    return threads


async def outbox_by_message_id(conn: AsyncConnection, message_id: str) -> AnyRow | None:
    return (
        await conn.execute(
            select(OUTBOX.c.id, OUTBOX.c.to_address, MESSAGES.c.ticket_id)
            .join(MESSAGES, MESSAGES.c.id == OUTBOX.c.message_id)
            .where(OUTBOX.c.channel == EMAIL, OUTBOX.c.provider_id == message_id)
        )
    ).one_or_none()


async def note_outbox_problem(
    conn: AsyncConnection, outbox_id: int, *, code: str | None, error: str, now: datetime
) -> None:
    """A temporary delivery problem the receiving side reported (4.x.x): recorded, the status left alone."""
    await conn.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id == outbox_id)
        .values(error_code=(code or None) and code[:32], last_error=error[:1000], updated_at=now)
    )


# ---- per-address mail state --------------------------------------------------------------------------------


async def mark_undeliverable(conn: AsyncConnection, address: str, reason: str, now: datetime) -> bool:
    result = await conn.execute(
        update(ADDRESSES)
        .where(ADDRESSES.c.channel == EMAIL, ADDRESSES.c.address == address, ADDRESSES.c.undeliverable_at.is_(None))
        .values(undeliverable_at=now, undeliverable_reason=reason[:300])
    )
    return result.rowcount == 1


async def confirm_deliverable(conn: AsyncConnection, address_id: int) -> None:
    """The resident wrote from this address, so it works again: lift a bounce's hold on it."""
    await conn.execute(
        update(ADDRESSES)
        .where(ADDRESSES.c.id == address_id, ADDRESSES.c.undeliverable_at.is_not(None))
        .values(undeliverable_at=None, undeliverable_reason=None)
    )


async def take_auto_reply_slot(conn: AsyncConnection, address_id: int, now: datetime, interval: timedelta) -> bool:
    """True (and the slot is taken) if no automatic reply went to this address within `interval`."""
    result = await conn.execute(
        update(ADDRESSES)
        .where(
            ADDRESSES.c.id == address_id,
            or_(ADDRESSES.c.last_auto_reply_at.is_(None), ADDRESSES.c.last_auto_reply_at <= now - interval),
        )
        .values(last_auto_reply_at=now)
    )
    return result.rowcount == 1


async def undeliverable(conn: AsyncConnection, addresses: Collection[str]) -> dict[str, str]:
    """Which of these addresses bounced for good (not to be mailed until the resident writes again), and why."""
    rows = await conn.execute(
        select(ADDRESSES.c.address, ADDRESSES.c.undeliverable_reason).where(
            ADDRESSES.c.channel == EMAIL,
            ADDRESSES.c.address.in_(addresses),
            ADDRESSES.c.undeliverable_at.is_not(None),
        )
    )
    return {r.address: r.undeliverable_reason or BOUNCED for r in rows}


# ---- attachments ----------------------------------------------------------------------------------------------


async def add_attachment(
    conn: AsyncConnection,
    *,
    message_id: int,
    filename: str,
    content_type: str,
    size: int,
    blob_key: str,
    now: datetime,
) -> None:
    await conn.execute(
        insert(ATTACHMENTS).values(
            message_id=message_id,
            filename=filename,
            content_type=content_type[:200],
            size=size,
            blob_key=blob_key,
            created_at=now,
        )
    )


async def attachments_of(conn: AsyncConnection, message_ids: Sequence[int]) -> list[AnyRow]:
    if not message_ids:
        return []
    rows = await conn.execute(
        select(
            ATTACHMENTS.c.id,
            ATTACHMENTS.c.message_id,
            ATTACHMENTS.c.filename,
            ATTACHMENTS.c.content_type,
            ATTACHMENTS.c.size,
        )
        .where(ATTACHMENTS.c.message_id.in_(message_ids))
        .order_by(ATTACHMENTS.c.id)
    )
    return list(rows)


async def attachment(conn: AsyncConnection, attachment_id: int) -> AnyRow | None:
    return (
        await conn.execute(
            select(ATTACHMENTS, MESSAGES.c.ticket_id, MESSAGES.c.meta, TICKETS.c.team)
            .join(MESSAGES, MESSAGES.c.id == ATTACHMENTS.c.message_id)
            .join(TICKETS, TICKETS.c.id == MESSAGES.c.ticket_id)
            .where(ATTACHMENTS.c.id == attachment_id)
        )
    ).one_or_none()
