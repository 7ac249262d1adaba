"""A resident's history for the console, beside a ticket: their addresses on every channel (and whether we may
write there) and their tickets across channels, only those the agent may see. Reading it is audited."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

from carehub import audit
from carehub.agents.auth import CurrentAgent
from carehub.db import AnyRow
from carehub.models import Contact, ContactAddress, Ticket, TicketSummary
from carehub.problems import Problem
from carehub.settings import Settings
from carehub.tickets import labels as ticket_labels
from carehub.tickets import service as tickets
from channels.base import ChannelKind

CONTACTS = Contact.__table__  # type: ignore[attr-defined]
ADDRESSES = ContactAddress.__table__  # type: ignore[attr-defined]
TICKETS = Ticket.__table__  # type: ignore[attr-defined]
MAX_TICKETS = 200


class AddressPublic(SQLModel):
    id: int
    channel: ChannelKind
    address: str
    opted_out: bool  # the resident asked us to stop (SMS STOP): nothing is sent there
    undeliverable: str | None  # why mail there bounces, until the resident writes from it again
    created_at: datetime


class ContactHistory(SQLModel):
    id: int
    display_name: str | None
    language: str
    merged_into_id: int | None  # merged into that contact (its history is there now)
    addresses: list[AddressPublic]
    tickets: list[TicketSummary]  # newest first; only tickets of the agent's teams (and those without a team)


async def visible_contact(conn: AsyncConnection, contact_id: int, agent: CurrentAgent) -> AnyRow:
    """The contact, if this agent works one of its tickets (supervisors and admins: any contact); else 404."""
    row = (await conn.execute(select(CONTACTS).where(CONTACTS.c.id == contact_id))).one_or_none()
    if row is not None and not agent.sees_every_team and row.merged_into_id is None:
        seen = await conn.execute(
            select(TICKETS.c.id).where(TICKETS.c.contact_id == contact_id, _visible(agent)).limit(1)
        )
        row = row if seen.first() is not None else None
    if row is None:
        raise Problem(404, f"There is no contact {contact_id} with tickets in your teams' queues.")
    return row


async def history(
    conn: AsyncConnection, settings: Settings, contact_id: int, agent: CurrentAgent, now: datetime
) -> ContactHistory:
    contact = await visible_contact(conn, contact_id, agent)
    addresses = await conn.execute(
        select(ADDRESSES).where(ADDRESSES.c.contact_id == contact_id).order_by(ADDRESSES.c.id)
    )
    query = select(TICKETS).where(TICKETS.c.contact_id == contact_id).order_by(TICKETS.c.id.desc()).limit(MAX_TICKETS)
    if not agent.sees_every_team:
        query = query.where(_visible(agent))
    rows = list(await conn.execute(query))
    labels = await ticket_labels.of_many(conn, [r.id for r in rows])
    await audit.by_agent(conn, agent.id, "read", "contact", contact_id, now)
    return ContactHistory(
        id=contact.id,
        display_name=contact.display_name,
        language=contact.language,
        merged_into_id=contact.merged_into_id,
        addresses=[
            AddressPublic(
                id=a.id,
                channel=ChannelKind(a.channel),
                address=a.address,
                opted_out=a.opted_out_at is not None,
                undeliverable=None if a.undeliverable_at is None else (a.undeliverable_reason or "bounced"),
                created_at=a.created_at,
            )
            for a in addresses
        ],
        tickets=[tickets.summary(settings, r).model_copy(update={"labels": labels[r.id]}) for r in rows],
    )


def _visible(agent: CurrentAgent) -> ColumnElement[bool]:
    return or_(TICKETS.c.team.is_(None), TICKETS.c.team.in_(sorted(agent.teams)))
