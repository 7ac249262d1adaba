"""Routing rules: managed by supervisors over the API (validated, audited); on arrival the first active matching rule
(keywords as whole words, channel, the contact's language, the contact) sets team and priority and adds labels,
once; the sweep routes a ticket a crash left unrouted. The acknowledgement outside business hours says the office
is closed and when it opens."""

from __future__ import annotations

import calendar
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from carehub.clock import utcnow
from carehub.inbound.after_hours import reopens_in
from carehub.inbound.service import ack_texts, ingest
from carehub.messaging.templates import MessageTemplates, default_templates_dir
from carehub.models import AuditEvent, Contact, ContactAddress, Role, Ticket, TicketLabel
from carehub.routing.arrival import route_ticket, route_unrouted
from carehub.settings import Settings
from carehub.tickets.reference import format_reference
from channels.base import ChannelKind, InboundMessage
from tests.conftest import Hub, mail_settings, running_hub
from tests.fakes.smtp_server import SmtpSink
from tests.fakes.twilio_api import FakeTwilioApi
from tests.support.mail import post_email, resident_mail
from tests.support.twilio import new_message_sid, text_hub
from tests.support.waiting import eventually

TICKETS = Ticket.__table__  # type: ignore[attr-defined]
LABELS = TicketLabel.__table__  # type: ignore[attr-defined]
ADDRESSES = ContactAddress.__table__  # type: ignore[attr-defined]
CONTACTS = Contact.__table__  # type: ignore[attr-defined]
AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]
RULES = "/api/v1/routing-rules"
TORONTO = ZoneInfo("America/Toronto")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def supervisor(hub: Hub) -> dict[str, str]:
    return bearer(await hub.agent_token(role=Role.SUPERVISOR, email="sup@city.test"))


async def add_rule(hub: Hub, auth: dict[str, str], **rule: object) -> dict[str, object]:
    response = await hub.client.post(RULES, json=rule, headers=auth)
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


async def ticket_of(hub: Hub, address: str) -> int:
    """The newest ticket of the resident writing from this address."""
    async with hub.runtime.engine.connect() as conn:
        found = (
            await conn.execute(
                select(func.max(TICKETS.c.id))
                .join(ADDRESSES, ADDRESSES.c.id == TICKETS.c.address_id)
                .where(ADDRESSES.c.address == address)
            )
        ).scalar_one()
    assert found is not None, f"no ticket from {address}"
    return int(found)


async def routed(hub: Hub, ticket_id: int) -> dict[str, object]:
    """The ticket once its arrival automation has run: team, priority, labels."""

    async def check() -> dict[str, object] | None:
        async with hub.runtime.engine.connect() as conn:
            row = (await conn.execute(select(TICKETS).where(TICKETS.c.id == ticket_id))).one()
            labels = sorted(
                (await conn.execute(select(LABELS.c.label).where(LABELS.c.ticket_id == ticket_id))).scalars()
            )
        if row.routed_at is None:
            return None
        return {"team": row.team, "priority": row.priority, "labels": labels, "routed_at": row.routed_at}

    return await eventually(check, what=f"ticket {ticket_id} routed")


async def text(hub: Hub, number: str, body: str) -> dict[str, object]:
    response = await text_hub(hub.client, number, body)
    assert response.status_code == 200, response.text
    return await routed(hub, await ticket_of(hub, number))


