"""Outgoing email for outbox rows: the template (acknowledgement or agent reply), subject with the ticket
reference, threading headers, loop-protection headers, and a Message-ID that is the same on every attempt; and
notices outside any ticket (a subscription's confirmation link), which carry their own subject and text."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.clock import utcnow
from carehub.csat import messages as csat_messages
from carehub.db import AnyRow
from carehub.help import suggestion
from carehub.inbound import after_hours
from carehub.mail import repository as mail
from carehub.mail.ingest import ack_context, ack_mail, ack_template, message_id_for
from carehub.models import Agent, Contact, Message, Outbox, Ticket
from carehub.outbox.repository import ClaimedDelivery
from carehub.runtime import Runtime
from carehub.status.links import link_in
from carehub.tickets.reference import format_reference
from channels.base import OutboundEmail, PermanentSendError
from channels.email.loops import outgoing_auto_headers

OUTBOX = Outbox.__table__  # type: ignore[attr-defined]
MESSAGES = Message.__table__  # type: ignore[attr-defined]
TICKETS = Ticket.__table__  # type: ignore[attr-defined]
CONTACTS = Contact.__table__  # type: ignore[attr-defined]
AGENTS = Agent.__table__  # type: ignore[attr-defined]


async def compose_many(
    rt: Runtime, conn: AsyncConnection, outbox_ids: Collection[int]
) -> dict[int, OutboundEmail | PermanentSendError]:
    """The mail for each outbox row, in three queries whatever their number; a PermanentSendError for a row whose
    address is known not to work (an earlier permanent bounce)."""
    if not outbox_ids:
        return {}
    rows = list(
        await conn.execute(
            select(
                OUTBOX.c.id,
                OUTBOX.c.to_address,
                OUTBOX.c.created_at,
                MESSAGES.c.body,
                MESSAGES.c.meta,
                TICKETS.c.id.label("ticket_id"),
                TICKETS.c.subject,
                CONTACTS.c.language,
                CONTACTS.c.display_name,
                AGENTS.c.name.label("agent_name"),
            )
            .join(MESSAGES, MESSAGES.c.id == OUTBOX.c.message_id)
            .join(TICKETS, TICKETS.c.id == MESSAGES.c.ticket_id)
            .join(CONTACTS, CONTACTS.c.id == TICKETS.c.contact_id)
            .outerjoin(AGENTS, AGENTS.c.id == MESSAGES.c.author_agent_id)
            .where(OUTBOX.c.id.in_(outbox_ids))
        )
    )
    bounced = await mail.undeliverable(conn, {r.to_address for r in rows})
    threads = await mail.email_threads(conn, {r.ticket_id for r in rows})
    composed: dict[int, OutboundEmail | PermanentSendError] = {}
    for row in rows:
        if row.to_address in bounced:
            reason = bounced[row.to_address]
            composed[row.id] = PermanentSendError(
                f"not sent: {row.to_address} is marked undeliverable ({reason})", code="bounced"
            )
        else:
            composed[row.id] = _compose(rt, row, threads[row.ticket_id])
    return composed


def _compose(rt: Runtime, row: AnyRow, thread: mail.Thread) -> OutboundEmail:
    settings = rt.settings
    reference = format_reference(settings.ticket_prefix, row.ticket_id)
    auto = (row.meta or {}).get("auto")  # "ack", "transcript" (a chat's, asked for by the resident), or None
    is_ack = auto == "ack"
    if is_ack and row.display_name is None:  # the common case, from templates rendered once per process
        # After hours if it was then; the status link's token is kept only in the stored text.
        text_body, html = ack_mail(
            rt,
            row.language,
            reference,
            row.created_at,
            status_link=link_in(row.body),
            suggested=suggestion.in_text(row.body),
        )
    else:
        context = {
            **ack_context(rt, reference, link_in(row.body)),
            "contact_name": row.display_name,
            "suggestion": suggestion.in_text(row.body) if is_ack else None,
        }
        extra = {} if is_ack else {"body": row.body, "agent_name": row.agent_name}
        if auto == "csat":  # the satisfaction survey: its links live only in the stored text
            extra = csat_messages.mail_context(row.body)
        template = auto if auto in ("ack", "transcript", "csat") else "reply"
        if is_ack:  # the one chosen when the mail arrived: after hours, it names the next opening
            template, extra = ack_template(rt, row.language, after_hours.reopening(settings, row.created_at))
        text_body, html = rt.templates.render_email(template, row.language, **context, **extra)
    topic = thread.latest_inbound_subject or row.subject or settings.city_name
    subject = topic if reference in topic else f"{topic} [{reference}]"
    if thread.latest_inbound_id is not None and not subject.lower().startswith("re:"):
        subject = f"Re: {subject}"
    headers = outgoing_auto_headers("auto-replied", settings.email_from_address) if is_ack else {}
    if auto == "csat":
        headers = outgoing_auto_headers("auto-generated", settings.email_from_address)
    created_ms = int(row.created_at.timestamp() * 1000)
    return OutboundEmail(
        message_id=message_id_for(rt, row.id, created_ms),
        subject=subject,
        text=text_body,
        html=html,
        in_reply_to=thread.latest_inbound_id,
        references=tuple(thread.message_ids),
        headers=headers,
    )


def compose_notice(rt: Runtime, claimed: ClaimedDelivery) -> OutboundEmail:
    """A notice's mail: its own subject and text, sent automatically (so responders stay quiet)."""
    created_ms = int((claimed.created_at or utcnow()).timestamp() * 1000)
    return OutboundEmail(
        message_id=message_id_for(rt, claimed.id, created_ms),
        subject=claimed.subject or rt.settings.city_name,
        text=claimed.body,
        headers=outgoing_auto_headers("auto-generated", rt.settings.email_from_address),
    )
