"""What a status link lets its holder do, inside the caller's transaction (never commits): read the page
(audited as the link's holder) and add a message, which lands on the ticket as if it came by the ticket's own
channel, so agents see it in their queue and answer it where they always would."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from carehub import audit
from carehub.chat import repository as chats
from carehub.chat import service as chat
from carehub.db import Tx
from carehub.inbound.service import subject_from
from carehub.realtime.broker import Event
from carehub.realtime.events import inbound_events
from carehub.settings import Settings
from carehub.status import links
from carehub.status.conversation import View, ticket, ticket_of_message, view
from carehub.tickets import repository as tickets
from channels.base import ChannelKind

MAX_MESSAGE_CHARS = 2000  # as a chat message
NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
PROVIDER_PREFIX = "status-page:"  # a form's nonce as the message's provider id: a double submit stores one


class Unavailable(Exception):
    """The link opens nothing (unknown, expired, revoked): the caller shows one page for all three."""


class Duplicate(Exception):
    """This form was sent before (the caller rolls back and shows the outcome of the first)."""


@dataclass(frozen=True)
class Added:
    ticket_id: int
    message_id: int
    new_ticket: bool
    link: links.Issued | None  # a new request's own link (the page moves to it)
    events: list[tuple[str, Event]]


async def open_link(tx: Tx, settings: Settings, token: str, now: datetime, *, read: bool) -> tuple[links.Link, View]:
    """The live link and what it shows; `read` records the reading (audit, last use). Raises Unavailable."""
    link = await links.find(tx.conn, token)
    if link is None or not link.live(now):
        raise Unavailable
    shown = await view(tx.conn, settings, link.ticket_id, now)
    if shown is None:  # the ticket's foreign key makes this impossible
        raise Unavailable
    if read:
        await links.touch(tx.conn, link.id, now)
        await audit.record(
            tx.conn,
            actor=links.actor(link.id),
            action="read",
            entity_type="ticket",
            entity_id=shown.ticket_id,
            now=now,
            detail={"via": "status page"},
        )
    return link, shown


async def add_message(
    tx: Tx, settings: Settings, link: links.Link, shown: View, *, body: str, nonce: str, now: datetime
) -> Added:
    """Store the resident's message: on the ticket shown (reopening it as an inbound text would), or, when that
    is closed, on a new ticket linked to it. Raises Duplicate for a form sent before."""
    conn = tx.conn
    row = await ticket(conn, shown.ticket_id)
    if row is None or shown.accepts == "none":
        raise Unavailable
    channel = ChannelKind(row.channel)
    provider_id = PROVIDER_PREFIX + nonce
    new_ticket, issued = False, None
    ticket_id = row.id
    if shown.accepts == "new":
        ticket_id = await tickets.create_ticket(
            conn,
            contact_id=row.contact_id,
            address_id=row.address_id,
            channel=channel,
            subject=subject_from(body),
            now=now,
            linked_ticket_id=row.id,
        )
        new_ticket = True
        issued = await links.issue(conn, settings, ticket_id, now)
    events: list[tuple[str, Event]]
    conversation = await chats.latest_for_ticket(conn, ticket_id) if channel is ChannelKind.CHAT else None
    if conversation is not None:  # numbered in the chat, so the widget and the agents see it in order
        appended = await chat.resident_message(
            tx, settings, conversation, cid=provider_id, body=body, now=now, origin="status-page"
        )
        if appended.duplicate:
            raise Duplicate
        message_id, events = appended.message_id, []  # resident_message staged its events
    else:
        found = await tickets.add_inbound_message(
            conn,
            ticket_id=ticket_id,
            channel=channel,
            body=body,
            provider_id=provider_id,
            meta={"via": "status page", "status_link_id": link.id},
            now=now,
        )
        if found is None:
            raise Duplicate
        message_id = found
        if not new_ticket:
            await tickets.note_inbound(conn, ticket_id, now)
        events = list(
            inbound_events(
                settings.ticket_prefix,
                ticket_id=ticket_id,
                message_id=message_id,
                channel=channel.value,
                body=body,
                new_ticket=new_ticket,
                at=now,
            )
        )
    await audit.record(
        conn,
        actor=links.actor(link.id),
        action="message",
        entity_type="ticket",
        entity_id=ticket_id,
        now=now,
        detail={"message_id": message_id, **({"linked_to": row.id} if new_ticket else {})},
    )
    return Added(ticket_id, message_id, new_ticket, issued, events)


async def earlier(tx: Tx, channel: ChannelKind, nonce: str) -> int | None:
    """The ticket a form with this nonce already reached (a double submit), if any."""
    return await ticket_of_message(tx.conn, channel, PROVIDER_PREFIX + nonce)
