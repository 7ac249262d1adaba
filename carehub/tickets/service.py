"""Ticket rules for agents: read with history, reply on the resident's channel, claim, change status.
Runs inside the caller's transaction; never commits. Every read and change is audited."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.ext.asyncio import AsyncConnection

from carehub import audit
from carehub.agents import repository as agents
from carehub.agents.auth import CurrentAgent
from carehub.chat import repository as chat_repository
from carehub.chat import service as chat
from carehub.contacts import repository as contacts
from carehub.csat import service as csat
from carehub.db import AnyRow, Tx
from carehub.mail import repository as mail
from carehub.messaging.templates import MessageTemplates
from carehub.models import (
    AttachmentPublic,
    ChatDetail,
    DeliveryPublic,
    EmailDetail,
    MessagePublic,
    NotePublic,
    Role,
    TicketDetail,
    TicketStatus,
    TicketSummary,
    TicketUpdate,
)
from carehub.open311 import repository as open311_requests
from carehub.outbox.staging import queue_message
from carehub.problems import Problem
from carehub.realtime.events import AGENTS_TOPIC, agent_event, team_changed
from carehub.settings import Settings
from carehub.sla import timers as sla
from carehub.tickets import labels as ticket_labels
from carehub.tickets import reply_channel
from carehub.tickets import repository as tickets
from carehub.tickets.reference import format_reference, parse_reference
from carehub.tickets.status import check_transition
from channels.base import ChannelKind

# Twilio refuses SMS bodies over 1,600 characters.
MAX_REPLY_CHARS = {ChannelKind.SMS: 1600}


def ticket_id_from(settings: Settings, ref: str) -> int:
    ticket_id = parse_reference(settings.ticket_prefix, ref)
    if ticket_id is None:
        raise Problem(404, f"'{ref}' is not a ticket reference (expected e.g. {settings.ticket_prefix}-000123).")
    return ticket_id


async def load(conn: AsyncConnection, settings: Settings, ticket_id: int, agent: CurrentAgent) -> AnyRow:
    """The ticket, if this agent may work it: another team's ticket is as absent as one that does not exist."""
    row = await tickets.get_ticket(conn, ticket_id)
    if row is None or not agent.can_see(row.team):
        raise Problem(
            404, f"There is no ticket {format_reference(settings.ticket_prefix, ticket_id)} in your teams' queues."
        )
    return row


def summary(settings: Settings, row: AnyRow) -> TicketSummary:
    return TicketSummary.model_validate({**row._mapping, "reference": format_reference(settings.ticket_prefix, row.id)})


async def detail(
    conn: AsyncConnection, settings: Settings, ticket_id: int, agent: CurrentAgent, now: datetime
) -> TicketDetail:
    row = await load(conn, settings, ticket_id, agent)
    rows = await tickets.messages_with_delivery(conn, ticket_id)
    attachments: dict[int, list[AttachmentPublic]] = {}
    for a in await mail.attachments_of(conn, [m.id for m in rows if m.channel == ChannelKind.EMAIL]):
        attachments.setdefault(a.message_id, []).append(AttachmentPublic.model_validate(a._mapping))
    messages = [
        MessagePublic(
            id=m.id,
            direction=m.direction,
            channel=m.channel,
            body=m.body,
            author_agent_id=m.author_agent_id,
            created_at=m.created_at,
            delivery=None
            if m.delivery_status is None
            else DeliveryPublic(
                status=m.delivery_status,
                attempts=m.attempts,
                error_code=m.error_code,
                last_error=m.last_error,
                sent_at=m.sent_at,
                updated_at=m.updated_at,
            ),
            email=EmailDetail.model_validate(m.meta or {}) if m.channel == ChannelKind.EMAIL else None,
            attachments=attachments.get(m.id, []),
        )
        for m in rows
    ]
    addresses = await contacts.addresses_of(conn, row.contact_id)
    await audit.agent_on_ticket(conn, agent.id, "read", ticket_id, now)
    conversation = await chat_repository.latest_for_ticket(conn, ticket_id) if row.channel == ChannelKind.CHAT else None
    return TicketDetail(
        **summary(settings, row).model_dump(exclude={"labels"}),
        labels=await ticket_labels.of(conn, ticket_id),
        merged_into=None
        if row.merged_into_id is None
        else format_reference(settings.ticket_prefix, row.merged_into_id),
        contact_addresses=addresses,
        messages=messages,
        notes=[_note(n) for n in await tickets.notes_of(conn, ticket_id)],
        csat=await csat.result_for(conn, ticket_id),
        chat=None
        if conversation is None
        else ChatDetail(
            status=conversation.status,
            given_email=conversation.given_email,
            given_phone=conversation.given_phone,
            handoff=conversation.handoff_channel,
            resident_read_seq=conversation.resident_read_seq,
            agent_read_seq=conversation.agent_read_seq,
        ),
    )


