"""Survey rules: ask once after a ticket is resolved, and take the answer from the survey page.
Runs inside the caller's transaction; never commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from carehub import audit
from carehub.chat import repository as chat_repository
from carehub.chat import service as chat
from carehub.contacts import repository as contacts
from carehub.csat import messages
from carehub.csat import repository as surveys
from carehub.db import AnyRow, Tx
from carehub.messaging.templates import MessageTemplates
from carehub.models import CsatResult
from carehub.outbox.staging import queue_message
from carehub.settings import Settings
from carehub.tickets import repository as tickets
from carehub.tickets.reference import format_reference
from channels.base import ChannelKind

ANSWER_WINDOW = timedelta(days=14)  # after this, the link shows "this survey has closed" and replies are messages
MAX_COMMENT_CHARS = 1000
CSAT_META = {"auto": "csat"}


async def ask_after_resolve(
    tx: Tx, settings: Settings, templates: MessageTemplates, ticket_id: int, now: datetime
) -> int | None:
    """Send the one survey question for a ticket an agent is resolving; the survey id, or None when none is due:
    surveys are off, no agent ever replied, the resident cannot be reached (opted out, bounced, chat ended), or
    the ticket was asked before (resolved again after reopening)."""
    if not settings.csat_enabled:
        return None
    conn = tx.conn
    ticket = await tickets.get_ticket(conn, ticket_id)
    if ticket is None or not await surveys.agent_replied(conn, ticket_id):
        return None
    # Where the ticket's replies go now (a chat moved to email or SMS is asked there).
    address = await contacts.address_by_id(conn, ticket.address_id)
    if address.opted_out or address.undeliverable_reason is not None:
        return None
    conversation = None
    if address.channel is ChannelKind.CHAT:
        conversation = await chat_repository.latest_for_ticket(conn, ticket_id)
        if conversation is None or not chat.is_open(conversation):
            return None  # the resident left: nowhere to ask
    key = messages.new_key()
    survey_id = await surveys.create(
        conn,
        ticket_id=ticket_id,
        team=ticket.team,
        channel=address.channel.value,
        token_hash=messages.hash_key(key),
        now=now,
    )
    if survey_id is None:
        return None
    contact = await surveys.contact_of(conn, ticket.contact_id)
    body = messages.question(
        templates,
        settings,
        address.channel,
        contact.language,
        reference=format_reference(settings.ticket_prefix, ticket_id),
        url=messages.survey_url(settings, key),
        contact_name=contact.display_name,
    )
    if conversation is not None:
        await chat.system_message(tx, settings, conversation, body, now, dict(CSAT_META))
    else:
        await queue_message(
            tx,
            ticket_id=ticket_id,
            channel=address.channel,
            to=address.address,
            body=body,
            now=now,
            meta=dict(CSAT_META),
        )
    return survey_id


async def result_for(conn: AsyncConnection, ticket_id: int) -> CsatResult | None:
    """The resident's answer, for agents on the ticket; None if not asked or not answered (yet)."""
    row = await surveys.by_ticket(conn, ticket_id)
    if row is None or row.rating is None:
        return None
    return CsatResult(rating=row.rating, comment=row.comment, answered_at=row.answered_at)


@dataclass(frozen=True)
class Survey:
    id: int
    ticket_id: int
    reference: str
    language: str
    rating: int | None
    comment: str | None
    open: bool


async def by_key(conn: AsyncConnection, settings: Settings, key: str, now: datetime) -> Survey | None:
    if not messages.KEY_PATTERN.match(key):
        return None
    row = await surveys.by_token_hash(conn, messages.hash_key(key))
    return None if row is None else _survey(settings, row, now)


def _survey(settings: Settings, row: AnyRow, now: datetime) -> Survey:
    return Survey(
        id=row.id,
        ticket_id=row.ticket_id,
        reference=format_reference(settings.ticket_prefix, row.ticket_id),
        language="fr" if row.language == "fr" else "en",
        rating=row.rating,
        comment=row.comment,
        open=now - row.sent_at <= ANSWER_WINDOW,
    )


async def answer(conn: AsyncConnection, survey: Survey, *, rating: int, comment: str | None, now: datetime) -> None:
    """Record (or change, while the survey is open) the resident's answer from the survey page."""
    if not survey.open:
        raise ValueError("survey closed")
    text = (comment or "").strip()[:MAX_COMMENT_CHARS] or None
    await surveys.record_answer(conn, survey.id, rating=rating, comment=text, now=now, keep_comment=False)
    await audit.record(
        conn,
        actor="resident:csat-link",
        action="csat_answer",
        entity_type="ticket",
        entity_id=survey.ticket_id,
        now=now,
        detail={"rating": rating},
    )
