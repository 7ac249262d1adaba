"""POST requests: an Open311 app's service request checked as the spec says, then made a ticket in the same
queue as SMS, email and chat, in one transaction with its acknowledgement.

The ticket's channel is where the resident is answered: the email they gave, else the phone, else (an anonymous
report) the open311 channel, where staff's replies are published as the request's status_notes.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from starlette.datastructures import FormData

from carehub import audit
from carehub.chat.service import BadAddress, normalise_address
from carehub.clock import utcnow
from carehub.contacts import repository as contacts
from carehub.db import AnyRow, Tx
from carehub.inbound.service import REFERENCE_SLOT, ack_texts
from carehub.mail.ingest import ack_mail
from carehub.open311 import catalogue
from carehub.open311 import repository as requests
from carehub.open311.repository import OPEN
from carehub.open311.wire import Open311Error
from carehub.outbox.staging import queue_message
from carehub.realtime.events import inbound_events
from carehub.routing.arrival import route_soon
from carehub.runtime import Runtime
from carehub.settings import Settings
from carehub.status import links as status_links
from carehub.tickets import repository as tickets
from carehub.tickets.reference import format_reference
from channels.base import ChannelKind

MAX_DESCRIPTION = 4000  # GeoReport v2's limit
SUBJECT_CHARS = 120
_ATTRIBUTE = re.compile(r"^attribute\[([^\]]{1,64})\](\[\])?$")
_TEXT_FIELDS = {
    "address_string": 300,
    "address_id": 100,
    "zipcode": 16,
    "first_name": 100,
    "last_name": 100,
    "device_id": 100,
    "account_id": 100,
    "media_url": 1000,
}


@dataclass(frozen=True)
class Submission:
    service_code: str
    description: str
    lat: float | None
    long: float | None
    text: dict[str, str | None]  # address_string, address_id, zipcode, names, device and account ids, media_url
    attributes: dict[str, list[str]]
    email: str | None
    phone: str | None
    language: str


@dataclass(frozen=True)
class Created:
    ticket_id: int
    token: str


def read_submission(settings: Settings, form: FormData, language: str) -> Submission:
    """The POST's fields, checked; every problem at once in a 400 (the spec's 'missing or invalid' error)."""
    problems: list[str] = []

    def field(name: str) -> str | None:
        value = form.get(name)
        return value.strip() or None if isinstance(value, str) else None

    service_code = field("service_code")
    if service_code is None:
        problems.append("service_code is required")
    description = field("description") or ""
    if len(description) > MAX_DESCRIPTION:
        problems.append(f"description is longer than {MAX_DESCRIPTION:,} characters")
    lat, long = _coordinates(field("lat"), field("long"), problems)
    text = {name: field(name) for name in _TEXT_FIELDS}
    for name, limit in _TEXT_FIELDS.items():
        value = text[name]
        if value is not None and len(value) > limit:
            problems.append(f"{name} is longer than {limit} characters")
    if lat is None and text["address_string"] is None and text["address_id"] is None:
        problems.append("a location is required: lat and long, address_string or address_id")
    media_url = text["media_url"]
    if media_url is not None and not media_url.lower().startswith(("https://", "http://")):
        problems.append("media_url must be an http(s) URL")
    email = _address(settings, ChannelKind.EMAIL, field("email"), "email", problems)
    phone = _address(settings, ChannelKind.SMS, field("phone"), "phone", problems)
    attributes: dict[str, list[str]] = {}
    for key in form:
        match = _ATTRIBUTE.match(key)
        if match is not None:
            attributes.setdefault(match.group(1), []).extend(v for v in form.getlist(key) if isinstance(v, str))
    if problems:
        raise Open311Error(400, "; ".join(problems))
    assert service_code is not None  # noqa: S101 - a problem above otherwise
    return Submission(service_code, description, lat, long, text, attributes, email, phone, language)


def _coordinates(lat: str | None, long: str | None, problems: list[str]) -> tuple[float | None, float | None]:
    if lat is None and long is None:
        return None, None
    if lat is None or long is None:
        problems.append("lat and long go together: give both or neither")
        return None, None
    try:
        y, x = float(lat), float(long)
    except ValueError:
        problems.append(f"lat and long must be decimal degrees, not '{lat[:20]}', '{long[:20]}'")
        return None, None
    if not (-90 <= y <= 90 and -180 <= x <= 180):
        problems.append("lat must be within -90..90 and long within -180..180")
        return None, None
    return y, x


def _address(settings: Settings, channel: ChannelKind, value: str | None, name: str, problems: list[str]) -> str | None:
    if value is None:
        return None
    try:
        return normalise_address(settings, channel, value)
    except BadAddress:
        problems.append(f"{name} '{value[:80]}' is not a valid {'email address' if name == 'email' else 'number'}")
        return None


async def submit(rt: Runtime, api_key_id: int, sub: Submission, idempotency_key: str | None) -> Created:
    """Make the request a ticket (or, for a repeated Idempotency-Key, find the one made before)."""
    now = utcnow()
    try:
        async with rt.transaction() as tx:
            if idempotency_key is not None:
                earlier = await requests.by_idempotency_key(tx.conn, api_key_id, idempotency_key)
                if earlier is not None:
                    return Created(earlier.ticket_id, earlier.token)
            created, message_id = await _create(tx, rt, api_key_id, sub, idempotency_key, now)
    except IntegrityError:
        if idempotency_key is None:
            raise
        async with rt.transaction() as tx:  # the same key posted twice at once: the other request made it
            earlier = await requests.by_idempotency_key(tx.conn, api_key_id, idempotency_key)
        if earlier is None:
            raise
        return Created(earlier.ticket_id, earlier.token)
    route_soon(rt, created.ticket_id)
    rt.publish_soon(
        inbound_events(
            rt.settings.ticket_prefix,
            ticket_id=created.ticket_id,
            message_id=message_id,
            channel=ChannelKind.OPEN311.value,
            body=sub.description,
            new_ticket=True,
            at=now,
        )
    )
    return created


async def _create(
    tx: Tx, rt: Runtime, api_key_id: int, sub: Submission, idempotency_key: str | None, now: datetime
) -> tuple[Created, int]:
    conn = tx.conn
    service = await catalogue.service(conn, sub.service_code)
    if service is None or not service.is_active:
        raise Open311Error(400, f"service_code '{sub.service_code}' is not a service of this city")
    attributes, problems = catalogue.check_attributes(service, sub.attributes)
    if problems:
        raise Open311Error(400, "; ".join(problems))
    token = secrets.token_urlsafe(18)
    name = " ".join(n for n in (sub.text["first_name"], sub.text["last_name"]) if n) or None
    contact_id, reach = await _requester(conn, sub, name, token, now)
    ticket_id = await tickets.create_ticket(
        conn,
        contact_id=contact_id,
        address_id=reach.id,
        channel=reach.channel,
        subject=_subject(service.name, sub.description),
        now=now,
    )
    if service.team is not None:
        await tickets.update_ticket(conn, ticket_id, {"team": service.team})
    message_id = await tickets.add_inbound_message(
        conn,
        ticket_id=ticket_id,
        channel=ChannelKind.OPEN311,
        body=_message_body(service, sub, attributes),
        provider_id=f"open311:{token}",
        meta={"open311": {"service_code": service.code, "token": token}},
        now=now,
    )
    assert message_id is not None  # noqa: S101 - the token is new, so the provider id is too
    await requests.add(
        conn,
        {
            "ticket_id": ticket_id,
            "token": token,
            "service_code": service.code,
            "api_key_id": api_key_id,
            "idempotency_key": idempotency_key,
            "description": sub.description,
            "lat": sub.lat,
            "long": sub.long,
            **sub.text,
            "attributes": attributes,
            "email": sub.email,
            "phone": sub.phone,
            "notified_status": OPEN,  # the acknowledgement tells them it is open
            "created_at": now,
        },
    )
    await audit.record(
        conn, actor=f"open311-key:{api_key_id}", action="create", entity_type="ticket", entity_id=ticket_id, now=now
    )
    if reach.channel is not ChannelKind.OPEN311 and not reach.opted_out and reach.undeliverable_reason is None:
        await _acknowledge(tx, rt, ticket_id, reach, sub.language, now)
    return Created(ticket_id, token), message_id


async def _requester(
    conn: Any, sub: Submission, name: str | None, token: str, now: datetime
) -> tuple[int, contacts.Address]:
    """The requester's contact (found by the email or phone they gave, else new) and the address they are
    answered at; every request also gets an open311 address, where staff publish notes on it."""
    given: tuple[ChannelKind, str] | None = None
    if sub.email is not None:
        given = (ChannelKind.EMAIL, sub.email)
    elif sub.phone is not None:
        given = (ChannelKind.SMS, sub.phone)
    reach: contacts.Address | None = None
    contact_id: int | None = None
    if given is not None:
        found = await contacts.address_by_value(conn, *given)
        if found is not None:
            reach, contact_id = found
        else:
            sender = await contacts.create_sender(
                conn, given[0], given[1], now, language=sub.language, display_name=name
            )
            contact_id = sender.contact_id
            reach = await contacts.address_by_id(conn, sender.address_id)
    published = f"request:{token}"
    if contact_id is None:
        sender = await contacts.create_sender(
            conn, ChannelKind.OPEN311, published, now, language=sub.language, display_name=name
        )
        return sender.contact_id, await contacts.address_by_id(conn, sender.address_id)
    await contacts.add_address(conn, contact_id, ChannelKind.OPEN311, published, now)
    assert reach is not None  # noqa: S101 - found or created with the contact
    return contact_id, reach


async def _acknowledge(tx: Tx, rt: Runtime, ticket_id: int, to: contacts.Address, language: str, now: datetime) -> None:
    reference = format_reference(rt.settings.ticket_prefix, ticket_id)
    link = await status_links.issue(tx.conn, rt.settings, ticket_id, now)
    if to.channel is ChannelKind.EMAIL:
        body, _html = ack_mail(rt, language, reference, now, status_link=link.url)
    else:
        texts = ack_texts(rt.templates, rt.settings, to.channel, now)
        body = texts.get(language, texts["en"]).replace(REFERENCE_SLOT, reference).replace(status_links.SLOT, link.url)
    await queue_message(
        tx, ticket_id=ticket_id, channel=to.channel, to=to.address, body=body, now=now, meta={"auto": "ack"}
    )


def _subject(service_name: str, description: str) -> str:
    first_line = description.strip().splitlines()[0] if description.strip() else ""
    subject = f"{service_name}: {first_line}" if first_line else service_name
    return subject if len(subject) <= SUBJECT_CHARS else subject[: SUBJECT_CHARS - 1].rstrip() + "…"


def _message_body(service: AnyRow, sub: Submission, attributes: dict[str, Any]) -> str:
    """What the agent reads: the description, then where, what the service asked, and the photo."""
    questions = {a["code"]: a["description"] for a in service.attributes}
    lines = [sub.description or "(no description)", "", f"Service: {service.name} ({service.code})"]
    where = [sub.text["address_string"], sub.text["address_id"] and f"address id {sub.text['address_id']}"]
    if sub.lat is not None:
        where.append(f"{sub.lat:.6f}, {sub.long:.6f}")
    lines.append("Location: " + "; ".join(w for w in where if w))
    for code, value in attributes.items():
        lines.append(f"{questions.get(code, code)}: {', '.join(value) if isinstance(value, list) else value}")
    if sub.text["media_url"]:
        lines.append(f"Photo: {sub.text['media_url']}")
    return "\n".join(lines)