async def reply(
    tx: Tx,
    settings: Settings,
    ticket_id: int,
    agent: CurrentAgent,
    body: str,
    *,
    idempotency_key: str | None,
    now: datetime,
    on_channel: ChannelKind | None = None,
) -> int:
    """Store the agent's reply and stage its delivery to the resident's address; returns the message id.
    on_channel: answer on another channel the resident gave us an address for (see reply_channel).

    With an idempotency key, a retried request returns the first reply instead of sending a second one (a retry
    racing the first request fails on the unique key and rolls back, so it still sends once).
    """
    conn = tx.conn
    if idempotency_key is not None:
        existing = await tickets.message_by_idempotency_key(conn, agent.id, idempotency_key)
        if existing is not None:
            return existing
    row = await load(conn, settings, ticket_id, agent)
    # The address the resident is reached at now (a chat moved to email or SMS replies there).
    address = await contacts.address_by_id(conn, row.address_id)
    if on_channel is not None and on_channel is not address.channel:
        address = await reply_channel.address_for(conn, settings, row, on_channel, now)
    channel = address.channel
    limit = MAX_REPLY_CHARS.get(channel)
    if limit is not None and len(body) > limit:
        raise Problem(422, f"A {channel.value} reply can be at most {limit} characters; this one has {len(body)}.")
    if channel is ChannelKind.CHAT:
        return await _chat_reply(tx, settings, ticket_id, agent, body, idempotency_key=idempotency_key, now=now)
    if channel is ChannelKind.OPEN311:
        return await _published_note(tx, settings, ticket_id, agent, body, idempotency_key=idempotency_key, now=now)
    if address.opted_out:
        raise Problem(
            409,
            f"The resident has opted out of {channel.value} messages from the city, so this reply "
            "cannot be delivered there. Reach them on another channel they have used.",
        )
    if address.undeliverable_reason is not None:
        raise Problem(
            409,
            f"Mail to {address.address} bounced ({address.undeliverable_reason}), so nothing more is sent there "
            "until the resident writes from it again. Reach them on another channel they have used.",
        )
    message_id, _ = await queue_message(
        tx,
        ticket_id=ticket_id,
        channel=channel,
        to=address.address,
        body=body,
        now=now,
        author_agent_id=agent.id,
        idempotency_key=idempotency_key,
    )
    await tickets.note_reply(conn, ticket_id, now)
    await audit.agent_on_ticket(conn, agent.id, "reply", ticket_id, now, {"message_id": message_id})
    return message_id


MENTION = re.compile(r"(?<![\w.@])@([A-Za-z0-9._%+-]+(?:@[A-Za-z0-9.-]+\.[A-Za-z]{2,})?)")


class NoteAdded(NamedTuple):
    note: NotePublic
    unknown_mentions: list[str]


async def add_note(
    tx: Tx, settings: Settings, ticket_id: int, agent: CurrentAgent, body: str, now: datetime
) -> NoteAdded:
    """A private note (never sent to the resident). @name or @name@city.ca mentions an agent who can see the
    ticket; mentioned agents are told on the live stream."""
    conn = tx.conn
    row = await load(conn, settings, ticket_id, agent)
    handles = {h.lower() for h in MENTION.findall(body)}
    mentioned: set[int] = set()
    reached: set[str] = set()
    for candidate in await agents.active_by_handles(conn, handles):
        role = Role(candidate.role)
        colleague = CurrentAgent(
            id=candidate.id,
            email=candidate.email,
            name=candidate.name,
            role=role,
            teams=await agents.teams_of(conn, candidate.id),
        )
        if role is not Role.COMMUNICATIONS and colleague.can_see(row.team):
            mentioned.add(candidate.id)
            reached |= handles & {candidate.email, candidate.email.partition("@")[0]}
    note = await tickets.add_note(
        conn, ticket_id=ticket_id, author_agent_id=agent.id, body=body, mentions=sorted(mentioned), now=now
    )
    await audit.agent_on_ticket(conn, agent.id, "note", ticket_id, now, {"note_id": note.id})
    tx.staged_events.append(
        (
            AGENTS_TOPIC,
            agent_event(
                "note.created",
                ticket_id=ticket_id,
                reference=format_reference(settings.ticket_prefix, ticket_id),
                note_id=note.id,
                author_agent_id=agent.id,
                mentions=sorted(mentioned),
            ),
        )
    )
    return NoteAdded(_note(note), sorted(handles - reached))


def _note(row: AnyRow) -> NotePublic:
    return NotePublic(
        id=row.id,
        author_agent_id=row.author_agent_id,
        body=row.body,
        mentions=row.mentions or [],
        created_at=row.created_at,
    )


