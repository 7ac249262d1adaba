"""Texting STATUS (or STATUT, or STATUS PKR-000123) answers where the sender's open requests are, each with a
fresh status link, and never names anyone else's; the text itself opens no ticket."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select, update

from carehub.messaging.templates import MessageTemplates, default_templates_dir
from carehub.models import Message, StatusLink, Ticket
from carehub.settings import Settings
from channels.base import ChannelKind
from channels.sms.keywords import Command, Keyword, parse_keyword
from channels.sms.segments import sms_segments
from tests.conftest import Hub
from tests.fakes.twilio_api import FakeTwilioApi
from tests.support.store_queries import count_rows, outbox_rows
from tests.support.twilio import SMS_PATH, post_signed, sms_params, text_hub

RESIDENT = "+19055550123"
NEIGHBOUR = "+19055550199"
LINK = re.compile(r"https://hub\.test/s/([A-Za-z0-9_-]{22})")
TICKETS = Ticket.__table__  # type: ignore[attr-defined]


async def reply_to(hub: Hub, fake_twilio: FakeTwilioApi, number: str, body: str) -> str:
    before = len(fake_twilio.accepted)
    await text_hub(hub.client, number, body)
    sent = await fake_twilio.wait_for(before + 1)
    assert sent[before].to == number
    return sent[before].body or ""


async def set_ticket(hub: Hub, ticket_id: int, **values: Any) -> None:
    async with hub.runtime.transaction() as tx:
        await tx.conn.execute(update(TICKETS).where(TICKETS.c.id == ticket_id).values(**values))


async def tickets(hub: Hub) -> int:
    return await count_rows(hub.runtime.engine, Ticket)


async def test_status_by_signed_sms_lists_open_requests_with_working_links(
    hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    await reply_to(hub, fake_twilio, RESIDENT, "Streetlight out on Kingston Rd")
    await set_ticket(hub, 1, status="closed")  # so the next text opens a second request
    await reply_to(hub, fake_twilio, RESIDENT, "Pothole on Brock Rd")
    await set_ticket(hub, 1, status="resolved", resolved_at=TICKETS.c.created_at)  # resolved just now: listed
    await set_ticket(hub, 2, status="open", team="roads-operations")
    messages_before = await count_rows(hub.runtime.engine, Message)

    reply = await reply_to(hub, fake_twilio, RESIDENT, "STATUS")

    lines = reply.splitlines()
    assert lines[0] == "City of Pickering, your requests:"
    assert lines[1].startswith("PKR-000002: We've sent this to Roads Operations. https://hub.test/s/")
    assert lines[2].startswith("PKR-000001: We've finished working on this request. https://hub.test/s/")
    assert sms_segments(reply).segments <= 3
    assert await tickets(hub) == 2  # STATUS opened nothing
    assert await count_rows(hub.runtime.engine, Message) == messages_before  # nor joined a ticket
    for token, reference in zip(LINK.findall(reply), ["PKR-000002", "PKR-000001"], strict=True):
        page = await hub.client.get(f"/s/{token}")
        assert page.status_code == 200
        assert f"Your request {reference}" in page.text


async def test_status_with_a_reference_answers_only_for_the_senders_own(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    await reply_to(hub, fake_twilio, NEIGHBOUR, "Noise complaint on Liverpool Rd")
    await reply_to(hub, fake_twilio, RESIDENT, "Streetlight out")

    theirs = await reply_to(hub, fake_twilio, RESIDENT, "STATUS PKR-000001")
    mine = await reply_to(hub, fake_twilio, RESIDENT, "status 2")

    assert theirs == (
        "City of Pickering: we could not find PKR-000001 for this number. Text STATUS to see all your open requests."
    )
    assert "Noise" not in theirs
    assert mine.splitlines()[1].startswith("PKR-000002: We have your request and will look at it soon. https://")
    assert "PKR-000001" not in mine


async def test_status_with_nothing_open_says_how_to_start(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    reply = await reply_to(hub, fake_twilio, RESIDENT, "STATUS")

    assert reply == "City of Pickering: you have no open requests with us. To start one, text us what you need."
    assert await tickets(hub) == 0


async def test_statut_answers_in_french(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    await reply_to(hub, fake_twilio, RESIDENT, "Lampadaire en panne")

    reply = await reply_to(hub, fake_twilio, RESIDENT, "STATUT")

    assert reply.splitlines()[0] == "City of Pickering, vos demandes :"
    assert reply.splitlines()[1].startswith("PKR-000001 : Nous avons votre demande et allons l'examiner sous peu.")
    assert sms_segments(reply).encoding == "GSM-7"


async def test_at_most_three_newest_requests_within_three_segments(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    for n in range(4):  # four requests from one number: each closed before the next text opens another
        await reply_to(hub, fake_twilio, RESIDENT, f"Request {n}")
        async with hub.runtime.transaction() as tx:
            await tx.conn.execute(update(TICKETS).values(status="closed"))
    async with hub.runtime.transaction() as tx:
        await tx.conn.execute(update(TICKETS).values(status="open", team="parks-forestry-and-horticulture-services"))

    reply = await reply_to(hub, fake_twilio, RESIDENT, "STATUS")

    references = re.findall(r"^(PKR-\d+):", reply, re.MULTILINE)
    assert references == ["PKR-000004", "PKR-000003", "PKR-000002"][: len(references)]
    assert 1 <= len(references) <= 3
    assert sms_segments(reply).segments <= 3
    async with hub.runtime.engine.connect() as conn:
        issued = list(await conn.execute(select(StatusLink.__table__)))  # type: ignore[attr-defined]
    assert len(issued) == 4 + len(references)  # four acknowledgements, and one per request named


async def test_an_opted_out_number_gets_nothing(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    await reply_to(hub, fake_twilio, RESIDENT, "Streetlight out")
    await reply_to(hub, fake_twilio, RESIDENT, "STOP")
    staged = len(await outbox_rows(hub.runtime.engine))

    response = await text_hub(hub.client, RESIDENT, "STATUS")

    assert response.status_code == 200
    assert len(await outbox_rows(hub.runtime.engine)) == staged
    assert await tickets(hub) == 1


async def test_a_redelivered_status_webhook_answers_once(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    params = sms_params(RESIDENT, "STATUS")

    first = await post_signed(hub.client, SMS_PATH, params)
    second = await post_signed(hub.client, SMS_PATH, params)

    assert (first.status_code, second.status_code) == (200, 200)
    assert len(await outbox_rows(hub.runtime.engine)) == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("STATUS", Command(Keyword.STATUS, None, "en")),
        ("  status\n", Command(Keyword.STATUS, None, "en")),
        ("Status PKR-000123", Command(Keyword.STATUS, "PKR-000123", "en")),
        ("status pkr123", Command(Keyword.STATUS, "PKR123", "en")),
        ("STATUT 123", Command(Keyword.STATUS, "123", "fr")),
        ("Status please", None),
        ("Status?", None),
        ("status PKR-000123 now", None),
        ("What is the status of my request", None),
    ],
)
def test_status_keyword_is_one_word_with_an_optional_reference(body: str, expected: Command | None) -> None:
    assert parse_keyword(body) == expected


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_status_reply_stays_gsm7_with_three_long_requests(language: str) -> None:
    settings = Settings(public_url="https://customercare.pickering.ca")
    templates = MessageTemplates(default_templates_dir())
    request: dict[str, Any] = {
        "reference": "PKR-1234567",
        "words": "Nous avons transmis votre demande à : Parks Forestry." if language == "fr" else "We've sent this.",
        "link": f"{settings.public_url}/s/{'x' * 22}",
    }
    text = templates.render(
        ChannelKind.SMS, "keyword_status", language, city_name=settings.city_name, requests=[request] * 3, asked=None
    )
    info = sms_segments(text)
    assert info.encoding == "GSM-7", info.non_gsm
    assert info.segments <= 3
