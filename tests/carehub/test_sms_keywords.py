"""Texted keywords (STOP, START, HELP, JOIN, YES) change subscriptions, are answered once and never become tickets;
anything else, a YES that answers an agent included, reaches the queue. A carrier's opt-out (21610) ends
subscriptions too."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from carehub.clock import utcnow
from carehub.messaging.templates import MessageTemplates, default_templates_dir
from carehub.models import Consent, ContactAddress, KeywordReceipt, Subscription, Ticket, Topic
from carehub.settings import Settings
from carehub.subscriptions import repository as subs
from carehub.subscriptions import service
from carehub.subscriptions.service import Method
from channels.base import ChannelKind
from channels.sms.segments import sms_segments
from tests.conftest import Hub, running_hub
from tests.fakes.twilio_api import FakeTwilioApi, error
from tests.support.store_queries import count_rows, opted_out, outbox_rows
from tests.support.twilio import SMS_PATH, new_message_sid, post_signed, sms_params, status_callback, text_hub
from tests.support.waiting import eventually

RESIDENT = "+19055550123"
SMS = ChannelKind.SMS
SUBSCRIPTIONS = Subscription.__table__  # type: ignore[attr-defined]
CONSENTS = Consent.__table__  # type: ignore[attr-defined]
ADDRESSES = ContactAddress.__table__  # type: ignore[attr-defined]
TOPICS = Topic.__table__  # type: ignore[attr-defined]

TOPIC_KEYWORDS = ["EMERGENCY", "WATER", "SNOW", "WASTE", "ROADS"]  # what migration 0014 seeds
OPT_OUT_WORDS = [
    "STOP",
    "stop",
    "  Stop\n",
    "STOPALL",
    "UNSUBSCRIBE",
    "END",
    "QUIT",
    "CANCEL",
    "REVOKE",
    "OPTOUT",
    "ARRET",
    "arrêt",
]
KEYWORD_TEMPLATES = [
    "keyword_stop",
    "keyword_start",
    "keyword_help",
    "keyword_join",
    "keyword_joined",
    "keyword_topics",
]


async def subscribe(hub: Hub, number: str, slug: str = "snow") -> None:
    """An active subscription, as the web form makes one (asked, then confirmed with its code)."""
    async with hub.runtime.transaction() as tx:
        now = utcnow()
        topic = await subs.topic_by(tx.conn, slug=slug)
        assert topic is not None
        asked = await service.request(
            tx.conn,
            hub.settings,
            channel=SMS,
            address=number,
            topic_ids=[topic.id],
            area_id=None,
            language="en",
            method=Method.WEB_FORM,
            wording="test: subscribed on the city's web form",
            now=now,
        )
        confirmed = await service.confirm(
            tx.conn,
            channel=SMS,
            address_id=asked.address_id,
            code=asked.code,
            method=Method.WEB_FORM,
            wording="test: confirmed with the code",
            now=now,
        )
        assert confirmed


async def subscriptions_of(hub: Hub, number: str) -> list[Any]:
    async with hub.runtime.engine.connect() as conn:
        rows = await conn.execute(
            select(SUBSCRIPTIONS, TOPICS.c.keyword)
            .join(ADDRESSES, ADDRESSES.c.id == SUBSCRIPTIONS.c.address_id)
            .join(TOPICS, TOPICS.c.id == SUBSCRIPTIONS.c.topic_id)
            .where(ADDRESSES.c.address == number)
            .order_by(SUBSCRIPTIONS.c.id)
        )
        return list(rows)


async def consents_of(hub: Hub, number: str, *, method: str | None = None) -> list[Any]:
    query = (
        select(CONSENTS)
        .join(ADDRESSES, ADDRESSES.c.id == CONSENTS.c.address_id)
        .where(ADDRESSES.c.address == number)
        .order_by(CONSENTS.c.id)
    )
    if method is not None:
        query = query.where(CONSENTS.c.method == method)
    async with hub.runtime.engine.connect() as conn:
        return list(await conn.execute(query))


async def tickets(hub: Hub) -> int:
    return await count_rows(hub.runtime.engine, Ticket)


async def replies(hub: Hub) -> list[str]:
    """Every text staged to go out, in order (the webhook stages its reply before it answers)."""
    return [r.body for r in await outbox_rows(hub.runtime.engine)]


@pytest.mark.parametrize("word", OPT_OUT_WORDS)
async def test_each_opt_out_word_opts_out_ends_subscriptions_and_replies_once(
    hub: Hub, fake_twilio: FakeTwilioApi, word: str
) -> None:
    await subscribe(hub, RESIDENT)
    sid = new_message_sid()

    response = await text_hub(hub.client, RESIDENT, word, sid=sid)

    assert response.status_code == 200
    [reply] = await fake_twilio.wait_for(1)
    assert reply.to == RESIDENT
    assert reply.body is not None
    french = word.strip().casefold() in {"arret", "arrêt"}
    assert ("ne recevrez plus" if french else "unsubscribed") in reply.body
    assert await opted_out(hub.runtime.engine, RESIDENT)
    [subscription] = await subscriptions_of(hub, RESIDENT)
    assert (subscription.status, subscription.ended_reason) == ("ended", service.OPT_OUT)
    [withdrawn] = [c for c in await consents_of(hub, RESIDENT) if c.action == "withdrawn"]
    assert (withdrawn.method, withdrawn.provider_id, withdrawn.topic_id) == ("sms_keyword", sid, None)
    assert withdrawn.language == ("fr" if french else "en")
    assert repr(word) in withdrawn.wording
    assert repr(reply.body) in withdrawn.wording
    assert await tickets(hub) == 0
    assert len(await replies(hub)) == 1


async def test_duplicate_stop_webhook_replies_once_and_records_one_consent(
    hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    params = sms_params(RESIDENT, "STOP")

    first = await post_signed(hub.client, SMS_PATH, params)
    second = await post_signed(hub.client, SMS_PATH, params)

    assert (first.status_code, second.status_code) == (200, 200)
    await fake_twilio.wait_for(1)
    assert len(await replies(hub)) == 1
    assert len(await consents_of(hub, RESIDENT)) == 1
    assert await count_rows(hub.runtime.engine, KeywordReceipt) == 1
    assert await tickets(hub) == 0
    assert len(fake_twilio.accepted) == 1


async def test_stop_inside_a_sentence_is_an_inquiry(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    await subscribe(hub, RESIDENT)

    await text_hub(hub.client, RESIDENT, "Stop sending me these please")

    [ack] = await fake_twilio.wait_for(1)
    assert ack.body is not None
    assert "PKR-000001" in ack.body
    assert await tickets(hub) == 1
    assert not await opted_out(hub.runtime.engine, RESIDENT)
    assert [s.status for s in await subscriptions_of(hub, RESIDENT)] == ["active"]


async def test_start_restores_what_stop_ended_and_names_it(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    await subscribe(hub, RESIDENT, "snow")
    await subscribe(hub, RESIDENT, "water")
    await text_hub(hub.client, RESIDENT, "STOP")

    await text_hub(hub.client, RESIDENT, "START")

    [_, restarted] = await fake_twilio.wait_for(2)
    assert restarted.body is not None
    assert "Snow clearing" in restarted.body
    assert "Water service" in restarted.body
    assert [s.status for s in await subscriptions_of(hub, RESIDENT)] == ["active", "active"]
    assert not await opted_out(hub.runtime.engine, RESIDENT)
    given = [c for c in await consents_of(hub, RESIDENT, method="sms_keyword") if c.action == "given"]
    assert len(given) == 2  # one per restored topic
    assert await tickets(hub) == 0


async def test_start_with_nothing_to_restore_says_how_to_join(hub: Hub, fake_twilio: FakeTwilioApi) -> None:

    await text_hub(hub.client, RESIDENT, "START")

    [reply] = await fake_twilio.wait_for(1)
    assert reply.body is not None
    assert "JOIN" in reply.body
    assert "SNOW" in reply.body
    assert await tickets(hub) == 0


async def test_join_asks_for_yes_and_leaves_the_subscription_pending(hub: Hub, fake_twilio: FakeTwilioApi) -> None:

    await text_hub(hub.client, RESIDENT, "JOIN SNOW")

    [ask] = await fake_twilio.wait_for(1)
    assert ask.body is not None
    assert "reply YES" in ask.body
    assert "Snow clearing" in ask.body
    [subscription] = await subscriptions_of(hub, RESIDENT)
    assert (subscription.status, subscription.keyword) == ("pending", "SNOW")
    [requested] = await consents_of(hub, RESIDENT)
    assert (requested.action, requested.method) == ("requested", "sms_keyword")
    assert repr(ask.body) in requested.wording
    assert await tickets(hub) == 0
    assert len(await replies(hub)) == 1


async def test_join_accepts_the_topic_slug(hub: Hub, fake_twilio: FakeTwilioApi) -> None:

    await text_hub(hub.client, RESIDENT, "join emergencies")

    await fake_twilio.wait_for(1)
    [subscription] = await subscriptions_of(hub, RESIDENT)
    assert (subscription.status, subscription.keyword) == ("pending", "EMERGENCY")


async def test_yes_after_join_confirms_records_consent_and_replies(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    await text_hub(hub.client, RESIDENT, "JOIN SNOW")
    sid = new_message_sid()

    await text_hub(hub.client, RESIDENT, "Yes", sid=sid)

    [_, joined] = await fake_twilio.wait_for(2)
    assert joined.body is not None
    assert "Snow clearing" in joined.body
    assert "STOP" in joined.body
    [subscription] = await subscriptions_of(hub, RESIDENT)
    assert subscription.status == "active"
    [given] = [c for c in await consents_of(hub, RESIDENT) if c.action == "given"]
    assert (given.method, given.provider_id, given.topic_id) == ("sms_keyword", sid, subscription.topic_id)
    assert repr(joined.body) in given.wording
    assert await tickets(hub) == 0


async def test_duplicate_yes_webhook_is_not_mistaken_for_an_inquiry(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    await text_hub(hub.client, RESIDENT, "JOIN SNOW")
    params = sms_params(RESIDENT, "YES")

    await post_signed(hub.client, SMS_PATH, params)
    await post_signed(hub.client, SMS_PATH, params)  # nothing is pending any more: only the receipt knows it

    await fake_twilio.wait_for(2)
    assert len(await replies(hub)) == 2
    assert await tickets(hub) == 0
    assert len([c for c in await consents_of(hub, RESIDENT) if c.action == "given"]) == 1


async def test_yes_with_nothing_pending_is_an_ordinary_inquiry(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    await text_hub(hub.client, RESIDENT, "Is the rink on Kingston Rd open?")
    await fake_twilio.wait_for(1)

    await text_hub(hub.client, RESIDENT, "yes")  # answering the agent's question

    assert await tickets(hub) == 1
    token = await hub.agent_token()
    ticket = (await hub.client.get("/api/v1/tickets/PKR-000001", headers={"Authorization": f"Bearer {token}"})).json()
    assert [m["body"] for m in ticket["messages"] if m["direction"] == "in"][-1] == "yes"
    assert await count_rows(hub.runtime.engine, KeywordReceipt) == 0
    assert await consents_of(hub, RESIDENT) == []


async def test_yes_from_a_new_number_opens_a_ticket(hub: Hub, fake_twilio: FakeTwilioApi) -> None:

    await text_hub(hub.client, RESIDENT, "YES")

    [ack] = await fake_twilio.wait_for(1)
    assert ack.body is not None
    assert "PKR-000001" in ack.body
    assert await tickets(hub) == 1


async def test_yes_from_an_opted_out_number_is_start(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    await subscribe(hub, RESIDENT)
    await text_hub(hub.client, RESIDENT, "STOP")

    await text_hub(hub.client, RESIDENT, "YES")

    [_, restarted] = await fake_twilio.wait_for(2)
    assert restarted.body is not None
    assert "Snow clearing" in restarted.body
    assert not await opted_out(hub.runtime.engine, RESIDENT)
    assert [s.status for s in await subscriptions_of(hub, RESIDENT)] == ["active"]
    assert await tickets(hub) == 0


@pytest.mark.parametrize("body", ["JOIN PARKING", "JOIN"])
async def test_join_without_a_known_topic_lists_the_keywords(hub: Hub, fake_twilio: FakeTwilioApi, body: str) -> None:

    await text_hub(hub.client, RESIDENT, body)

    [reply] = await fake_twilio.wait_for(1)
    assert reply.body is not None
    for keyword in TOPIC_KEYWORDS:
        assert keyword in reply.body
    assert ("no alert list" in reply.body) is (body != "JOIN")
    assert await subscriptions_of(hub, RESIDENT) == []
    assert await tickets(hub) == 0


async def test_join_when_already_subscribed_says_so(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    await subscribe(hub, RESIDENT)

    await text_hub(hub.client, RESIDENT, "JOIN SNOW")

    [reply] = await fake_twilio.wait_for(1)
    assert reply.body is not None
    assert "already" in reply.body
    assert [s.status for s in await subscriptions_of(hub, RESIDENT)] == ["active"]


async def test_help_says_who_we_are_and_how_to_stop(hub: Hub, fake_twilio: FakeTwilioApi) -> None:

    await text_hub(hub.client, RESIDENT, "HELP")

    [reply] = await fake_twilio.wait_for(1)
    assert reply.body is not None
    for expected in (hub.settings.city_name, hub.settings.city_phone, hub.settings.city_website, "STOP", "JOIN"):
        assert expected in reply.body
    assert await tickets(hub) == 0


@pytest.mark.parametrize(("body", "expected"), [("ARRET", "Répondez START"), ("AIDE", "ARRET pour annuler")])
async def test_french_keywords_are_answered_in_french(
    hub: Hub, fake_twilio: FakeTwilioApi, body: str, expected: str
) -> None:

    await text_hub(hub.client, RESIDENT, body)

    [reply] = await fake_twilio.wait_for(1)
    assert reply.body is not None
    assert expected in reply.body
    assert sms_segments(reply.body).encoding == "GSM-7"


async def test_stop_without_keyword_replies_opts_out_silently(settings: Settings, fake_twilio: FakeTwilioApi) -> None:
    """Twilio's Advanced Opt-Out answers STOP itself: we still opt out and record it, but send nothing."""
    async with running_hub(settings.model_copy(update={"sms_keyword_replies": False})) as hub:
        await subscribe(hub, RESIDENT)

        await text_hub(hub.client, RESIDENT, "STOP")

        assert await opted_out(hub.runtime.engine, RESIDENT)
        assert [s.status for s in await subscriptions_of(hub, RESIDENT)] == ["ended"]
        [withdrawn] = [c for c in await consents_of(hub, RESIDENT) if c.action == "withdrawn"]
        assert "no reply sent by carehub" in withdrawn.wording
        assert await replies(hub) == []
        assert await tickets(hub) == 0