async def _chat_reply(
    tx: Tx,
    settings: Settings,
    ticket_id: int,
    agent: CurrentAgent,
    body: str,
    *,
    idempotency_key: str | None,
    now: datetime,
) -> int:
    conversation = await chat_repository.latest_for_ticket(tx.conn, ticket_id)
    if conversation is None or not chat.is_open(conversation):
        raise Problem(
            409,
            "The resident has ended this chat and left no email or phone number, so a reply cannot reach them. "
            "It stays on the ticket for the record.",
        )
    appended = await chat.agent_message(
        tx,
        settings,
        conversation,
        agent_id=agent.id,
        agent_name=agent.name,
        body=body,
        idempotency_key=idempotency_key,
        now=now,
    )
    await tickets.note_reply(tx.conn, ticket_id, now)
    await audit.agent_on_ticket(tx.conn, agent.id, "reply", ticket_id, now, {"message_id": appended.message_id})
    return appended.message_id


async def _published_note(
    tx: Tx,
    settings: Settings,
    ticket_id: int,
    agent: CurrentAgent,
    body: str,
    *,
    idempotency_key: str | None,
    now: datetime,
) -> int:
    """A reply on an Open311 request's own channel is not sent anywhere: it is published as the request's
    status_notes, which the app that filed it reads (carehub/open311)."""
    if await open311_requests.of_ticket(tx.conn, ticket_id) is None:
        raise Problem(
            409,
            f"{format_reference(settings.ticket_prefix, ticket_id)} is not an Open311 request: nothing is published.",
        )
    message_id = await tickets.add_outbound_message(
        tx.conn,
        ticket_id=ticket_id,
        channel=ChannelKind.OPEN311,
        body=body,
        author_agent_id=agent.id,
        now=now,
        idempotency_key=idempotency_key,
    )
    await tickets.note_reply(tx.conn, ticket_id, now)
    await audit.agent_on_ticket(tx.conn, agent.id, "reply", ticket_id, now, {"message_id": message_id})
    return message_id


async def change(
    tx: Tx,
    settings: Settings,
    templates: MessageTemplates,
    ticket_id: int,
    agent: CurrentAgent,
    changes: TicketUpdate,
    now: datetime,
) -> None:
    conn = tx.conn
    row = await load(conn, settings, ticket_id, agent)
    values: dict[str, Any] = changes.model_dump(exclude_unset=True)
    if not values:
        raise Problem(422, "Nothing to change: send one or more of status, priority, assignee_id.")
    if "team" in values and values["team"] is not None:
        values["team"] = values["team"].strip().lower()
    if "team" in values and values["team"] != row.team:
        tx.staged_events.append(team_changed(ticket_id))
    if values.get("assignee_id") is not None:
        assignee = await agents.agent_by_id(conn, values["assignee_id"])
        if assignee is None or not assignee.is_active:
            raise Problem(422, f"There is no active agent with id {values['assignee_id']}.")
        team = values.get("team", row.team)
        assignee_teams = await agents.teams_of(conn, assignee.id)
        if team is not None and Role(assignee.role) is Role.AGENT and team not in assignee_teams:
            raise Problem(422, f"Agent {assignee.id} is not in team '{team}', so cannot be given this ticket.")
    if "status" in values and values["status"] != row.status:
        status = TicketStatus(values["status"])
        check_transition(TicketStatus(row.status), status, replied=row.first_response_at is not None)
        done = status in (TicketStatus.RESOLVED, TicketStatus.CLOSED)
        values["resolved_at"] = now if done else None
        if status is TicketStatus.RESOLVED:  # before a chat is closed below: a chat is asked in the chat
            await csat.ask_after_resolve(tx, settings, templates, ticket_id, now)
        if done and row.channel == ChannelKind.CHAT.value:
            # Resolving a chat ends it for the resident too (they are told, and can start a new one).
            conversation = await chat_repository.latest_for_ticket(conn, ticket_id)
            if conversation is not None:
                await chat.close(tx, settings, templates, conversation, transcript_to=None, now=now)
    if sla.changes_targets(row, values):
        values.update(sla.recompute_values())
    values["updated_at"] = now
    await tickets.update_ticket(conn, ticket_id, values)
    await audit.agent_on_ticket(
        conn, agent.id, "update", ticket_id, now, changes.model_dump(exclude_unset=True, mode="json")
    )


async def claim(conn: AsyncConnection, settings: Settings, ticket_id: int, agent: CurrentAgent, now: datetime) -> None:
    row = await load(conn, settings, ticket_id, agent)
    if row.assignee_id == agent.id:
        return
    if not await tickets.claim_ticket(conn, ticket_id, agent.id, now):
        raise Problem(
            409,
            f"{format_reference(settings.ticket_prefix, ticket_id)} is already assigned to agent "
            f"{row.assignee_id}; ask a supervisor to reassign it.",
        )
    await audit.agent_on_ticket(conn, agent.id, "claim", ticket_id, now)
