"""Contact and address queries: who a message is from, and the conversation they already have open."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.models import ACTIVE_TICKET_STATUSES, Contact, ContactAddress, Ticket, TicketStatus
from channels.base import ChannelKind

CONTACTS = Contact.__table__  # type: ignore[attr-defined]
ADDRESSES = ContactAddress.__table__  # type: ignore[attr-defined]
TICKETS = Ticket.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Sender:
    contact_id: int
    address_id: int
    language: str
    opted_out: bool
    ticket_id: int | None
    ticket_status: TicketStatus | None


async def find_sender(
    conn: AsyncConnection, channel: ChannelKind, address: str, *, reopen_since: datetime
) -> Sender | None:
    """The sender's contact, and their newest ticket that a new message should join (if any), in one query."""
    joinable = or_(
        TICKETS.c.status.in_([s.value for s in ACTIVE_TICKET_STATUSES]),
        and_(TICKETS.c.status == TicketStatus.RESOLVED.value, TICKETS.c.resolved_at >= reopen_since),
    )
    row = (
        await conn.execute(
            select(
                ADDRESSES.c.contact_id,
                ADDRESSES.c.id,
                ADDRESSES.c.opted_out_at,
                CONTACTS.c.language,
                TICKETS.c.id.label("ticket_id"),
                TICKETS.c.status,
            )
            .join(CONTACTS, CONTACTS.c.id == ADDRESSES.c.contact_id)
            .outerjoin(TICKETS, and_(TICKETS.c.address_id == ADDRESSES.c.id, joinable))
            .where(ADDRESSES.c.channel == channel.value, ADDRESSES.c.address == address)
            .order_by(TICKETS.c.id.desc())
            .limit(1)
        )
    ).one_or_none()
    if row is None:
        return None
    return Sender(
        contact_id=row.contact_id,
        address_id=row.id,
        language=row.language,
        opted_out=row.opted_out_at is not None,
        ticket_id=row.ticket_id,
        ticket_status=None if row.status is None else TicketStatus(row.status),
    )


async def create_sender(
    conn: AsyncConnection,
    channel: ChannelKind,
    address: str,
    now: datetime,
    *,
    language: str = "en",
    display_name: str | None = None,
) -> Sender:
    contact_id = (
        await conn.execute(
            insert(CONTACTS)
            .values(language=language, display_name=display_name, created_at=now)
            .returning(CONTACTS.c.id)
        )
    ).scalar_one()
    address_id = (
        await conn.execute(
            insert(ADDRESSES)
            .values(contact_id=contact_id, channel=channel.value, address=address, created_at=now)
            .returning(ADDRESSES.c.id)
        )
    ).scalar_one()
    return Sender(
        contact_id=contact_id,
        address_id=address_id,
        language=language,
        opted_out=False,
        ticket_id=None,
        ticket_status=None,
    )


async def addresses_of(conn: AsyncConnection, contact_id: int) -> list[str]:
    rows = await conn.execute(
        select(ADDRESSES.c.channel, ADDRESSES.c.address)
        .where(ADDRESSES.c.contact_id == contact_id)
        .order_by(ADDRESSES.c.id)
    )
    return [f"{r.channel}:{r.address}" for r in rows]


BOUNCED = "earlier mail to this address bounced"  # the reason given when a bounce recorded none


@dataclass(frozen=True)
class Address:
    id: int
    channel: ChannelKind
    address: str
    opted_out: bool
    undeliverable_reason: str | None


async def address_by_id(conn: AsyncConnection, address_id: int) -> Address:
    row = (await conn.execute(select(ADDRESSES).where(ADDRESSES.c.id == address_id))).one()
    return Address(
        id=row.id,
        channel=ChannelKind(row.channel),
        address=row.address,
        opted_out=row.opted_out_at is not None,
        undeliverable_reason=None if row.undeliverable_at is None else (row.undeliverable_reason or BOUNCED),
    )


async def address_by_value(conn: AsyncConnection, channel: ChannelKind, address: str) -> tuple[Address, int] | None:
    """The address row for (channel, address) and the contact it belongs to, if anyone has used it."""
    row = (
        await conn.execute(
            select(ADDRESSES).where(ADDRESSES.c.channel == channel.value, ADDRESSES.c.address == address)
        )
    ).one_or_none()
    if row is None:
        return None
    return await address_by_id(conn, row.id), row.contact_id


async def add_address(conn: AsyncConnection, contact_id: int, channel: ChannelKind, address: str, now: datetime) -> int:
    return int(
        (
            await conn.execute(
                insert(ADDRESSES)
                .values(contact_id=contact_id, channel=channel.value, address=address, created_at=now)
                .returning(ADDRESSES.c.id)
            )
        ).scalar_one()
    )


async def merge_into(conn: AsyncConnection, from_contact: int, into_contact: int) -> None:
    """One resident, two contact rows (a chat that gave an address someone already used): keep into_contact,
    with every address and ticket of from_contact, so the agent sees one history."""
    await conn.execute(update(ADDRESSES).where(ADDRESSES.c.contact_id == from_contact).values(contact_id=into_contact))
    await conn.execute(update(TICKETS).where(TICKETS.c.contact_id == from_contact).values(contact_id=into_contact))
    await conn.execute(delete(CONTACTS).where(CONTACTS.c.id == from_contact))
