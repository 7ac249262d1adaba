"""The answer to a texted STATUS (STATUT): where the sender's open requests are, newest first, each with a fresh
status link; or, given a reference, that one request if it is the sender's. It never names anyone else's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.contacts.repository import Sender
from carehub.messaging.templates import MessageTemplates
from carehub.models import ACTIVE_TICKET_STATUSES, Ticket, TicketStatus
from carehub.settings import Settings
from carehub.status import links
from carehub.status.words import status_words
from carehub.tickets.reference import format_reference, parse_reference
from channels.base import ChannelKind
from channels.sms.segments import sms_segments

TICKETS = Ticket.__table__  # type: ignore[attr-defined]
TEMPLATE = "keyword_status"
MAX_REQUESTS = 3
MAX_SEGMENTS = 3


@dataclass(frozen=True)
class _Request:
    id: int
    reference: str
    words: str


async def answer(
    conn: AsyncConnection,
    settings: Settings,
    templates: MessageTemplates,
    *,
    sender: Sender | None,
    argument: str | None,
    language: str,
    now: datetime,
) -> str:
    """The reply's text; the links it carries are issued here (in the caller's transaction)."""
    asked = None if argument is None else parse_reference(settings.ticket_prefix, argument)
    found = [] if sender is None else await _requests(conn, settings, sender.contact_id, asked, language, now)
    shown = _fitting(templates, settings, language, found)
    requests = []
    for request in shown:
        issued = await links.issue(conn, settings, request.id, now)
        requests.append({"reference": request.reference, "words": request.words, "link": issued.url})
    named = argument if asked is None else format_reference(settings.ticket_prefix, asked)
    return _render(templates, settings, language, requests, named)


async def _requests(
    conn: AsyncConnection, settings: Settings, contact_id: int, asked: int | None, language: str, now: datetime
) -> list[_Request]:
    query = select(TICKETS.c.id, TICKETS.c.status, TICKETS.c.team).where(TICKETS.c.contact_id == contact_id)
    if asked is not None:  # that one, whatever its state, if it is the sender's
        query = query.where(TICKETS.c.id == asked)
    else:
        reopen_since = now - timedelta(days=settings.reopen_window_days)
        query = query.where(
            or_(
                TICKETS.c.status.in_([s.value for s in ACTIVE_TICKET_STATUSES]),
                and_(TICKETS.c.status == TicketStatus.RESOLVED.value, TICKETS.c.resolved_at >= reopen_since),
            )
        )
    rows = await conn.execute(query.order_by(TICKETS.c.id.desc()).limit(MAX_REQUESTS))
    return [
        _Request(r.id, format_reference(settings.ticket_prefix, r.id), status_words(r.status, r.team, language))
        for r in rows
    ]


def _fitting(templates: MessageTemplates, settings: Settings, language: str, found: list[_Request]) -> list[_Request]:
    """As many requests as fit in MAX_SEGMENTS (links have a fixed length, so a stand-in measures them)."""
    stand_in = links.url_for(settings, "x" * links.TOKEN_CHARS)
    shown = list(found)
    while len(shown) > 1:
        sample = [{"reference": r.reference, "words": r.words, "link": stand_in} for r in shown]
        if sms_segments(_render(templates, settings, language, sample, None)).segments <= MAX_SEGMENTS:
            break
        shown.pop()
    return shown


def _render(
    templates: MessageTemplates,
    settings: Settings,
    language: str,
    requests: list[dict[str, str]],
    argument: str | None,
) -> str:
    return templates.render(
        ChannelKind.SMS, TEMPLATE, language, city_name=settings.city_name, requests=requests, asked=argument
    )
