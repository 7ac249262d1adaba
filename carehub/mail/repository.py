"""Email queries: the raw inbound archive, attachments, thread lookup by Message-ID, and per-address mail state."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.db import AnyRow
from carehub.models import Attachment, ContactAddress, InboundEmail, InboundEmailStatus, Message, Outbox
from channels.base import ChannelKind

INBOUND = InboundEmail.__table__  # type: ignore[attr-defined]
ATTACHMENTS = Attachment.__table__  # type: ignore[attr-defined]
ADDRESSES = ContactAddress.__table__  # type: ignore[attr-defined]
MESSAGES = Message.__table__  # type: ignore[attr-defined]
OUTBOX = Outbox.__table__  # type: ignore[attr-defined]
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
        .returning(INBOUND.c.raw, INBOUND.c.envelope_from, INBOUND.c.source)
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


async def thread_message_ids(conn: AsyncConnection, ticket_id: int, limit: int = 20) -> list[str]:
    """The ticket's email Message-IDs, oldest first (the newest `limit`): an outgoing reply's References."""
    inbound = select(
        MESSAGES.c.provider_id.label("mid"), MESSAGES.c.created_at.label("at"), MESSAGES.c.id.label("seq")
    ).where(
        MESSAGES.c.ticket_id == ticket_id,
        MESSAGES.c.channel == EMAIL,
        MESSAGES.c.direction == "in",
        MESSAGES.c.provider_id.is_not(None),
    )
    outbound = (
        select(OUTBOX.c.provider_id.label("mid"), MESSAGES.c.created_at.label("at"), MESSAGES.c.id.label("seq"))
        .join(MESSAGES, MESSAGES.c.id == OUTBOX.c.message_id)
        .where(MESSAGES.c.ticket_id == ticket_id, OUTBOX.c.channel == EMAIL, OUTBOX.c.provider_id.is_not(None))
    )
    both = inbound.union_all(outbound).subquery()
    rows = await conn.execute(select(both.c.mid).order_by(both.c.at.desc(), both.c.seq.desc()).limit(limit))
    return [r.mid for r in rows][::-1]


async def latest_inbound(conn: AsyncConnection, ticket_id: int) -> AnyRow | None:
    """The resident's newest email on the ticket: what a reply answers (In-Reply-To, "Re:" subject)."""
    return (
        await conn.execute(
            select(MESSAGES.c.provider_id, MESSAGES.c.meta)
            .where(MESSAGES.c.ticket_id == ticket_id, MESSAGES.c.channel == EMAIL, MESSAGES.c.direction == "in")
            .order_by(MESSAGES.c.id.desc())
            .limit(1)
        )
    ).one_or_none()


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


async def undeliverable_reason(conn: AsyncConnection, address: str) -> str | None:
    row = (
        await conn.execute(
            select(ADDRESSES.c.undeliverable_at, ADDRESSES.c.undeliverable_reason).where(
                and_(ADDRESSES.c.channel == EMAIL, ADDRESSES.c.address == address)
            )
        )
    ).one_or_none()
    if row is None or row.undeliverable_at is None:
        return None
    return str(row.undeliverable_reason or "earlier mail to this address bounced")


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
            select(ATTACHMENTS, MESSAGES.c.ticket_id, MESSAGES.c.meta)
            .join(MESSAGES, MESSAGES.c.id == ATTACHMENTS.c.message_id)
            .where(ATTACHMENTS.c.id == attachment_id)
        )
    ).one_or_none()
