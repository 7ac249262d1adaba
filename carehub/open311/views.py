"""A service request as GeoReport v2 shows it: status, notes, agency and dates from the ticket; the place, media
and description from the request. Nothing that identifies the requester is ever shown (names, email, phone)."""

from __future__ import annotations

from typing import Any

from carehub.db import AnyRow
from carehub.models import TicketStatus
from carehub.open311.repository import CLOSED, CLOSED_TICKET_STATUSES, OPEN
from carehub.open311.wire import w3c
from carehub.settings import Settings
from carehub.tickets.reference import format_reference

# The status in words, when staff have published no note of their own.
_WORDS = {
    TicketStatus.NEW: "Received. It will be looked at soon.",
    TicketStatus.OPEN: "In progress.",
    TicketStatus.PENDING: "Waiting for more information from the person who reported it.",
    TicketStatus.RESOLVED: "Resolved.",
    TicketStatus.CLOSED: "Closed.",
}


def status_of(row: AnyRow) -> str:
    return CLOSED if row.ticket_status in CLOSED_TICKET_STATUSES else OPEN


def agency(settings: Settings, team: str | None) -> str:
    """Who is responsible: the city, and the team whose queue has the request ("roads-operations": Roads
    Operations)."""
    if team is None:
        return settings.city_name
    return f"{settings.city_name}: {team.replace('-', ' ').replace('_', ' ').title()}"


def status_notes(settings: Settings, row: AnyRow) -> str:
    if row.merged_into_id is not None:
        return f"Closed: the same issue is followed as {format_reference(settings.ticket_prefix, row.merged_into_id)}."
    if row.public_note:
        return str(row.public_note)
    if row.ticket_status == TicketStatus.OPEN.value and row.team is not None:
        return f"In progress with {agency(settings, row.team).partition(': ')[2]}."
    return _WORDS[TicketStatus(row.ticket_status)]


def service_request(settings: Settings, row: AnyRow) -> dict[str, Any]:
    closed = status_of(row) == CLOSED
    return {
        "service_request_id": format_reference(settings.ticket_prefix, row.ticket_id),
        "status": status_of(row),
        "status_notes": status_notes(settings, row),
        "service_name": row.service_name,
        "service_code": row.service_code,
        "description": row.description or None,
        "agency_responsible": agency(settings, row.team),
        "service_notice": None,
        "requested_datetime": w3c(row.requested_at),
        "updated_datetime": w3c(row.updated_at),
        "expected_datetime": None if closed else w3c(row.resolution_due_at),
        "address": row.address_string,
        "address_id": row.address_id,
        "zipcode": row.zipcode,
        "lat": row.lat,
        "long": row.long,
        "media_url": row.media_url,
    }
