"""A resident's text becomes a ticket with an acknowledgement; bad, duplicate and malformed webhooks change nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import text

from carehub.models import Message, Ticket
from tests.conftest import Hub
from tests.fakes.twilio_api import FakeTwilioApi
from tests.support.corpus import TWILIO_PAYLOADS
from tests.support.identities import ACCOUNT_SID, CITY_NUMBER
from tests.support.store_queries import count_rows
from tests.support.twilio import SMS_PATH, post_signed, sms_params, text_hub

RESIDENT = "+19055550123"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


async def count(hub: Hub, model: Any) -> int:
    return await count_rows(hub.runtime.engine, model)


async def test_signed_sms_opens_ticket_and_acknowledges_with_reference(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    response = await text_hub(hub.client, RESIDENT, "Streetlight out on Kingston Rd near Liverpool")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text == EMPTY_TWIML
    [ack] = await fake_twilio.wait_for(1)
    assert ack.to == RESIDENT
    assert ack.from_ == CITY_NUMBER
    assert ack.body is not None
    assert "PKR-000001" in ack.body
    assert ack.status_callback is not None
    assert ack.status_callback.startswith("https://hub.test/webhooks/twilio/status?d=")
    assert fake_twilio.violations == []
    token = await hub.agent_token()
    page = (await hub.client.get("/api/v1/tickets", headers={"Authorization": f"Bearer {token}"})).json()
    [ticket] = page["items"]
    assert ticket["reference"] == "PKR-000001"
    assert ticket["status"] == "new"
    assert ticket["channel"] == "sms"
    assert ticket["subject"] == "Streetlight out on Kingston Rd near Liverpool"


async def test_duplicate_webhook_stores_one_message_and_one_ack(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    params = sms_params(RESIDENT, "Is the pool open today?")
    first = await post_signed(hub.client, SMS_PATH, params)
    second = await post_signed(hub.client, SMS_PATH, params)

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.text == EMPTY_TWIML
    await fake_twilio.wait_for(1)
    assert await count(hub, Ticket) == 1
    assert await count(hub, Message) == 2  # the inbound text and one acknowledgement
    assert len(fake_twilio.accepted) == 1


async def test_follow_up_text_joins_the_open_ticket_without_another_ack(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    await text_hub(hub.client, RESIDENT, "Garbage not picked up on Rougemount Dr")
    await fake_twilio.wait_for(1)
    await text_hub(hub.client, RESIDENT, "It's the green bin")

    assert await count(hub, Ticket) == 1
    assert await count(hub, Message) == 3
    assert len(fake_twilio.accepted) == 1


async def test_simultaneous_first_texts_from_one_number_open_one_ticket(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    responses = await asyncio.gather(*(text_hub(hub.client, RESIDENT, f"part {i}") for i in range(6)))

    assert [r.status_code for r in responses] == [200] * 6
    assert await count(hub, Ticket) == 1
    await fake_twilio.wait_for(1)
    assert await count(hub, Message) == 7


async def test_bad_signature_is_refused_and_nothing_is_stored(hub: Hub) -> None:
    response = await post_signed(hub.client, SMS_PATH, sms_params(RESIDENT, "hello"), token="not-the-auth-token")

    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert "X-Twilio-Signature" in response.json()["detail"]
    assert await count(hub, Message) == 0


async def test_missing_signature_is_refused(hub: Hub) -> None:
    response = await hub.client.post(SMS_PATH, data=sms_params(RESIDENT, "hello"))

    assert response.status_code == 403
    assert response.json()["status"] == 403
    assert await count(hub, Message) == 0


async def test_tampered_body_fails_the_signature(hub: Hub) -> None:
    params = sms_params(RESIDENT, "original")
    from tests.support.twilio import signature

    sig = signature(SMS_PATH, params)
    response = await hub.client.post(SMS_PATH, data={**params, "Body": "changed"}, headers={"X-Twilio-Signature": sig})

    assert response.status_code == 403
    assert await count(hub, Message) == 0


async def test_oversized_body_is_refused_with_413_problem(hub: Hub) -> None:
    params = sms_params(RESIDENT, "x" * (hub.settings.max_body_bytes + 1))
    response = await post_signed(hub.client, SMS_PATH, params)

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert "limit" in response.json()["detail"]
    assert await count(hub, Message) == 0


async def test_json_body_is_refused_with_415_problem(hub: Hub) -> None:
    response = await hub.client.post(SMS_PATH, json=sms_params(RESIDENT, "hi"))

    assert response.status_code == 415
    assert "x-www-form-urlencoded" in response.json()["detail"]


async def test_signed_but_malformed_webhook_is_a_400_problem(hub: Hub) -> None:
    params = {k: v for k, v in sms_params(RESIDENT, "hi").items() if k != "From"}
    response = await post_signed(hub.client, SMS_PATH, params)

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "From" in response.json()["detail"]
    assert await count(hub, Message) == 0


async def test_real_twilio_inbound_payloads_from_corpus_open_tickets(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    payloads = json.loads(TWILIO_PAYLOADS.read_text())
    inbound = [{**p["params"], "AccountSid": ACCOUNT_SID} for p in payloads if p["kind"] == "inbound_message"]
    assert inbound, "the corpus has inbound SMS payloads"

    for params in inbound:
        response = await post_signed(hub.client, SMS_PATH, params)
        assert response.status_code == 200, response.text

    senders = {p["From"] for p in inbound}
    assert await count(hub, Ticket) == len(senders)
    acks = await fake_twilio.wait_for(len(senders))
    assert {a.to for a in acks} == senders


async def test_streamed_body_over_the_limit_is_refused_with_413(hub: Hub) -> None:
    chunk = b"Body=" + b"x" * 8192

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(hub.settings.max_body_bytes // len(chunk) + 2):
            yield chunk

    response = await hub.client.post(
        SMS_PATH, content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert await count(hub, Message) == 0


async def test_texts_leave_the_ticket_searchable_exactly_as_a_full_rebuild_would(
    hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    """On PostgreSQL the ingest writes the search document itself (migration 0015), not the message trigger: it must
    hold the words rebuilding the document from the ticket's messages gives (word positions may differ by the stop
    words between messages, as they did with the trigger; SQLite: its FTS5 row is the text itself)."""
    await text_hub(hub.client, RESIDENT, "Streetlight flickering on Rougemount Dr")
    await text_hub(hub.client, RESIDENT, "It is next to the school crossing")
    await fake_twilio.wait_for(1)
    async with hub.runtime.transaction() as tx:
        if tx.conn.dialect.name == "postgresql":
            stored, rebuilt = (
                await tx.conn.execute(
                    text(
                        "SELECT array_to_string(tsvector_to_array(search_document), ' '), "
                        "array_to_string(tsvector_to_array(carehub_ticket_document(subject, id)), ' ') FROM tickets"
                    )
                )
            ).one()
        else:
            stored = (await tx.conn.execute(text("SELECT document FROM tickets_search_fts"))).scalar_one()
            rebuilt = (
                await tx.conn.execute(
                    text(
                        "SELECT t.subject || ' ' || group_concat(m.body, ' ') FROM tickets t "
                        "JOIN messages m ON m.ticket_id = t.id GROUP BY t.id"
                    )
                )
            ).scalar_one()

    assert stored == rebuilt
    assert "cross" in stored  # "crossing", stemmed on PostgreSQL
    assert "000001" in stored  # the acknowledgement's reference is searchable too