async def test_status_callback_21610_ends_subscriptions_and_records_the_carrier_opt_out(
    hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    await subscribe(hub, RESIDENT)
    await text_hub(hub.client, RESIDENT, "hello")
    [ack] = await fake_twilio.wait_for(1)
    [row] = await eventually(lambda: _rows_sent(hub), what="the acknowledgement to be sent")

    response = await status_callback(hub.client, row.id, ack.sid, "failed", to=RESIDENT, error_code="21610")

    assert response.status_code == 204
    assert await opted_out(hub.runtime.engine, RESIDENT)
    [subscription] = await subscriptions_of(hub, RESIDENT)
    assert (subscription.status, subscription.ended_reason) == ("ended", service.OPT_OUT)
    [withdrawn] = await consents_of(hub, RESIDENT, method="provider_opt_out")
    assert (withdrawn.action, withdrawn.provider_id) == ("withdrawn", ack.sid)
    assert "21610" in withdrawn.wording


async def test_send_refused_with_21610_ends_subscriptions_and_records_the_carrier_opt_out(
    hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    await subscribe(hub, RESIDENT)
    fake_twilio.push(error(400, 21610, "Attempt to send to unsubscribed recipient"))

    await text_hub(hub.client, RESIDENT, "hello")

    [withdrawn] = await eventually(
        lambda: consents_of(hub, RESIDENT, method="provider_opt_out"), what="the carrier's opt-out to be recorded"
    )
    assert withdrawn.action == "withdrawn"
    assert "21610" in withdrawn.wording
    assert [s.status for s in await subscriptions_of(hub, RESIDENT)] == ["ended"]
    assert await opted_out(hub.runtime.engine, RESIDENT)


async def _rows_sent(hub: Hub) -> list[Any]:
    return [r for r in await outbox_rows(hub.runtime.engine) if r.status == "sent"]


@pytest.mark.parametrize("name", KEYWORD_TEMPLATES)
@pytest.mark.parametrize("language", ["en", "fr"])
def test_keyword_replies_are_one_gsm7_segment(name: str, language: str) -> None:
    """With the default city identity and topics and the longest topic name (French: no ê, â, î, ô, û, ç)."""
    defaults = Settings.model_fields
    templates = MessageTemplates(default_templates_dir())
    topic = "Ordures et recyclage" if language == "fr" else "Garbage and recycling"  # the longest names
    contexts: list[dict[str, Any]] = [
        {
            "city_name": defaults["city_name"].default,
            "city_phone": defaults["city_phone"].default,
            "city_website": defaults["city_website"].default,
            "topic": topic,
            "topics": [topic],
            "keywords": TOPIC_KEYWORDS,
            "already": already,
            "unknown": already,
        }
        for already in (False, True)
    ]
    contexts.append({**contexts[0], "topics": []})

    for context in contexts:
        text = templates.render(SMS, name, language, **context)
        info = sms_segments(text)
        assert (info.encoding, info.segments) == ("GSM-7", 1), (text, info.units, info.non_gsm)
