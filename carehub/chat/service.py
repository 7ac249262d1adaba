"""Chat rules: a resident's first message opens a conversation and its ticket; every message, either way, is
numbered and stored before anyone is told; a conversation can move to email or SMS, and end with a transcript.
Runs inside the caller's transaction (never commits) and stages the live events its changes cause."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.chat import repository as chats
from carehub.chat import tokens
from carehub.chat.protocol import frame, message_frame
from carehub.chat.repository import Appended, Conversation
from carehub.contacts import repository as contacts
from carehub.db import Tx
from carehub.inbound.service import subject_from
from carehub.messaging.templates import MessageTemplates
from carehub.models import ChatStatus
from carehub.outbox.staging import queue_message
from carehub.realtime.broker import Event
from carehub.realtime.events import AGENTS_TOPIC, agent_event
from carehub.settings import Settings
from carehub.status import links as status_links
from carehub.tickets import repository as tickets
from carehub.tickets.reference import format_reference
from channels.base import ChannelKind
from channels.sms.numbers import to_e164

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
MAX_TRANSCRIPT_MESSAGES = 1000


def topic(conversation_id: int) -> str:
    return f"chat:{conversation_id}"


class BadAddress(ValueError):
    pass


def normalise_address(settings: Settings, channel: ChannelKind, address: str) -> str:
    address = address.strip()
    if channel is ChannelKind.EMAIL:
        if not _EMAIL.match(address):
            raise BadAddress(address)
        return address.lower()
    try:
        return to_e164(address, settings.default_region)
    except ValueError:
        raise BadAddress(address) from None


def mask(channel: ChannelKind, address: str) -> str:
    """Enough to recognise one's own address on a shared screen, not enough to read someone else's."""
    if channel is ChannelKind.EMAIL:
        local, _, domain = address.partition("@")
        return f"{local[:1]}***@{domain}"
    return f"***{address[-4:]}"


# How long a resent first message (its session frame was lost) still finds its conversation: long enough for any
# reconnect, short enough that an opening client id is no lasting credential.
REOPEN_WINDOW = timedelta(minutes=15)


@dataclass(frozen=True)
class Opened:
    conversation: Conversation
    token: str
    first: Appended
    resent: bool = False  # the first message was stored before: this is the same conversation, not a new one


def sender_of(direction: str, author_agent_id: int | None) -> str:
    if direction == "in":
        return "resident"
    return "agent" if author_agent_id is not None else "system"


def first_name(name: str | None) -> str | None:
    return name.split()[0] if name and name.split() else None


def message_events(
    settings: Settings,
    conversation_id: int,
    appended: Appended,
    *,
    body: str,
    sender: str,
    cid: str | None = None,
    agent_name: str | None = None,
    origin: str | None = None,
    to_conversation: bool = True,
) -> list[tuple[str, Event]]:
    """What a stored chat message tells the agents and (unless only its sender's socket is listening, which has
    it already) its conversation's sockets."""
    reference = format_reference(settings.ticket_prefix, appended.ticket_id)
    agents = agent_event(
        "message.created",
        reference=reference,
        ticket_id=appended.ticket_id,
        message_id=appended.message_id,
        channel=ChannelKind.CHAT.value,
        direction="in" if sender == "resident" else "out",
        body=body,
        seq=appended.seq,
        at=appended.at.isoformat(),
    )
    if not to_conversation:
        return [(AGENTS_TOPIC, agents)]
    text = message_frame(
        seq=appended.seq, cid=cid, sender=sender, name=first_name(agent_name), body=body, at=appended.at
    )
    return [(topic(conversation_id), Event(text=text, seq=appended.seq, origin=origin)), (AGENTS_TOPIC, agents)]


def _stage_message(tx: Tx, settings: Settings, conversation_id: int, appended: Appended, **kw: Any) -> None:
    tx.staged_events.extend(message_events(settings, conversation_id, appended, **kw))


