"""Alerts through the API and the embedded delivery runner, to the fake Twilio API and a real SMTP server: composed
once, sent to every subscriber once in their language, opt-outs honoured at send time, cancel, approval, updates,
the delivery report and its CSV."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from carehub.clock import utcnow
from carehub.models import Outbox, Role
from carehub.subscriptions import repository as subs
from carehub.subscriptions import service as subscriptions
from channels.base import ChannelKind
from tests.conftest import Hub, mail_settings, running_hub
from tests.fakes.smtp_server import SmtpSink
from tests.fakes.twilio_api import FakeTwilioApi, error
from tests.support.alerts import FAST, WATER_MAIN, draft, phone, report_when_done, staff, subscribe
from tests.support.twilio import text_hub
from tests.support.waiting import eventually


@pytest.fixture
async def alerts_hub(settings: Any, smtp_sink: SmtpSink) -> AsyncIterator[Hub]:
    async with running_hub(mail_settings(settings, smtp_sink, **FAST)) as running:
        yield running


async def test_an_alert_reaches_every_subscriber_once_in_their_language(
    alerts_hub: Hub, fake_twilio: FakeTwilioApi, smtp_sink: SmtpSink
) -> None:
    rt = alerts_hub.runtime
    phones_en = [phone(i) for i in range(20)]
    phones_fr = [phone(i) for i in range(20, 30)]
    await subscribe(rt, ChannelKind.SMS, phones_en)
    await subscribe(rt, ChannelKind.SMS, phones_fr, language="fr")
    await subscribe(rt, ChannelKind.EMAIL, [f"resident{i}@example.org" for i in range(15)])
    await subscribe(rt, ChannelKind.SMS, [phone(90)], topic="snow")  # another topic: not in the audience
    headers = await staff(alerts_hub)

    created = await alerts_hub.client.post("/api/v1/alerts", json=draft(), headers=headers)
    assert created.status_code == 201, created.text
    alert_id = created.json()["id"]
    sent = await alerts_hub.client.post(f"/api/v1/alerts/{alert_id}/send", headers=headers)
    assert sent.status_code == 200, sent.text
    final = await report_when_done(alerts_hub, headers, alert_id)

    assert final["status"] == "sent"
    assert final["report"]["channels"]["sms"]["sent"] + final["report"]["channels"]["sms"]["delivered"] == 30
    assert final["report"]["channels"]["email"]["sent"] == 15
    texts = {m.to: m.body for m in fake_twilio.accepted}
    assert Counter(m.to for m in fake_twilio.accepted) == Counter(phones_en + phones_fr)  # each once, no one else
    assert texts[phones_en[0]] == (
        "City of Pickering: Water main break on Kingston Rd. Boil water before you drink it. Reply STOP to end."
    )
    french = texts[phones_fr[0]]
    assert french is not None
    assert french.startswith("City of Pickering: Bris de conduite")
    assert "ARRET" in french
    mails = await smtp_sink.wait_for(15)
    assert Counter(r for m in mails for r in m.rcpt_tos) == Counter(f"resident{i}@example.org" for i in range(15))
    message = mails[0].message
    assert message["Subject"] == "City of Pickering: Boil water advisory"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Unsubscribe"].startswith("<https://hub.test/alerts/unsubscribe/")
    unsubscribe_url = message["List-Unsubscribe"].strip("<>")
    body = message.get_body(("plain",))
    assert body is not None
    assert unsubscribe_url in body.get_content()
    assert "One The Esplanade" in body.get_content()  # CASL: the sender's postal address


async def test_a_retried_create_and_a_double_send_make_one_alert_and_one_message_each(
    alerts_hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    await subscribe(alerts_hub.runtime, ChannelKind.SMS, [phone(1), phone(2)])
    headers = {**await staff(alerts_hub), "Idempotency-Key": "compose-7f3a"}

    first = await alerts_hub.client.post("/api/v1/alerts", json=draft(channels=["sms"]), headers=headers)
    again = await alerts_hub.client.post("/api/v1/alerts", json=draft(channels=["sms"]), headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    alert_id = first.json()["id"]
    clicks = [await alerts_hub.client.post(f"/api/v1/alerts/{alert_id}/send", headers=headers) for _ in range(3)]
    assert [c.status_code for c in clicks] == [200, 200, 200]
    await report_when_done(alerts_hub, headers, alert_id)

    assert sorted(m.to for m in fake_twilio.accepted) == [phone(1), phone(2)]


async def test_a_resident_who_says_stop_before_their_turn_gets_nothing(
    alerts_hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    rt = alerts_hub.runtime
    numbers = [phone(i) for i in range(6)]
    await subscribe(rt, ChannelKind.SMS, numbers)
    headers = await staff(alerts_hub)
    alert_id = (await alerts_hub.client.post("/api/v1/alerts", json=draft(channels=["sms"]), headers=headers)).json()[
        "id"
    ]
    # Staged but held back: a long-code rate puts the last one seconds away; the resident opts out meanwhile.
    rt.settings.sms_mps = 2.0
    await alerts_hub.client.post(f"/api/v1/alerts/{alert_id}/send", headers=headers)
    async with rt.transaction() as tx:
        await subscriptions.opt_out(
            tx.conn,
            channel=ChannelKind.SMS,
            address=numbers[-1],
            method=subscriptions.Method.SMS_KEYWORD,
            wording="STOP",
            now=utcnow(),
        )
    final = await report_when_done(alerts_hub, headers, alert_id)

    assert numbers[-1] not in {m.to for m in fake_twilio.accepted}
    assert final["report"]["channels"]["sms"]["suppressed"] == 1
    assert len(fake_twilio.accepted) == 5


async def test_emergency_alert_waits_for_a_second_person(alerts_hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    await subscribe(alerts_hub.runtime, ChannelKind.SMS, [phone(3)])
    author = await staff(alerts_hub, email="author@city.test")
    other = await staff(alerts_hub, email="approver@city.test")
    alert_id = (
        await alerts_hub.client.post("/api/v1/alerts", json=draft(emergency=True, channels=["sms"]), headers=author)
    ).json()["id"]

    waiting = (await alerts_hub.client.post(f"/api/v1/alerts/{alert_id}/send", headers=author)).json()
    assert waiting["status"] == "awaiting_approval"
    refused = await alerts_hub.client.post(f"/api/v1/alerts/{alert_id}/approve", headers=author)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert fake_twilio.accepted == []
    approved = await alerts_hub.client.post(f"/api/v1/alerts/{alert_id}/approve", headers=other)
    assert approved.status_code == 200
    await report_when_done(alerts_hub, author, alert_id)
    assert [m.to for m in fake_twilio.accepted] == [phone(3)]


async def test_cancel_stops_the_deliveries_still_waiting(alerts_hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    rt = alerts_hub.runtime
    await subscribe(rt, ChannelKind.SMS, [phone(i) for i in range(40)])
    headers = await staff(alerts_hub)
    rt.settings.sms_mps = 10.0  # four seconds of sending: time to cancel part-way
    alert_id = (await alerts_hub.client.post("/api/v1/alerts", json=draft(channels=["sms"]), headers=headers)).json()[
        "id"
    ]
    await alerts_hub.client.post(f"/api/v1/alerts/{alert_id}/send", headers=headers)
    await fake_twilio.wait_for(3)
    sending = (await alerts_hub.client.get(f"/api/v1/alerts/{alert_id}", headers=headers)).json()["report"]
    assert 0 < sending["progress"] < 1
    assert sending["eta"] is not None  # the last waiting delivery's slot, seconds away at 10 a second
    cancelled = await alerts_hub.client.post(f"/api/v1/alerts/{alert_id}/cancel", headers=headers)
    assert cancelled.json()["status"] == "cancelled"
    final = await report_when_done(alerts_hub, headers, alert_id)
    # The cancelled deliveries gave their slots back: a new alert to the same 40 starts now, not after them.
    preview = await alerts_hub.client.post("/api/v1/alerts/preview", json=draft(channels=["sms"]), headers=headers)

    assert preview.json()["estimate"]["sms"]["seconds"] == 4
    sms = final["report"]["channels"]["sms"]
    sent = sms["sent"] + sms["delivered"]
    assert sms["cancelled"] > 0
    assert sent + sms["cancelled"] == 40
    assert len(fake_twilio.accepted) == sent  # nothing cancelled went out, nothing went twice
    assert len({m.to for m in fake_twilio.accepted}) == sent


async def test_an_all_clear_goes_to_exactly_those_the_alert_reached(
    alerts_hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    rt = alerts_hub.runtime
    await subscribe(rt, ChannelKind.SMS, [phone(1), phone(2)])
    headers = await staff(alerts_hub)
    alert_id = (await alerts_hub.client.post("/api/v1/alerts", json=draft(channels=["sms"]), headers=headers)).json()[
        "id"
    ]
    await alerts_hub.client.post(f"/api/v1/alerts/{alert_id}/send", headers=headers)
    await report_when_done(alerts_hub, headers, alert_id)
    await subscribe(rt, ChannelKind.SMS, [phone(3)])  # joined after the alert: not in the all-clear's audience

    clear = await alerts_hub.client.post(
        f"/api/v1/alerts/{alert_id}/updates",
        json={"kind": "all_clear", "content": {"en": {"sms": "Tap water is safe to drink again."}}},
        headers=headers,
    )
    assert clear.status_code == 201, clear.text
    await report_when_done(alerts_hub, headers, clear.json()["id"])

    all_clear = [m for m in fake_twilio.accepted if m.body and "All clear" in m.body]
    assert sorted(m.to for m in all_clear) == [phone(1), phone(2)]
    assert all_clear[0].body == "City of Pickering: All clear: Tap water is safe to drink again. Reply STOP to end."


async def test_preview_counts_segments_audience_and_time(alerts_hub: Hub) -> None:
    rt = alerts_hub.runtime
    await subscribe(rt, ChannelKind.SMS, [phone(i) for i in range(8)])
    await subscribe(rt, ChannelKind.SMS, [phone(i) for i in range(8, 12)], language="fr")
    await subscribe(rt, ChannelKind.EMAIL, ["a@example.org"])
    rt.settings.sms_mps = 1.0
    headers = await staff(alerts_hub)
    content = {
        "en": {**WATER_MAIN["en"]},
        "fr": {**WATER_MAIN["fr"], "sms": "Gardez vos fenêtres fermées: fumée sur le chemin Kingston."},
    }

    response = await alerts_hub.client.post("/api/v1/alerts/preview", json=draft(content=content), headers=headers)
    shown = response.json()

    assert shown["audience"] == {"sms": 12, "email": 1}
    assert shown["languages"]["en"]["sms"]["encoding"] == "GSM-7"
    assert shown["languages"]["en"]["sms"]["segments"] == 1
    fr = shown["languages"]["fr"]["sms"]
    assert fr["encoding"] == "UCS-2"  # "ê" is not in GSM-7: the whole message switches
    assert fr["non_gsm_characters"] == ["ê"]
    assert fr["segments"] == 2
    assert shown["sms_segments_total"] == 8 * 1 + 4 * 2
    assert shown["estimate"]["sms"]["seconds"] == 12  # 12 texts at 1 per second
    assert isinstance(shown["languages"]["en"]["sms"]["reading_grade"], float)


async def test_delivery_detail_and_csv_are_for_communications_staff_only(alerts_hub: Hub) -> None:
    await subscribe(alerts_hub.runtime, ChannelKind.SMS, [phone(5)])
    headers = await staff(alerts_hub)
    alert_id = (await alerts_hub.client.post("/api/v1/alerts", json=draft(channels=["sms"]), headers=headers)).json()[
        "id"
    ]
    await alerts_hub.client.post(f"/api/v1/alerts/{alert_id}/send", headers=headers)
    await report_when_done(alerts_hub, headers, alert_id)

    agent = await staff(alerts_hub, Role.AGENT)
    assert (await alerts_hub.client.get(f"/api/v1/alerts/{alert_id}/deliveries", headers=agent)).status_code == 403
    assert (await alerts_hub.client.post("/api/v1/alerts", json=draft(), headers=agent)).status_code == 403
    detail = (await alerts_hub.client.get(f"/api/v1/alerts/{alert_id}/deliveries", headers=headers)).json()
    [only] = detail["items"]
    assert only["to_address"] == phone(5)
    assert only["status"] in ("sent", "delivered")
    exported = await alerts_hub.client.get(f"/api/v1/alerts/{alert_id}/deliveries.csv", headers=headers)
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["to_address"] for r in rows] == [phone(5)]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"content": {"fr": WATER_MAIN["fr"]}}, "English text is required"),
        ({"topic": "parking"}, "no active topic 'parking'"),
        ({"topic": None}, "Choose a topic, or all_residents"),
        ({"areas": ["ward-9"]}, "Unknown area(s): ward-9"),
        ({"content": {"en": {"sms": "x"}}}, "email subject and body in 'en'"),
    ],
)
async def test_bad_alerts_are_refused_with_a_clear_problem(hub: Hub, change: dict[str, Any], message: str) -> None:
    headers = await staff(hub)
    response = await hub.client.post("/api/v1/alerts", json=draft(**change), headers=headers)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert message in response.json()["detail"]


async def test_alerts_api_needs_a_token(hub: Hub) -> None:
    response = await hub.client.post("/api/v1/alerts", json=draft())
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_reply_to_an_alert_becomes_a_ticket_labelled_with_it(
    alerts_hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    await subscribe(alerts_hub.runtime, ChannelKind.SMS, [phone(7)])
    headers = await staff(alerts_hub)
    alert_id = (await alerts_hub.client.post("/api/v1/alerts", json=draft(channels=["sms"]), headers=headers)).json()[
        "id"
    ]
    await alerts_hub.client.post(f"/api/v1/alerts/{alert_id}/send", headers=headers)
    await report_when_done(alerts_hub, headers, alert_id)

    await text_hub(alerts_hub.client, phone(7), "Is Rosebank Rd affected too?")
    await text_hub(alerts_hub.client, phone(8), "Unrelated: my recycling bin is cracked")
    agent = await staff(alerts_hub, Role.SUPERVISOR)

    async def labelled() -> dict[str, list[str]] | None:
        page = (await alerts_hub.client.get("/api/v1/tickets", headers=agent)).json()
        found = {t["subject"]: t["labels"] for t in page["items"]}
        return found if len(found) == 2 and any(found.values()) else None

    tickets = await eventually(labelled, what="the reply to be routed and labelled")
    assert tickets == {
        "Is Rosebank Rd affected too?": [f"alert-{alert_id}"],
        "Unrelated: my recycling bin is cracked": [],
    }


async def test_an_sms_that_fails_for_good_goes_by_email_to_the_same_resident_once(
    alerts_hub: Hub, fake_twilio: FakeTwilioApi, smtp_sink: SmtpSink
) -> None:
    rt = alerts_hub.runtime
    [subscription_id] = await subscribe(rt, ChannelKind.SMS, [phone(4)])
    async with rt.transaction() as tx:  # the same resident also gave an email address (the web form links them)
        phone_address = (await subs.subscription_by_id(tx.conn, subscription_id)).address_id  # type: ignore[union-attr]
        contact_id = await subs.contact_of(tx.conn, phone_address)
        await subs.address_id_for(
            tx.conn, ChannelKind.EMAIL, "landline.owner@example.org", utcnow(), contact_id=contact_id
        )
    fake_twilio.push(error(400, 21614, "'To' number is not a valid mobile number"))
    headers = await staff(alerts_hub)
    alert_id = (await alerts_hub.client.post("/api/v1/alerts", json=draft(channels=["sms"]), headers=headers)).json()[
        "id"
    ]
    await alerts_hub.client.post(f"/api/v1/alerts/{alert_id}/send", headers=headers)
    final = await report_when_done(alerts_hub, headers, alert_id)

    [mail] = await smtp_sink.wait_for(1)
    assert mail.rcpt_tos == ("landline.owner@example.org",)
    assert final["report"]["channels"]["sms"]["failed"] == 1
    assert final["report"]["channels"]["email"]["sent"] == 1
    assert fake_twilio.accepted == []
    assert mail.message["Subject"] == "City of Pickering: Water main break on Kingston Rd."


async def test_a_stop_after_a_delivery_was_claimed_but_before_its_slot_still_stops_it(
    alerts_hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    """Deliveries are claimed up to two seconds before their slot; the last look before sending catches a STOP
    that came in between."""
    rt = alerts_hub.runtime
    numbers = [phone(i) for i in range(5)]
    await subscribe(rt, ChannelKind.SMS, numbers)
    rt.settings.sms_mps = 2.0  # slots half a second apart: the last is two seconds out
    headers = await staff(alerts_hub)
    alert_id = (await alerts_hub.client.post("/api/v1/alerts", json=draft(channels=["sms"]), headers=headers)).json()[
        "id"
    ]
    await alerts_hub.client.post(f"/api/v1/alerts/{alert_id}/send", headers=headers)
    outbox = Outbox.__table__  # type: ignore[attr-defined]
    target = numbers[3]  # claimed with the first, 1.5 s before its slot (the last one is a job of its own)

    async def claimed_well_before_its_slot() -> bool:
        async with rt.transaction() as tx:
            row = (
                await tx.conn.execute(
                    select(outbox.c.status, outbox.c.next_attempt_at).where(
                        outbox.c.alert_id == alert_id, outbox.c.to_address == target
                    )
                )
            ).one_or_none()
        return row is not None and row.status == "sending" and (row.next_attempt_at - utcnow()).total_seconds() > 0.5

    await eventually(claimed_well_before_its_slot, what="a delivery claimed ahead of its slot")
    async with rt.transaction() as tx:
        await subscriptions.opt_out(
            tx.conn,
            channel=ChannelKind.SMS,
            address=target,
            method=subscriptions.Method.SMS_KEYWORD,
            wording="STOP",
            now=utcnow(),
        )
    final = await report_when_done(alerts_hub, headers, alert_id)

    assert target not in {m.to for m in fake_twilio.accepted}
    assert final["report"]["channels"]["sms"]["suppressed"] == 1
    assert len(fake_twilio.accepted) == 4


async def test_a_scheduled_alert_waits_for_its_time_then_goes(alerts_hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    await subscribe(alerts_hub.runtime, ChannelKind.SMS, [phone(6)])
    headers = await staff(alerts_hub)
    send_at = (utcnow() + timedelta(seconds=2)).astimezone(ZoneInfo("America/Toronto")).replace(tzinfo=None)
    created = await alerts_hub.client.post(
        "/api/v1/alerts", json=draft(channels=["sms"], send_at=send_at.isoformat()), headers=headers
    )
    assert created.status_code == 201, created.text
    alert_id = created.json()["id"]

    scheduled = (await alerts_hub.client.post(f"/api/v1/alerts/{alert_id}/send", headers=headers)).json()
    assert scheduled["status"] == "scheduled"
    assert fake_twilio.accepted == []
    final = await report_when_done(alerts_hub, headers, alert_id)  # the tick starts it once its time has come

    assert final["status"] == "sent"
    assert datetime.fromisoformat(final["started_at"]) >= datetime.fromisoformat(scheduled["scheduled_for"])
    assert [m.to for m in fake_twilio.accepted] == [phone(6)]


async def test_an_alert_from_a_template_is_refused_until_its_bracketed_parts_are_replaced(hub: Hub) -> None:
    headers = await staff(hub)
    templates = (await hub.client.get("/api/v1/alerts/templates", headers=headers)).json()
    boil = next(t for t in templates if t["name"] == "Boil water advisory")
    assert boil["topic"] == "water"

    as_is = await hub.client.post(
        "/api/v1/alerts", json=draft(title=boil["name"], content=boil["content"]), headers=headers
    )
    assert as_is.status_code == 422
    assert "[area]" in as_is.json()["detail"]
    filled = {
        lang: {
            part: text.replace("[area]", "Ward 2").replace("[secteur]", "quartier 2") for part, text in parts.items()
        }
        for lang, parts in boil["content"].items()
    }
    assert (await hub.client.post("/api/v1/alerts", json=draft(content=filled), headers=headers)).status_code == 201


async def test_communications_staff_keep_their_own_templates(hub: Hub) -> None:
    headers = await staff(hub)
    made = await hub.client.post(
        "/api/v1/alerts/templates",
        json={
            "name": "Pool closed",
            "topic": None,
            "channels": ["sms"],
            "content": {"en": {"sms": "[pool] is closed."}},
        },
        headers=headers,
    )
    assert made.status_code == 201, made.text
    again = await hub.client.post(
        "/api/v1/alerts/templates",
        json={"name": "Pool closed", "channels": ["sms"], "content": {"en": {"sms": "x"}}},
        headers=headers,
    )
    assert again.status_code == 409
    template_id = made.json()["id"]
    renamed = await hub.client.put(
        f"/api/v1/alerts/templates/{template_id}",
        json={"name": "Pool closure", "channels": ["sms"], "content": {"en": {"sms": "[pool] is closed today."}}},
        headers=headers,
    )
    assert renamed.json()["name"] == "Pool closure"
    agent = await staff(hub, Role.AGENT)
    assert (await hub.client.get("/api/v1/alerts/templates", headers=agent)).status_code == 403
    assert (await hub.client.delete(f"/api/v1/alerts/templates/{template_id}", headers=headers)).status_code == 204
    names = [t["name"] for t in (await hub.client.get("/api/v1/alerts/templates", headers=headers)).json()]
    assert "Pool closure" not in names
