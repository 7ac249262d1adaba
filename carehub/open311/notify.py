"""Tells the person who filed an Open311 request when its status changes (open to closed, or reopened), once, on
the channel they gave (the email, else the phone in the request): a periodic pass over requests whose status
differs from the one they were last told of, whatever changed it (an agent, a merge, their own reply).

Each notice is staged in the transaction that records it as told, so a crash or a second process sends it once.
Anonymous requests (no email or phone) are only recorded: their app reads the status from the API.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from carehub.clock import utcnow
from carehub.contacts import repository as contacts
from carehub.db import AnyRow, Tx
from carehub.models import Contact
from carehub.open311 import repository as requests
from carehub.open311 import views
from carehub.open311.repository import CLOSED
from carehub.outbox.embedded import EmbeddedSweeper
from carehub.outbox.staging import queue_message
from carehub.runtime import Runtime
from carehub.tickets import repository as tickets
from carehub.tickets.reference import format_reference
from channels.base import ChannelKind

CONTACTS = Contact.__table__  # type: ignore[attr-defined]
BATCH = 200
_TEXT = {
    ("en", CLOSED): "{city}: your request {reference} ({service}) is now closed. {notes}",
    ("en", "open"): "{city}: your request {reference} ({service}) is open again. {notes}",
    ("fr", CLOSED): "{city} : votre demande {reference} ({service}) est maintenant fermée. {notes}",
    ("fr", "open"): "{city} : votre demande {reference} ({service}) est de nouveau ouverte. {notes}",
}


async def tell_status_changes(rt: Runtime) -> int:
    """One pass: every request whose status changed since its requester was told; returns the notices staged."""
    staged = 0
    async with rt.transaction() as tx:
        for row in await requests.changed_since_told(tx.conn, BATCH):
            status = views.status_of(row)
            if await requests.mark_told(tx.conn, row.ticket_id, row.notified_status, status):
                staged += await _tell(tx, rt, row, status, utcnow())
    return staged


async def _tell(tx: Tx, rt: Runtime, row: AnyRow, status: str, now: datetime) -> int:
    ticket = await tickets.get_ticket(tx.conn, row.ticket_id)
    if ticket is None:
        return 0
    to = await contacts.address_by_id(tx.conn, ticket.address_id)
    if to.channel not in (ChannelKind.SMS, ChannelKind.EMAIL) or to.opted_out or to.undeliverable_reason is not None:
        return 0
    language = (
        await tx.conn.execute(select(CONTACTS.c.language).where(CONTACTS.c.id == ticket.contact_id))
    ).scalar_one()
    template = _TEXT.get((language, status), _TEXT[("en", status)])
    body = template.format(
        city=rt.settings.city_name,
        reference=format_reference(rt.settings.ticket_prefix, row.ticket_id),
        service=row.service_name,
        notes=views.status_notes(rt.settings, row),
    )
    await queue_message(
        tx, ticket_id=row.ticket_id, channel=to.channel, to=to.address, body=body, now=now, meta={"auto": "open311"}
    )
    return 1


def start_open311_timer(rt: Runtime) -> EmbeddedSweeper | None:
    """Embedded mode: tell status changes in-process (production runs it as an arq cron job)."""
    if rt.settings.redis_url is not None:
        return None
    timer = EmbeddedSweeper(lambda: tell_status_changes(rt), rt.settings.event_feed_interval_seconds, name="open311")
    timer.start()
    return timer
