"""What a status link shows: its ticket (or the one it was merged into), the status, and the conversation as the
resident saw it: their own messages and the team's replies, never notes, automatic messages or anyone else's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.chat.service import first_name
from carehub.db import AnyRow
from carehub.models import ACTIVE_TICKET_STATUSES, Agent, Contact, Message, Ticket, TicketMerge, TicketStatus
from carehub.settings import Settings
from carehub.tickets.reference import format_reference
from channels.base import ChannelKind

TICKETS = Ticket.__table__  # type: ignore[attr-defined]
MESSAGES = Message.__table__  # type: ignore[attr-defined]
AGENTS = Agent.__table__  # type: ignore[attr-defined]
CONTACTS = Contact.__table__  # type: ignore[attr-defined]
MERGES = TicketMerge.__table__  # type: ignore[attr-defined]

MAX_MESSAGES = 200  # the newest; a longer history is on the agents' side


@dataclass(frozen=True)
class Entry:
    """One message as the resident sees it: theirs, or the team's (with the agent's first name at most)."""

    mine: bool
    name: str | None
    body: str
    at: datetime


@dataclass(frozen=True)
class View:
    ticket_id: int  # the ticket shown (the link's own, or the one it was merged into)
    reference: str
    status: str
    team: str | None
    language: str
    merged_from: str | None  # the link's own reference, when it was merged into another ticket
    entries: list[Entry]
    # What a message added on the page does: join this ticket, start a new one linked to it, or nothing (the
    # request was merged into someone else's: the page offers the city's other ways in instead).
    accepts: str  # "join" | "new" | "none"


async def ticket(conn: AsyncConnection, ticket_id: int) -> AnyRow | None:
    query = (
        select(TICKETS, CONTACTS.c.language)
        .join(CONTACTS, CONTACTS.c.id == TICKETS.c.contact_id)
        .where(TICKETS.c.id == ticket_id)
    )
    return (await conn.execute(query)).one_or_none()


def joinable(row: AnyRow, reopen_since: datetime) -> bool:
    """The rule an inbound text follows: an active ticket, or one resolved within the reopen window."""
    if row.status in [s.value for s in ACTIVE_TICKET_STATUSES]:
        return True
    return row.status == TicketStatus.RESOLVED and row.resolved_at is not None and row.resolved_at >= reopen_since


async def view(conn: AsyncConnection, settings: Settings, ticket_id: int, now: datetime) -> View | None:
    own = await ticket(conn, ticket_id)
    if own is None:
        return None
    shown, merged_from, only = own, None, None
    if own.merged_into_id is not None:
        target = await ticket(conn, own.merged_into_id)
        if target is not None:
            shown, merged_from = target, format_reference(settings.ticket_prefix, own.id)
            if target.contact_id != own.contact_id:  # someone else's request: show only what was ours
                only = await _merged_message_ids(conn, own.id, target.id)
    reopen_since = now - timedelta(days=settings.reopen_window_days)
    accepts = "join" if joinable(shown, reopen_since) else "new"
    # Not into someone else's request; and a chat that is over cannot be answered in: the page offers the city's
    # other ways in instead.
    if only is not None or (accepts == "new" and shown.channel == ChannelKind.CHAT):
        accepts = "none"
    return View(
        ticket_id=shown.id,
        reference=format_reference(settings.ticket_prefix, shown.id),
        status=shown.status,
        team=shown.team,
        language=own.language,
        merged_from=merged_from,
        entries=await entries(conn, shown.id, only, await _moved_in_from_others(conn, shown.id, own.contact_id)),
        accepts=accepts,
    )


async def _merged_message_ids(conn: AsyncConnection, source_id: int, target_id: int) -> list[int]:
    rows = await conn.execute(
        select(MERGES.c.message_ids).where(
            MERGES.c.source_ticket_id == source_id,
            MERGES.c.target_ticket_id == target_id,
            MERGES.c.unmerged_at.is_(None),
        )
    )
    return [int(i) for ids in rows.scalars() for i in ids]


async def _moved_in_from_others(conn: AsyncConnection, ticket_id: int, contact_id: int) -> list[int]:
    """Messages merged into this ticket from another resident's request: theirs, not to be shown to this one."""
    rows = await conn.execute(
        select(MERGES.c.message_ids)
        .join(TICKETS, TICKETS.c.id == MERGES.c.source_ticket_id)
        .where(
            MERGES.c.target_ticket_id == ticket_id,
            MERGES.c.unmerged_at.is_(None),
            TICKETS.c.contact_id != contact_id,
        )
    )
    return [int(i) for ids in rows.scalars() for i in ids]


async def entries(
    conn: AsyncConnection, ticket_id: int, only: list[int] | None = None, hidden: list[int] | None = None
) -> list[Entry]:
    """The resident's messages and the team's written replies, oldest first (the newest MAX_MESSAGES): `only`
    these, or all but the `hidden` ones."""
    query = (
        select(MESSAGES.c.direction, MESSAGES.c.body, MESSAGES.c.created_at, AGENTS.c.name)
        .outerjoin(AGENTS, AGENTS.c.id == MESSAGES.c.author_agent_id)
        .where(
            MESSAGES.c.ticket_id == ticket_id,
            or_(
                MESSAGES.c.direction == "in",
                and_(MESSAGES.c.direction == "out", MESSAGES.c.author_agent_id.is_not(None)),
            ),
        )
        .order_by(MESSAGES.c.created_at.desc(), MESSAGES.c.id.desc())
        .limit(MAX_MESSAGES)
    )
    if only is not None:
        query = query.where(MESSAGES.c.id.in_(only))
    if hidden:
        query = query.where(MESSAGES.c.id.not_in(hidden))
    rows = list(await conn.execute(query))
    return [
        Entry(
            mine=r.direction == "in",
            name=None if r.direction == "in" else first_name(r.name),
            body=r.body,
            at=r.created_at,
        )
        for r in reversed(rows)
    ]


async def ticket_of_message(conn: AsyncConnection, channel: ChannelKind, provider_id: str) -> int | None:
    found = await conn.execute(
        select(MESSAGES.c.ticket_id).where(MESSAGES.c.channel == channel.value, MESSAGES.c.provider_id == provider_id)
    )
    value = found.scalar_one_or_none()
    return None if value is None else int(value)
