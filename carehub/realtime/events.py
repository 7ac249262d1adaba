"""The agents' live events: one topic every replica's agent streams listen to, events already in server-sent-events
form so each replica forwards them without re-encoding."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from carehub.realtime.broker import Event
from carehub.tickets.reference import format_reference

AGENTS_TOPIC = "agents"
# A ticket changed team: who may see its events changed (an SSE comment, so a stream passing it on is harmless).
TEAM_CHANGED = ": team changed\n\n"


def team_changed(ticket_id: int) -> tuple[str, Event]:
    return AGENTS_TOPIC, Event(text=TEAM_CHANGED, ticket_id=ticket_id)


def agent_event(kind: str, *, ticket_id: int, **data: Any) -> Event:
    """An agents' event about one ticket (which decides who may see it)."""
    payload = json.dumps({"ticket_id": ticket_id, **data}, ensure_ascii=False, separators=(",", ":"), default=str)
    return Event(text=f"event: {kind}\ndata: {payload}\n\n", ticket_id=ticket_id)


PREVIEW_CHARS = 1000  # an email can be long: the stream carries the start, the ticket has the rest


def inbound_events(
    ticket_prefix: str, *, ticket_id: int, message_id: int, channel: str, body: str, new_ticket: bool, at: datetime
) -> list[tuple[str, Event]]:
    """What agents are told when a resident's SMS or email lands: a new ticket, and the message."""
    reference = format_reference(ticket_prefix, ticket_id)
    events = []
    if new_ticket:
        events.append((AGENTS_TOPIC, agent_event("ticket.created", reference=reference, ticket_id=ticket_id)))
    events.append(
        (
            AGENTS_TOPIC,
            agent_event(
                "message.created",
                reference=reference,
                ticket_id=ticket_id,
                message_id=message_id,
                channel=channel,
                direction="in",
                body=body[:PREVIEW_CHARS],
                seq=None,
                at=at.isoformat(),
            ),
        )
    )
    return events
