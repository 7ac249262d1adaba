"""Answering a ticket on another channel than the one it is on (an SMS ticket answered by email, a chat by SMS):
which of the resident's addresses the reply goes to. Only an address the resident gave us (CASL): one they wrote
from, or one they typed at the start of a chat; the caller refuses an opted-out or bouncing one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.chat import repository as chats
from carehub.chat import service as chat
from carehub.contacts import repository as contacts
from carehub.db import AnyRow, UTCDateTime
from carehub.models import ContactAddress, Ticket
from carehub.problems import Problem
from carehub.settings import Settings
from carehub.tickets.reference import format_reference
from channels.base import ChannelKind

ADDRESSES = ContactAddress.__table__  # type: ignore[attr-defined]
TICKETS = Ticket.__table__  # type: ignore[attr-defined]

_WHAT = {ChannelKind.SMS: "a mobile number", ChannelKind.EMAIL: "an email address"}


async def address_for(
    conn: AsyncConnection, settings: Settings, ticket: AnyRow, channel: ChannelKind, now: datetime
) -> contacts.Address:
    """Where a reply to this ticket on `channel` goes; 409 (saying why) if the resident gave us nowhere there."""
    reference = format_reference(settings.ticket_prefix, ticket.id)
    conversation = await chats.latest_for_ticket(conn, ticket.id) if ticket.channel == ChannelKind.CHAT.value else None
    if channel is ChannelKind.CHAT:
        found = None if conversation is None else await contacts.address_by_value(conn, channel, conversation.key)
        if found is None:
            raise Problem(409, f"{reference} did not come from a web chat, so a reply cannot go to one.")
        return found[0]
    given = None
    if conversation is not None:
        given = conversation.given_phone if channel is ChannelKind.SMS else conversation.given_email
    if given is not None:
        # Typed by the resident in this very chat: the address they asked to be reached at. Kept on the contact
        # (unless another contact has it already: contacts are merged only by an agent, on purpose).
        address, _ = await chat.adopt_address(conn, ticket.contact_id, channel, given, now)
        return address
    found_id = await most_recently_used(conn, ticket.contact_id, channel)
    if found_id is None:
        raise Problem(
            409,
            f"The resident has not given us {_WHAT.get(channel, channel.value)}, so this reply cannot go by "
            f"{channel.value} (we write only to addresses residents gave us). Reply on the ticket's own channel.",
        )
    return await contacts.address_by_id(conn, found_id)


async def most_recently_used(conn: AsyncConnection, contact_id: int, channel: ChannelKind) -> int | None:
    """The contact's address on this channel whose tickets heard from the resident last (newest address if none)."""
    used_at = func.max(func.coalesce(TICKETS.c.last_inbound_at, TICKETS.c.created_at), type_=UTCDateTime()).label(
        "used_at"
    )
    rows = list(
        await conn.execute(
            select(ADDRESSES.c.id, used_at)
            .outerjoin(TICKETS, TICKETS.c.address_id == ADDRESSES.c.id)
            .where(ADDRESSES.c.contact_id == contact_id, ADDRESSES.c.channel == channel.value)
            .group_by(ADDRESSES.c.id)
        )
    )
    if not rows:
        return None
    best = max(rows, key=lambda r: (r.used_at is not None, r.used_at.timestamp() if r.used_at else 0.0, r.id))
    return int(best.id)
