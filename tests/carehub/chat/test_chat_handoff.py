"""When nobody can answer: availability (business hours, agents online), moving a chat to email or SMS on the same
ticket, and ending it with a transcript. Mail goes to a real SMTP server, texts to the fake Twilio API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest

from carehub.chat import hub as chat_hub
from carehub.settings import Settings
from tests.carehub.chat.conftest import chat_settings
from tests.conftest import mail_settings
from tests.fakes.smtp_server import SmtpSink
from tests.fakes.twilio_api import FakeTwilioApi
from tests.support.chat import Resident, agent_stream, reply, resident
from tests.support.live import LiveHub, live_hub
from tests.support.mail import post_email, resident_mail


@pytest.fixture
async def live_mail(settings: Settings, smtp_sink: SmtpSink) -> AsyncIterator[LiveHub]:
    async with live_hub(chat_settings(mail_settings(settings, smtp_sink))) as hub:
        yield hub


async def open_chat(hub: LiveHub, jo: Resident, body: str = "Water in my basement after the storm") -> str:
    await jo.hello()
    await jo.say(body)
    await jo.expect("message", seq=2)
    return jo.reference


async def ticket(hub: LiveHub, token: str, reference: str) -> dict[str, object]:
    response = await hub.client.get(f"/api/v1/tickets/{reference}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


async def test_handoff_to_email_continues_the_same_ticket_by_mail(live_mail: LiveHub, smtp_sink: SmtpSink) -> None:
    token = await live_mail.agent_token()
    async with resident(live_mail.ws_url) as jo:
        reference = await open_chat(live_mail, jo)
        await jo.send(type="handoff", channel="email", address="Jo.Resident@Example.org")
        note = await jo.expect("message", seq=3)
        assert note["from"] == "system"
        assert "j***@example.org" in note["body"]
        confirmed = await jo.expect("handoff")
        assert confirmed == {"type": "handoff", "channel": "email", "address": "j***@example.org"}

        [ack] = await smtp_sink.wait_for(1)
        assert ack.rcpt_tos == ("jo.resident@example.org",)
        assert reference in str(ack.message["Subject"])

        await reply(live_mail.client, token, reference, "A crew will pump it out tomorrow morning.")
        [_, answer] = await smtp_sink.wait_for(2)
        assert "A crew will pump it out tomorrow morning." in text_of(answer.message)
        await jo.send(type="ping")
        assert (await jo.next())["type"] == "pong"  # the reply went by mail, not to the socket

    # The resident answers the mail: it joins the same ticket.
    await post_email(
        live_mail.client,
        resident_mail("jo.resident@example.org", f"Re: {answer.message['Subject']}", "Thank you, 8 a.m. is fine.\n"),
    )
    detail = await ticket(live_mail, token, reference)
    assert "email:jo.resident@example.org" in detail["contact_addresses"]  # type: ignore[operator]
    bodies = [m["body"] for m in detail["messages"]]  # type: ignore[attr-defined]
    assert "Thank you, 8 a.m. is fine." in bodies


async def test_handoff_to_an_address_the_city_knows_joins_that_residents_history(
    live_mail: LiveHub, smtp_sink: SmtpSink
) -> None:
    token = await live_mail.agent_token()
    await post_email(live_mail.client, resident_mail("sam@example.org", "Pothole", "Deep one on Brock Rd.\n"))
    earlier = await ticket(live_mail, token, "PKR-000001")
    async with resident(live_mail.ws_url) as sam:
        reference = await open_chat(live_mail, sam, "About my pothole report")
        await sam.send(type="handoff", channel="email", address="sam@example.org")
        await sam.expect("handoff")
    chat_ticket = await ticket(live_mail, token, reference)
    assert chat_ticket["contact_id"] == earlier["contact_id"]
    assert any(str(a).startswith("chat:") for a in chat_ticket["contact_addresses"])  # type: ignore[attr-defined]


async def test_handoff_to_sms_sends_the_acknowledgement_by_text(live: LiveHub, fake_twilio: FakeTwilioApi) -> None:
    async with resident(live.ws_url) as jo:
        reference = await open_chat(live, jo)
        await jo.send(type="handoff", channel="sms", address="905 555 0142")
        assert (await jo.expect("handoff"))["address"] == "***0142"
    [text] = await fake_twilio.wait_for(1)
    assert text.to == "+19055550142"
    assert text.body is not None
    assert reference in text.body


@pytest.mark.parametrize(("channel", "address"), [("email", "not-an-address"), ("sms", "12")])
async def test_handoff_to_a_bad_address_is_refused_plainly(live: LiveHub, channel: str, address: str) -> None:
    async with resident(live.ws_url) as jo:
        await open_chat(live, jo)
        await jo.send(type="handoff", channel=channel, address=address)
        error = await jo.expect("error")
        assert error["code"] == "bad_address"


async def test_closing_with_a_transcript_mails_the_conversation(live_mail: LiveHub, smtp_sink: SmtpSink) -> None:
    token = await live_mail.agent_token()
    async with resident(live_mail.ws_url) as jo:
        reference = await open_chat(live_mail, jo, "When is yard waste pickup?")
        await reply(live_mail.client, token, reference, "Every second Monday from April to November.")
        await jo.expect("message", seq=3)
        await jo.send(type="close", transcript="jo@example.org")
        closed = await jo.expect("closed")
        assert closed["transcript"] is True
        await jo.send(type="message", cid="message-after-the-close", body="One more thing")
        assert (await jo.expect("error"))["code"] == "closed"

    [mail] = await smtp_sink.wait_for(1)
    assert mail.rcpt_tos == ("jo@example.org",)
    text = text_of(mail.message)
    assert "When is yard waste pickup?" in text
    assert "Every second Monday from April to November." in text
    assert reference in str(mail.message["Subject"])

    response = await live_mail.client.post(
        f"/api/v1/tickets/{reference}/replies",
        json={"body": "Anything else?"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"


async def test_resolving_the_ticket_ends_the_chat_for_the_resident(live: LiveHub) -> None:
    token = await live.agent_token()
    async with resident(live.ws_url) as jo:
        reference = await open_chat(live, jo)
        response = await live.client.patch(
            f"/api/v1/tickets/{reference}", json={"status": "resolved"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
        assert (await jo.expect("closed"))["transcript"] is False


async def test_chat_is_unavailable_out_of_hours(settings: Settings) -> None:
    today = datetime.now(ZoneInfo("America/Toronto")).date()
    async with live_hub(chat_settings(settings, chat_closed_dates=[today])) as live, resident(live.ws_url) as jo:
        welcome = await jo.hello()
        assert welcome["available"] is False
        assert welcome["reason"] == "after_hours"
        assert welcome["hours"] == "Monday to Sunday, 12 a.m. to midnight"


async def test_chat_is_available_only_while_an_agent_is_online(settings: Settings) -> None:
    async with live_hub(chat_settings(settings, chat_require_agent_online=True)) as live:
        token = await live.agent_token()
        async with resident(live.ws_url) as before:
            assert (await before.hello())["reason"] == "no_agents"
        async with agent_stream(live.url, token):
            async with resident(live.ws_url) as during:
                assert (await during.hello())["available"] is True
            config = (await live.client.get("/chat/config", params={"lang": "fr"})).json()
            assert config["available"] is True
            assert config["lang"] == "fr"
        response = await live.client.get("/chat/config", params={"lang": "fr-CA"})
        assert response.json()["reason"] == "no_agents"
        assert response.json()["lang"] == "fr"


async def test_open_chats_are_told_when_an_agent_comes_online(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chat_hub, "AVAILABILITY_CHECK_SECONDS", 0.05)
    async with live_hub(chat_settings(settings, chat_require_agent_online=True)) as live:
        token = await live.agent_token()
        async with resident(live.ws_url) as jo:
            assert (await jo.hello())["reason"] == "no_agents"
            async with agent_stream(live.url, token):
                assert (await jo.expect("availability"))["available"] is True
            changed = await jo.expect("availability")
            assert changed["available"] is False
            assert changed["reason"] == "no_agents"
