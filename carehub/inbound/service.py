"""Turns a verified inbound message into ticket state: dedupe, find or create the contact, join or open a ticket,
and stage the acknowledgement. Runs inside the caller's transaction and never commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from carehub.contacts import repository as contacts
from carehub.db import Tx
from carehub.messaging.templates import MessageTemplates
from carehub.outbox import repository as outbox
from carehub.settings import Settings
from carehub.tickets import repository as tickets
from carehub.tickets.reference import format_reference
from channels.base import InboundMessage

SUBJECT_CHARS = 80


class DuplicateMessage(Exception):
    """This provider message was stored before; the caller rolls back so the retry changes nothing."""


@dataclass(frozen=True)
class Ingested:
    ticket_id: int
    message_id: int
    new_ticket: bool
    ack_outbox_id: int | None


def subject_from(body: str) -> str | None:
    first_line = body.strip().splitlines()[0] if body.strip() else ""
    if len(first_line) <= SUBJECT_CHARS:
        return first_line or None
    return first_line[: SUBJECT_CHARS - 1].rstrip() + "…"


async def ingest(
    tx: Tx, msg: InboundMessage, *, settings: Settings, templates: MessageTemplates, now: datetime
) -> Ingested:
    conn = tx.conn
    await contacts.lock_address(conn, msg.channel, msg.from_address)
    reopen_since = now - timedelta(days=settings.reopen_window_days)
    sender = await contacts.find_sender(
        conn, msg.channel, msg.from_address, reopen_since=reopen_since
    ) or await contacts.create_sender(conn, msg.channel, msg.from_address, now)
    ticket_id = sender.ticket_id
    new_ticket = ticket_id is None
    if ticket_id is None:
        ticket_id = await tickets.create_ticket(
            conn,
            contact_id=sender.contact_id,
            address_id=sender.address_id,
            channel=msg.channel,
            subject=subject_from(msg.body),
            now=now,
        )
    message_id = await tickets.add_inbound_message(
        conn,
        ticket_id=ticket_id,
        channel=msg.channel,
        body=msg.body,
        provider_id=msg.provider_id,
        meta=dict(msg.meta),
        now=now,
    )
    if message_id is None:
        raise DuplicateMessage(msg.provider_id)
    if not new_ticket:
        await tickets.note_inbound(conn, ticket_id, now)
        return Ingested(ticket_id, message_id, new_ticket=False, ack_outbox_id=None)
    if sender.opted_out:
        return Ingested(ticket_id, message_id, new_ticket=True, ack_outbox_id=None)

    ack = templates.render(
        msg.channel,
        "ack",
        sender.language,
        city_name=settings.city_name,
        reference=format_reference(settings.ticket_prefix, ticket_id),
    )
    ack_message_id = await tickets.add_outbound_message(
        conn,
        ticket_id=ticket_id,
        channel=msg.channel,
        body=ack,
        author_agent_id=None,
        now=now,
        meta={"auto": "ack"},
    )
    ack_outbox_id = await outbox.stage(
        conn, message_id=ack_message_id, channel=msg.channel, to_address=msg.from_address, now=now
    )
    tx.staged_outbox.append(ack_outbox_id)
    return Ingested(ticket_id, message_id, new_ticket=True, ack_outbox_id=ack_outbox_id)