async def open_conversation(
    tx: Tx,
    settings: Settings,
    templates: MessageTemplates,
    *,
    cid: str,
    body: str,
    language: str,
    name: str | None,
    email: str | None,
    phone: str | None,
    now: datetime,
    origin: str | None = None,
) -> Opened:
    """The resident's first message: contact, chat address, ticket, conversation, the message (seq 1) and the
    acknowledgement with the reference (seq 2). The same first message again (its answer never reached the
    client) is the conversation it opened."""
    conn = tx.conn
    token_expiry = now + timedelta(days=settings.chat_token_ttl_days)
    secret = settings.chat_token_secret.get_secret_value()
    earlier = await chats.by_opening_cid(conn, cid, now - REOPEN_WINDOW)
    if earlier is not None:
        first = await chats.find_duplicate(conn, earlier.id, cid)
        if first is not None:
            return Opened(earlier, tokens.issue(secret, earlier.key, token_expiry), first, resent=True)
    key = tokens.new_key()
    sender = await contacts.create_sender(
        conn, ChannelKind.CHAT, key, now, language=language, display_name=(name or "").strip()[:200] or None
    )
    ticket_id = await tickets.create_ticket(
        conn,
        contact_id=sender.contact_id,
        address_id=sender.address_id,
        channel=ChannelKind.CHAT,
        subject=subject_from(body),
        now=now,
    )
    conversation = await chats.create(
        conn,
        ticket_id=ticket_id,
        key=key,
        opening_cid=cid,
        language=language,
        given_email=_given(settings, ChannelKind.EMAIL, email),
        given_phone=_given(settings, ChannelKind.SMS, phone),
        now=now,
    )
    reference = format_reference(settings.ticket_prefix, ticket_id)
    first = await chats.append(conn, conversation.id, body=body, inbound=True, cid=cid, now=now)
    _stage_message(tx, settings, conversation.id, first, body=body, sender="resident", cid=cid, origin=origin)
    link = await status_links.issue(conn, settings, ticket_id, now)
    ack_text = templates.render(
        ChannelKind.CHAT, "ack", language, city_name=settings.city_name, reference=reference, status_link=link.url
    )
    ack = await chats.append(conn, conversation.id, body=ack_text, inbound=False, now=now, meta={"auto": "ack"})
    _stage_message(tx, settings, conversation.id, ack, body=ack_text, sender="system")
    tx.staged_events.append((AGENTS_TOPIC, agent_event("ticket.created", reference=reference, ticket_id=ticket_id)))
    return Opened(replace(conversation, last_seq=ack.seq), tokens.issue(secret, key, token_expiry), first)


def _given(settings: Settings, channel: ChannelKind, value: str | None) -> str | None:
    """An optional address typed at the start: kept if it looks right, quietly dropped if not (it is optional)."""
    if not value or not value.strip():
        return None
    try:
        return normalise_address(settings, channel, value)
    except BadAddress:
        return None


async def resident_message(
    tx: Tx,
    settings: Settings,
    conversation: Conversation,
    *,
    cid: str,
    body: str,
    now: datetime,
    origin: str,
    shared: bool = True,
) -> Appended:
    """Store a resident's message once: the same client id again (a resend after a reconnect) gets the first."""
    conn = tx.conn
    duplicate = await chats.find_duplicate(conn, conversation.id, cid)
    if duplicate is not None:
        return duplicate
    appended = await chats.append(conn, conversation.id, body=body, inbound=True, cid=cid, now=now)
    await tickets.note_inbound(conn, appended.ticket_id, now)
    _stage_message(
        tx,
        settings,
        conversation.id,
        appended,
        body=body,
        sender="resident",
        cid=cid,
        origin=origin,
        to_conversation=shared,
    )
    return appended


async def agent_message(
    tx: Tx,
    settings: Settings,
    conversation: Conversation,
    *,
    agent_id: int,
    agent_name: str,
    body: str,
    idempotency_key: str | None,
    now: datetime,
) -> Appended:
    appended = await chats.append(
        tx.conn,
        conversation.id,
        body=body,
        inbound=False,
        author_agent_id=agent_id,
        idempotency_key=idempotency_key,
        now=now,
    )
    _stage_message(tx, settings, conversation.id, appended, body=body, sender="agent", agent_name=agent_name)
    return appended


async def system_message(
    tx: Tx, settings: Settings, conversation: Conversation, body: str, now: datetime, meta: dict[str, Any]
) -> Appended:
    appended = await chats.append(tx.conn, conversation.id, body=body, inbound=False, now=now, meta=meta)
    _stage_message(tx, settings, conversation.id, appended, body=body, sender="system")
    return appended


