"""A resident answering the survey by reply (SMS or email): a message that is only a rating, like "5", "4!" or
"4 thanks", on a ticket whose survey is waiting, records the rating instead of reopening the ticket.

The ingest (carehub_ingest on PostgreSQL, which stays one statement) reopens a resolved ticket on any message,
so this runs after the ingest has committed: it records the rating, marks the message {"csat": N}, and puts the
ticket back to resolved (resolved_at becomes the survey's sent_at: close enough, and it keeps the reopen window).
A crash between the two commits leaves the ticket reopened with the digit on it for an agent to see: a person
then does what this would have done, and nothing is lost.

Cheap on the hot path: the body is matched against a pattern first; only a match costs a query.

Only a message that joins the surveyed ticket counts: past the reopen window (CAREHUB_REOPEN_WINDOW_DAYS, 7 by
default) a reply opens a new ticket, as any message would, so the 14 days hold for the link only.
"""

from __future__ import annotations

import re
from datetime import timedelta

from carehub.clock import utcnow
from carehub.csat import repository as surveys
from carehub.models import TicketStatus
from carehub.realtime.events import AGENTS_TOPIC, agent_event
from carehub.runtime import Runtime
from carehub.tickets import repository as tickets
from carehub.tickets.reference import format_reference

ANSWER_WINDOW = timedelta(days=14)
MAX_RATING_CHARS = 40
_RATING = re.compile(
    r"^\W*([1-5])(?:\s*/\s*5)?(?![\d])\W*"
    r"(?:(?:thanks?(?:\s+you)?|thank\s+you|thx|ty|cheers|merci(?:\s+beaucoup)?|stars?|[ée]toiles?)\b\W*)?$",
    re.IGNORECASE,
)


def parse_rating(body: str) -> int | None:
    """The rating a message is, if it is nothing but one: a digit 1-5, maybe with punctuation or a thank-you."""
    if len(body) > MAX_RATING_CHARS:
        return None
    found = _RATING.match(body.strip())
    return None if found is None else int(found.group(1))


async def after_ingest(rt: Runtime, *, ticket_id: int, message_id: int, body: str) -> int | None:
    """Take a just-stored resident message as the survey's answer if it is one; the rating, or None."""
    rating = parse_rating(body)
    if rating is None:
        return None
    now = utcnow()
    async with rt.transaction() as tx:
        conn = tx.conn
        survey = await surveys.unanswered_since(conn, ticket_id, now - ANSWER_WINDOW)
        if survey is None:
            return None
        await surveys.record_answer(conn, survey.id, rating=rating, comment=None, now=now, keep_comment=True)
        meta = await surveys.message_meta(conn, message_id) or {}
        await surveys.mark_message(conn, message_id, {**meta, "csat": rating})
        # Back to resolved only if the ticket was simply waiting resolved: nobody else wrote since the survey.
        ticket = await tickets.get_ticket(conn, ticket_id)
        restored = (
            ticket is not None
            and ticket.status == TicketStatus.OPEN.value
            and not await surveys.others_since(conn, ticket_id, message_id, survey.sent_at)
        )
        if restored:
            await tickets.update_ticket(
                conn,
                ticket_id,
                {"status": TicketStatus.RESOLVED.value, "resolved_at": survey.sent_at, "updated_at": now},
            )
        tx.staged_events.append(
            (
                AGENTS_TOPIC,
                agent_event(
                    "csat.answered",
                    ticket_id=ticket_id,
                    reference=format_reference(rt.settings.ticket_prefix, ticket_id),
                    rating=rating,
                    status=TicketStatus.RESOLVED.value if restored else None if ticket is None else ticket.status,
                ),
            )
        )
    return rating
