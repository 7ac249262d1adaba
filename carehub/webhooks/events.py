"""The events webhooks carry: their names, deterministic ids (so reading a change twice stages it once) and
payloads, which hold what a receiving system needs and no resident's phone number or email address."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from carehub.db import AnyRow
from carehub.models import Direction
from carehub.tickets.reference import format_reference

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class EventType(StrEnum):
    TICKET_CREATED = "ticket.created"
    TICKET_UPDATED = "ticket.updated"
    MESSAGE_CREATED = "message.created"
    ALERT_SENT = "alert.sent"  # the alert started going out (its deliveries are being staged and sent)
    ALERT_COMPLETED = "alert.completed"  # every delivery of the alert reached a final state


EVENT_TYPES = tuple(e.value for e in EventType)


@dataclass(frozen=True)
class Event:
    id: str  # at most 64 characters (outbox.event_id): "<type>:<row id>[:<change time in microseconds>]"
    type: EventType
    at: datetime  # when it happened; endpoints registered after this do not get it
    data: dict[str, Any]

    def body(self) -> str:
        """The JSON every subscribed endpoint receives (and that is signed as it stands)."""
        payload = {"id": self.id, "type": self.type.value, "created_at": _iso(self.at), "data": self.data}
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def type_of(event_id: str) -> str:
    """The event type an event id names (ids start with it)."""
    return event_id.split(":", 1)[0]


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(microseconds=1)


def ticket_events(row: AnyRow, prefix: str, since: datetime) -> list[Event]:
    """What a ticket row read by the feed means: created (if that happened in the window read) and/or updated.
    Changes between two reads coalesce into one ticket.updated carrying the latest state."""
    data = {
        "id": row.id,
        "reference": format_reference(prefix, row.id),
        "status": row.status,
        "priority": row.priority,
        "team": row.team,
        "assignee_id": row.assignee_id,
        "channel": row.channel,
        "subject": row.subject,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }
    events = []
    if row.created_at >= since:
        events.append(Event(f"{EventType.TICKET_CREATED}:{row.id}", EventType.TICKET_CREATED, row.created_at, data))
    if row.updated_at > row.created_at:
        event_id = f"{EventType.TICKET_UPDATED}:{row.id}:{_micros(row.updated_at)}"
        events.append(Event(event_id, EventType.TICKET_UPDATED, row.updated_at, data))
    return events


def message_event(row: AnyRow, prefix: str) -> Event:
    data = {
        "id": row.id,
        "ticket_id": row.ticket_id,
        "ticket_reference": format_reference(prefix, row.ticket_id),
        "direction": "inbound" if row.direction == Direction.INBOUND.value else "outbound",
        "channel": row.channel,
        "body": row.body,
        "created_at": _iso(row.created_at),
    }
    return Event(f"{EventType.MESSAGE_CREATED}:{row.id}", EventType.MESSAGE_CREATED, row.created_at, data)


def alert_events(row: AnyRow, since: datetime) -> list[Event]:
    data = {
        "id": row.id,
        "kind": row.kind,
        "parent_id": row.parent_id,
        "title": row.title,
        "topic_id": row.topic_id,
        "area_ids": row.area_ids,
        "emergency": row.emergency,
        "channels": row.channels,
        "status": row.status,
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
    }
    events = []
    if row.started_at is not None and row.started_at >= since:
        events.append(Event(f"{EventType.ALERT_SENT}:{row.id}", EventType.ALERT_SENT, row.started_at, data))
    if row.finished_at is not None and row.finished_at >= since:
        event_id = f"{EventType.ALERT_COMPLETED}:{row.id}"
        events.append(Event(event_id, EventType.ALERT_COMPLETED, row.finished_at, data))
    return events