async def test_rules_are_read_by_agents_written_by_supervisors_validated_and_audited(
    hub: Hub, supervisor: dict[str, str]
) -> None:
    agent = bearer(await hub.agent_token(email="ana@city.test"))
    refused = await hub.client.post(RULES, json={"name": "x", "set_team": "roads"}, headers=agent)
    assert refused.status_code == 403

    too_many = await hub.client.post(
        RULES, json={"name": "x", "set_team": "roads", "keywords": [f"k{i}" for i in range(51)]}, headers=supervisor
    )
    long_label = await hub.client.post(RULES, json={"name": "x", "add_labels": ["l" * 65]}, headers=supervisor)
    long_keyword = await hub.client.post(
        RULES, json={"name": "x", "set_team": "t", "keywords": ["k" * 101]}, headers=supervisor
    )
    no_action = await hub.client.post(RULES, json={"name": "x", "keywords": ["tree"]}, headers=supervisor)
    no_contact = await hub.client.post(
        RULES, json={"name": "x", "set_team": "t", "contact_id": 999}, headers=supervisor
    )
    assert [r.status_code for r in (too_many, long_label, long_keyword, no_action, no_contact)] == [422] * 5
    assert "do something" in no_action.json()["detail"]

    rule = await add_rule(
        hub, supervisor, name="Roads", keywords=["pothole"], set_team=" Roads ", add_labels=["Potholes", "potholes"]
    )
    assert (rule["set_team"], rule["add_labels"], rule["is_active"]) == ("roads", ["potholes"], True)

    listed = await hub.client.get(RULES, headers=agent)
    assert [r["id"] for r in listed.json()] == [rule["id"]]
    changed = await hub.client.patch(
        f"{RULES}/{rule['id']}", json={"keywords": None, "position": 3}, headers=supervisor
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["keywords"], changed.json()["position"]) == (None, 3)
    assert (await hub.client.patch(f"{RULES}/{rule['id']}", json={"name": None}, headers=supervisor)).status_code == 422
    assert (await hub.client.patch(f"{RULES}/{rule['id']}", json={"name": "y"}, headers=agent)).status_code == 403
    assert (await hub.client.delete(f"{RULES}/{rule['id']}", headers=supervisor)).status_code == 204
    assert (await hub.client.get(f"{RULES}/{rule['id']}", headers=agent)).status_code == 404

    async with hub.runtime.engine.connect() as conn:
        actions = (
            await conn.execute(select(AUDIT.c.action).where(AUDIT.c.entity_type == "routing_rule").order_by(AUDIT.c.id))
        ).scalars()
        assert list(actions) == ["create", "update", "delete"]


async def test_a_keyword_in_the_first_message_sets_team_priority_and_labels_as_whole_words_only(
    hub: Hub, supervisor: dict[str, str]
) -> None:
    await add_rule(
        hub,
        supervisor,
        name="Potholes",
        keywords=["pothole", "nid-de-poule"],
        set_team="roads",
        set_priority="high",
        add_labels=["Roads", "pavement"],
    )

    matched = await text(hub, "+19055550101", "There is a huge POTHOLE on Kingston Rd.")
    french = await text(hub, "+19055550102", "Un Nid-de-Poule devant chez moi")
    not_a_word = await text(hub, "+19055550103", "Potholes everywhere, and a potholed lane")

    assert (matched["team"], matched["priority"], matched["labels"]) == ("roads", "high", ["pavement", "roads"])
    assert french["team"] == "roads"
    assert (not_a_word["team"], not_a_word["priority"], not_a_word["labels"]) == (None, "normal", [])


async def test_an_email_subject_matches_and_channel_rules_apply(hub: Hub, supervisor: dict[str, str]) -> None:
    await add_rule(hub, supervisor, name="Trees", position=1, keywords=["tree"], set_team="forestry")
    await add_rule(hub, supervisor, name="Mail desk", position=2, channel="email", set_team="mail-desk")

    await post_email(hub.client, resident_mail("a@example.org", "Fallen tree", "It blocks the road.\n"))
    await post_email(hub.client, resident_mail("b@example.org", "Bin not collected", "Again.\n"))
    sms = await text(hub, "+19055550104", "Bin not collected")

    assert (await routed(hub, await ticket_of(hub, "a@example.org")))["team"] == "forestry"
    assert (await routed(hub, await ticket_of(hub, "b@example.org")))["team"] == "mail-desk"
    assert sms["team"] is None


async def test_the_first_active_rule_by_position_wins_language_and_contact_included(
    hub: Hub, supervisor: dict[str, str]
) -> None:
    resident = "+19055550105"
    first = await text(hub, resident, "Bonjour")
    assert first["team"] is None
    contact_id = await contact_of(hub, resident)
    async with hub.runtime.transaction() as tx:  # the resident writes in French; their first ticket is closed
        await tx.conn.execute(update(CONTACTS).where(CONTACTS.c.id == contact_id).values(language="fr"))
        await tx.conn.execute(update(TICKETS).where(TICKETS.c.contact_id == contact_id).values(status="closed"))

    await add_rule(hub, supervisor, name="Inactive", position=0, set_team="nobody", is_active=False)
    await add_rule(hub, supervisor, name="French", position=20, language="fr", set_team="francais")
    vip = await add_rule(hub, supervisor, name="VIP", position=10, contact_id=contact_id, set_team="vip")
    second = await text(hub, resident, "Encore moi")
    await hub.client.patch(f"{RULES}/{vip['id']}", json={"position": 30}, headers=supervisor)
    async with hub.runtime.transaction() as tx:
        await tx.conn.execute(update(TICKETS).where(TICKETS.c.contact_id == contact_id).values(status="closed"))
    third = await text(hub, resident, "Et encore")
    other = await text(hub, "+19055550106", "Hello")

    assert (second["team"], third["team"], other["team"]) == ("vip", "francais", None)