async def handoff(
    tx: Tx,
    settings: Settings,
    templates: MessageTemplates,
    conversation: Conversation,
    *,
    channel: ChannelKind,
    address: str,
    now: datetime,
) -> str:
    """Continue by email or SMS: the ticket's replies go to that address from now on, and an acknowledgement
    goes there now so the resident has a thread to answer. Returns the masked address. Raises BadAddress."""
    conn = tx.conn
    address = normalise_address(settings, channel, address)
    ticket = await tickets.get_ticket(conn, conversation.ticket_id)
    if ticket is None:  # a foreign key makes this impossible
        raise LookupError(f"chat {conversation.id} has no ticket {conversation.ticket_id}")
    given, contact_id = await adopt_address(conn, ticket.contact_id, channel, address, now)
    if given.opted_out or given.undeliverable_reason is not None:
        raise BadAddress(address)
    address_id = given.id
    if contact_id != ticket.contact_id:
        await contacts.merge_into(conn, ticket.contact_id, contact_id)
    await tickets.update_ticket(conn, conversation.ticket_id, {"address_id": address_id, "updated_at": now})
    await chats.set_handoff(conn, conversation.id, channel)
    reference = format_reference(settings.ticket_prefix, conversation.ticket_id)
    link = await status_links.issue(conn, settings, conversation.ticket_id, now)
    ack_body = templates.render(
        channel if channel is ChannelKind.SMS else ChannelKind.CHAT,
        "ack",
        conversation.language,
        city_name=settings.city_name,
        reference=reference,
        status_link=link.url,
    )
    await queue_message(
        tx, ticket_id=conversation.ticket_id, channel=channel, to=address, body=ack_body, now=now, meta={"auto": "ack"}
    )
    masked = mask(channel, address)
    note = templates.render(ChannelKind.CHAT, "handoff", conversation.language, by=channel.value, address=masked)
    await system_message(tx, settings, conversation, note, now, {"auto": "handoff", "channel": channel.value})
    tx.staged_events.append(
        (topic(conversation.id), Event(text=frame("handoff", channel=channel.value, address=masked)))
    )
    return masked


async def adopt_address(
    conn: AsyncConnection, contact_id: int, channel: ChannelKind, address: str, now: datetime
) -> tuple[contacts.Address, int]:
    """An address the resident gave us in a chat (normalised): its row, added to contact_id if nobody has used it,
    and the contact it belongs to (another one if someone wrote from it before). The caller checks whether it may
    be written to (opted out, bouncing)."""
    known = await contacts.address_by_value(conn, channel, address)
    if known is not None:
        return known
    address_id = await contacts.add_address(conn, contact_id, channel, address, now)
    return contacts.Address(address_id, channel, address, opted_out=False, undeliverable_reason=None), contact_id


async def close(
    tx: Tx,
    settings: Settings,
    templates: MessageTemplates,
    conversation: Conversation,
    *,
    transcript_to: str | None,
    now: datetime,
) -> bool:
    """End the chat; with an address, stage the transcript email to it. False if it was closed already."""
    conn = tx.conn
    to = None if transcript_to is None else normalise_address(settings, ChannelKind.EMAIL, transcript_to)
    if not await chats.close(conn, conversation.id, now):
        return False
    note = templates.render(
        ChannelKind.CHAT,
        "closed",
        conversation.language,
        city_name=settings.city_name,
        transcript_to=None if to is None else mask(ChannelKind.EMAIL, to),
    )
    await system_message(tx, settings, conversation, note, now, {"auto": "closed"})
    if to is not None:
        await queue_message(
            tx,
            ticket_id=conversation.ticket_id,
            channel=ChannelKind.EMAIL,
            to=to,
            body=await transcript(conn, settings, conversation),
            now=now,
            meta={"auto": "transcript"},
        )
    tx.staged_events.append((topic(conversation.id), Event(text=frame("closed", transcript=to is not None))))
    reference = format_reference(settings.ticket_prefix, conversation.ticket_id)
    tx.staged_events.append(
        (AGENTS_TOPIC, agent_event("chat.closed", reference=reference, ticket_id=conversation.ticket_id))
    )
    return True


async def transcript(conn: AsyncConnection, settings: Settings, conversation: Conversation) -> str:
    """The conversation as plain text, one message a paragraph, times in the city's time zone."""
    zone = ZoneInfo(settings.chat_timezone)
    you = "Vous" if conversation.language == "fr" else "You"
    lines = []
    for m in await chats.messages_after(conn, conversation.id, 0, MAX_TRANSCRIPT_MESSAGES):
        if (m.direction == "out" and m.author_agent_id is None) and m.seq > 2:
            continue  # our own notices (handoff, closing) add nothing to a record of what was said
        who = you if m.direction == "in" else (first_name(m.agent_name) or settings.city_name)
        lines.append(f"[{m.created_at.astimezone(zone):%Y-%m-%d %H:%M}] {who}:\n{m.body}")
    return "\n\n".join(lines)


def conversation_view(conversation: Conversation, settings: Settings) -> dict[str, Any]:
    return {
        "reference": format_reference(settings.ticket_prefix, conversation.ticket_id),
        "status": conversation.status.value,
        "last_seq": conversation.last_seq,
        "agent_read_seq": conversation.agent_read_seq,
        "handoff": None if conversation.handoff_channel is None else conversation.handoff_channel.value,
    }


def is_open(conversation: Conversation) -> bool:
    return conversation.status is ChatStatus.OPEN
