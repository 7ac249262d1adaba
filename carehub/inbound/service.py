"""Turns a verified inbound message into ticket state: dedupe, find or create the contact, join or open a ticket,
and stage the acknowledgement, in one transaction that receive() owns."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from weakref import WeakKeyDictionary

from carehub.clock import utcnow
from carehub.contacts import repository as contacts
from carehub.csat import replies as csat_replies
from carehub.db import Tx
from carehub.help import suggestion
from carehub.inbound import after_hours
from carehub.messaging.templates import MessageTemplates
from carehub.outbox.staging import queue_message
from carehub.realtime.events import inbound_events
from carehub.routing.arrival import route_soon
from carehub.runtime import Runtime
from carehub.settings import Settings
from carehub.status import links as status_links
from carehub.tickets import repository as tickets
from carehub.tickets.reference import format_reference
from channels.base import ChannelKind, InboundMessage

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


REFERENCE_SLOT = "{reference}"  # filled in once the ticket id is known (by the PostgreSQL function, or below)
INGEST_CALL = (
    "SELECT ticket_id, message_id, new_ticket, ack_outbox_id "
    "FROM carehub_ingest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
)


def ack_texts(templates: MessageTemplates, settings: Settings, channel: ChannelKind, now: datetime) -> dict[str, str]:
    """The acknowledgement in every language we have, with a slot for the reference: rendered once per process.
    Outside business hours it is the after-hours one (closed now; when staff are back), rendered per opening."""
    opening = after_hours.reopening(settings, now)
    if opening is not None:
        return after_hours.texts(templates, settings, channel, opening, REFERENCE_SLOT)
    return templates.render_each_language(
        channel, "ack", city_name=settings.city_name, reference=REFERENCE_SLOT, status_link=status_links.SLOT
    )


_ACK_JSON: WeakKeyDictionary[MessageTemplates, dict[ChannelKind, str]] = WeakKeyDictionary()


def _ack_texts_json(templates: MessageTemplates, settings: Settings, channel: ChannelKind, now: datetime) -> str:
    """What carehub_ingest() is given: which set (in hours, after hours) is chosen here, so the SQL stays as is."""
    opening = after_hours.reopening(settings, now)
    if opening is not None:
        texts = ack_texts(templates, settings, channel, now)
        return after_hours.for_opening(templates, ("json", channel.value), opening, lambda: json.dumps(texts))
    per_channel = _ACK_JSON.setdefault(templates, {})
    if channel not in per_channel:
        per_channel[channel] = json.dumps(ack_texts(templates, settings, channel, now))
    return per_channel[channel]


async def receive(rt: Runtime, msg: InboundMessage) -> Ingested | None:
    """Store an inbound message and everything it causes, committed; None if it was stored before.

    PostgreSQL does it in one round trip (the carehub_ingest function, migration 0002) on the raw asyncpg
    connection, which is what lets one hub process take hundreds of webhooks a second; SQLite runs the same rules
    as the statements in ingest() below. The acknowledgement is enqueued only after the commit.
    """
    now = utcnow()
    suggested = await suggestion.find(rt, msg.body)  # None unless CAREHUB_HELP_ACK_TOPICS is set
    if rt.engine.dialect.name == "postgresql":
        ingested = await _ingest_in_one_call(rt, msg, now, suggested)
        if ingested is not None and ingested.ack_outbox_id is not None:
            rt.enqueue_soon([ingested.ack_outbox_id])
    else:
        try:
            async with rt.transaction() as tx:
                ingested = await ingest(
                    tx, msg, settings=rt.settings, templates=rt.templates, now=now, suggested=suggested
                )
        except DuplicateMessage:
            return None
    if ingested is not None and not ingested.new_ticket:  # a survey answered by reply ("5"): carehub/csat/replies.py
        await csat_replies.after_ingest(rt, ticket_id=ingested.ticket_id, message_id=ingested.message_id, body=msg.body)
    if ingested is not None and ingested.new_ticket:
        route_soon(rt, ingested.ticket_id)  # committed: rules and assignment run after the webhook is answered
    if ingested is not None:
        rt.publish_soon(
            inbound_events(
                rt.settings.ticket_prefix,
                ticket_id=ingested.ticket_id,
                message_id=ingested.message_id,
                channel=msg.channel.value,
                body=msg.body,
                new_ticket=ingested.new_ticket,
                at=now,
            )
        )
    return ingested


async def _ingest_in_one_call(
    rt: Runtime, msg: InboundMessage, now: datetime, suggested: dict[str, suggestion.Suggested] | None
) -> Ingested | None:
    settings = rt.settings
    if rt.hot_pool is None:
        raise RuntimeError("Runtime.open_hot_pool() was not called for this PostgreSQL hub")
    # The status link's token is made here (used only if the call opens an acknowledged ticket): one generator of
    # tokens for both stores, and the SQL needs no extension for randomness (migration 0021).
    token = status_links.new_token()
    row = await rt.hot_pool.fetchrow(
        INGEST_CALL,
        msg.channel.value,
        msg.from_address,
        msg.provider_id,
        msg.body,
        json.dumps(dict(msg.meta)),
        subject_from(msg.body),
        now,
        now - timedelta(days=settings.reopen_window_days),
        _ack_texts_json(rt.templates, settings, msg.channel, now)
        if suggested is None
        else json.dumps(suggestion.with_lines(ack_texts(rt.templates, settings, msg.channel, now), suggested)),
        settings.ticket_prefix,
        status_links.url_for(settings, token),
        status_links.hash_token(token),
        status_links.expiry(settings, now),
    )
    if row is None:
        return None
    return Ingested(
        ticket_id=row["ticket_id"],
        message_id=row["message_id"],
        new_ticket=row["new_ticket"],
        ack_outbox_id=row["ack_outbox_id"],
    )


async def ingest(
    tx: Tx,
    msg: InboundMessage,
    *,
    settings: Settings,
    templates: MessageTemplates,
    now: datetime,
    suggested: dict[str, suggestion.Suggested] | None = None,
) -> Ingested:
    """SQLite's ingest, statement by statement; PostgreSQL runs the same rules in carehub_ingest() (0002).

    The hub holds one SQLite connection, so transactions run one at a time and two texts sent together cannot
    open two tickets. Raises DuplicateMessage (and the caller rolls back) for a provider id seen before."""
    conn = tx.conn
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

    acks = suggestion.with_lines(ack_texts(templates, settings, msg.channel, now), suggested)
    link = await status_links.issue(conn, settings, ticket_id, now)
    ack = (
        acks.get(sender.language, acks["en"])
        .replace(REFERENCE_SLOT, format_reference(settings.ticket_prefix, ticket_id))
        .replace(status_links.SLOT, link.url)
    )
    _, ack_outbox_id = await queue_message(
        tx, ticket_id=ticket_id, channel=msg.channel, to=msg.from_address, body=ack, now=now, meta={"auto": "ack"}
    )
    return Ingested(ticket_id, message_id, new_ticket=True, ack_outbox_id=ack_outbox_id)