async def contact_of(hub: Hub, address: str) -> int:
    async with hub.runtime.engine.connect() as conn:
        found = (await conn.execute(select(ADDRESSES.c.contact_id).where(ADDRESSES.c.address == address))).scalar_one()
    return int(found)


async def test_routing_a_ticket_again_changes_nothing(hub: Hub, supervisor: dict[str, str]) -> None:
    rule = await add_rule(hub, supervisor, name="Water", keywords=["water"], set_team="water", add_labels=["leak"])
    before = await text(hub, "+19055550107", "Water leaking on the street")
    ticket_id = await ticket_of(hub, "+19055550107")
    await hub.client.patch(
        f"{RULES}/{rule['id']}", json={"set_team": "elsewhere", "add_labels": ["other"]}, headers=supervisor
    )

    async with hub.runtime.transaction() as tx:
        again = await route_ticket(tx, hub.settings, ticket_id, utcnow(), hub.runtime.presence)

    assert again is None
    assert await routed(hub, ticket_id) == before


async def test_the_sweep_routes_a_ticket_a_crash_left_unrouted(hub: Hub, supervisor: dict[str, str]) -> None:
    await add_rule(hub, supervisor, name="Snow", keywords=["snow"], set_team="winter", add_labels=["plow"])
    resident = "+19055550108"
    message = InboundMessage(ChannelKind.SMS, new_message_sid(), resident, "+19055550100", "Snow not cleared")
    async with hub.runtime.transaction() as tx:  # the ingest committed, then the process died before routing
        ingested = await ingest(tx, message, settings=hub.settings, templates=hub.runtime.templates, now=utcnow())
    async with hub.runtime.engine.connect() as conn:
        row = (await conn.execute(select(TICKETS).where(TICKETS.c.id == ingested.ticket_id))).one()
    assert (row.routed_at, row.team) == (None, None)

    assert await route_unrouted(hub.runtime, utcnow()) == 0  # just arrived: its own routing may still be running
    assert await route_unrouted(hub.runtime, utcnow() + timedelta(seconds=11)) == 1
    assert await route_unrouted(hub.runtime, utcnow() + timedelta(seconds=11)) == 0

    after = await routed(hub, ingested.ticket_id)
    assert (after["team"], after["labels"]) == ("winter", ["plow"])


# ---- the acknowledgement outside business hours -----------------------------------------------------------


def closed_for_two_days(settings: Settings, **more: object) -> tuple[Settings, datetime]:
    """Settings under which the office is closed now, whenever the test runs (yesterday, today and tomorrow are
    holidays), and the next opening: the day after tomorrow at 8:30 in Toronto."""
    today = utcnow().astimezone(TORONTO).date()
    holidays = [today + timedelta(days=d) for d in (-1, 0, 1)]
    reopens = datetime.combine(today + timedelta(days=2), datetime.min.time(), tzinfo=TORONTO).replace(
        hour=8, minute=30
    )
    closed = settings.model_copy(
        update={
            "business_hours": "mon-sun 08:30-16:30",
            "business_timezone": "America/Toronto",
            "holidays": holidays,
            **more,
        }
    )
    return closed, reopens


def english_opening(at: datetime) -> str:
    return f"{calendar.day_name[at.weekday()]}, {calendar.month_name[at.month]} {at.day} at 8:30 a.m."


async def test_an_sms_after_hours_is_acknowledged_with_when_the_office_opens(
    settings: Settings, fake_twilio: FakeTwilioApi
) -> None:
    closed, reopens = closed_for_two_days(settings)
    async with running_hub(closed) as hub:
        await text_hub(hub.client, "+19055550109", "Is the pool open?")
        [ack] = await fake_twilio.wait_for(1)

    assert ack.body is not None
    assert "PKR-000001" in ack.body
    assert f"We're closed now and open again on {english_opening(reopens)}; an agent will reply here then." in ack.body


async def test_an_sms_in_business_hours_gets_the_usual_acknowledgement(
    settings: Settings, fake_twilio: FakeTwilioApi
) -> None:
    async with running_hub(settings.model_copy(update={"business_hours": "mon-sun 00:00-24:00"})) as hub:
        await text_hub(hub.client, "+19055550110", "Is the pool open?")
        [ack] = await fake_twilio.wait_for(1)

    assert ack.body is not None
    assert "A member of our team will reply here." in ack.body
    assert "closed" not in ack.body


async def test_an_email_after_hours_is_acknowledged_with_when_the_office_opens(
    settings: Settings, smtp_sink: SmtpSink
) -> None:
    closed, reopens = closed_for_two_days(mail_settings(settings, smtp_sink))
    async with running_hub(closed) as hub:
        response = await post_email(hub.client, resident_mail("c@example.org", "Library hours", "When?\n"))
        assert response.json()["acknowledged"] is True
        [ack] = await smtp_sink.wait_for(1)

    text_part, html_part = ack.message.get_body(("plain",)), ack.message.get_body(("html",))
    assert text_part is not None
    assert html_part is not None
    opens = english_opening(reopens)
    sentence = f"Our office is closed now and opens again on {opens}; a member of our team will reply then."
    assert sentence in " ".join(text_part.get_content().split())
    assert english_opening(reopens) in html_part.get_content()
    assert "Our office is closed now and opens again on" in html_part.get_content()


SATURDAY_MORNING = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)  # 10:00 in Toronto
MONDAY_AFTERNOON = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)  # 17:00 in Toronto, after closing
WEEKDAYS = Settings(business_hours="mon-fri 08:30-16:30", business_timezone="America/Toronto", holidays=[])


def test_after_hours_texts_name_the_next_opening_in_each_language() -> None:
    templates = MessageTemplates(default_templates_dir())

    weekend = ack_texts(templates, WEEKDAYS, ChannelKind.SMS, SATURDAY_MORNING)
    evening = ack_texts(templates, WEEKDAYS, ChannelKind.SMS, MONDAY_AFTERNOON)
    holiday = WEEKDAYS.model_copy(update={"holidays": [date(2026, 11, 30)]})
    long_weekend = ack_texts(templates, holiday, ChannelKind.SMS, SATURDAY_MORNING)
    in_hours = ack_texts(templates, WEEKDAYS, ChannelKind.SMS, datetime(2026, 11, 30, 15, 0, tzinfo=UTC))

    assert "open again on Monday, November 30 at 8:30 a.m.;" in weekend["en"]
    assert "à leur réouverture, le lundi 30 novembre à 8 h 30." in weekend["fr"]
    assert "open again on Tuesday, December 1 at 8:30 a.m.;" in evening["en"]  # a new opening: rendered anew
    assert "le mardi 1er décembre à 8 h 30" in evening["fr"]
    assert "Tuesday, December 1" in long_weekend["en"]
    assert "closed" not in in_hours["en"]
    assert "{reference}" in weekend["en"]  # the slot the ingest fills in
    assert format_reference("PKR", 1) not in weekend["en"]


GOLDEN = Path(__file__).parent / "golden" / "email"
UPDATE_GOLDEN = os.environ.get("CAREHUB_UPDATE_GOLDEN") == "1"  # then review the diff of the golden files


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_after_hours_email_renders_as_its_golden_files(language: str) -> None:
    templates = MessageTemplates(default_templates_dir())
    context = {**GOLDEN_CONTEXT, "reopens": reopens_in(WEEKDAYS, SATURDAY_MORNING + timedelta(days=2), language)}
    parts = dict(zip(("txt", "html"), templates.render_email("ack_after_hours", language, **context), strict=True))
    for ext, rendered in parts.items():
        golden = GOLDEN / f"ack_after_hours.{language}.{ext}"
        if UPDATE_GOLDEN:
            golden.write_text(rendered + "\n", encoding="utf-8")
        assert rendered + "\n" == golden.read_text(encoding="utf-8"), f"{golden.name} differs"


GOLDEN_CONTEXT = {
    "city_name": "City of Pickering",
    "reference": "PKR-000123",
    "contact_name": "Jane Doe",
    "sender_name": "City of Pickering Customer Care",
    "city_postal_address": "One The Esplanade, Pickering, ON L1V 6K7",
    "city_phone": "905.683.7575",
    "city_website": "https://www.pickering.ca",
    "status_link": "https://care.pickering.ca/s/Qm9uam91ciBQaWNrZXJp",
}
