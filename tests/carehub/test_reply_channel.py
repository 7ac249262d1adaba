"""Answering on another channel than the ticket's: the reply goes to an address the resident gave us on that
channel (one they wrote from, or typed at the start of a chat), stored on the ticket with its channel and sent
through the outbox; never to an address they did not give, have opted out of, or that bounces."""

from __future__ import annotations

from typing import Any

from carehub.settings import Settings
from tests.carehub.chat.conftest import chat_settings
from tests.conftest import Hub
from tests.fakes.smtp_server import SmtpSink
from tests.fakes.twilio_api import FakeTwilioApi, error
from tests.support.chat import resident
from tests.support.live import live_hub
from tests.support.mail import post_email, resident_mail
from tests.support.store_queries import opted_out
from tests.support.twilio import text_hub
from tests.support.waiting import eventually

JO_MOBILE = "+14165550101"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def contact_of(hub: Hub, token: str, reference: str) -> int:
    response = await hub.client.get(f"/api/v1/tickets/{reference}", headers=bearer(token))
    return int(response.json()["contact_id"])


async def one_resident(hub: Hub, token: str, sms_ticket: str, email_ticket: str) -> None:
    """The agent knows the texter and the writer are one resident, and says so."""
    texter, writer = await contact_of(hub, token, sms_ticket), await contact_of(hub, token, email_ticket)
    merged = await hub.client.post(f"/api/v1/contacts/{texter}/merge", json={"into": writer}, headers=bearer(token))
    assert merged.status_code == 201, merged.text


async def reply(hub: Hub, token: str, reference: str, body: str, channel: str) -> Any:
    return await hub.client.post(
        f"/api/v1/tickets/{reference}/replies", json={"body": body, "channel": channel}, headers=bearer(token)
    )


async def test_an_sms_ticket_is_answered_by_email_to_the_address_the_resident_wrote_from(
    mail_hub: Hub, smtp_sink: SmtpSink, fake_twilio: FakeTwilioApi
) -> None:
    token = await mail_hub.agent_token()
    await text_hub(mail_hub.client, JO_MOBILE, "Can you send me the permit form?")
    await post_email(mail_hub.client, resident_mail("jo@example.org", "Permit", "About my fence.\n"))
    await fake_twilio.wait_for(1)  # the SMS acknowledgement
    await smtp_sink.wait_for(1)  # the email acknowledgement
    await one_resident(mail_hub, token, "PKR-000001", "PKR-000002")

    sent = await reply(mail_hub, token, "PKR-000001", "Here is the form: https://city.example/permits", "email")
    assert sent.status_code == 201, sent.text
    assert sent.json()["channel"] == "email"
    [_, mail] = await smtp_sink.wait_for(2)
    assert mail.rcpt_tos == ("jo@example.org",)
    assert "PKR-000001" in str(mail.message["Subject"])  # the answer threads back to the SMS ticket
    body = mail.message.get_body(("plain",))
    assert body is not None
    assert "https://city.example/permits" in str(body.get_content())

    async def recorded_as_sent() -> dict[str, Any] | None:
        # The SMTP server has the mail a moment before the worker commits "sent": wait for that, not a snapshot.
        found = (await mail_hub.client.get("/api/v1/tickets/PKR-000001", headers=bearer(token))).json()
        return found if found["messages"][-1]["delivery"]["status"] == "sent" else None

    detail = await eventually(recorded_as_sent, what="the email reply to be recorded as sent")
    last = detail["messages"][-1]
    assert (last["channel"], last["direction"]) == ("email", "out")
    assert detail["channel"] == "sms"  # a one-off: the ticket's own replies still go by text
    assert len(fake_twilio.accepted) == 1


async def test_no_address_on_that_channel_is_refused(hub: Hub) -> None:
    token = await hub.agent_token()
    await text_hub(hub.client, JO_MOBILE, "Pothole on Main St")
    refused = await reply(hub, token, "PKR-000001", "Thanks", "email")
    assert refused.status_code == 409
    assert "has not given us an email address" in refused.json()["detail"]
    chat = await reply(hub, token, "PKR-000001", "Thanks", "chat")
    assert chat.status_code == 409
    assert "did not come from a web chat" in chat.json()["detail"]
    same = await reply(hub, token, "PKR-000001", "Thanks", "sms")
    assert same.status_code == 201  # the ticket's own channel, named


async def test_an_opted_out_number_is_refused(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    token = await hub.agent_token()
    fake_twilio.push(error(400, 21610, "Attempt to send to unsubscribed recipient"))
    await text_hub(hub.client, JO_MOBILE, "hello")
    await eventually(lambda: opted_out(hub.runtime.engine, JO_MOBILE), what="the number marked opted out")
    await post_email(hub.client, resident_mail("jo@example.org", "Pothole", "On Main St.\n"))
    await one_resident(hub, token, "PKR-000001", "PKR-000002")

    refused = await reply(hub, token, "PKR-000002", "We fixed it", "sms")
    assert refused.status_code == 409
    assert "opted out of sms" in refused.json()["detail"]
    detail = (await hub.client.get("/api/v1/tickets/PKR-000002", headers=bearer(token))).json()
    assert [m["body"] for m in detail["messages"] if m["direction"] == "out" and m["author_agent_id"]] == []


async def test_a_chat_is_answered_by_text_to_the_number_the_resident_typed(
    settings: Settings, fake_twilio: FakeTwilioApi
) -> None:
    async with live_hub(chat_settings(settings)) as live:
        token = await live.agent_token()
        async with resident(live.ws_url) as jo:
            await jo.hello()
            await jo.say("Is the pool open on Sunday?", name="Jo", phone="416 555 0199")
            reference = jo.reference
        sent = await reply(live, token, reference, "Yes, 9 to 5.", "sms")
        assert sent.status_code == 201, sent.text
        [text] = await fake_twilio.wait_for(1)
        assert (text.to, text.body) == ("+14165550199", "Yes, 9 to 5.")
        detail = (await live.client.get(f"/api/v1/tickets/{reference}", headers=bearer(token))).json()
        assert "sms:+14165550199" in detail["contact_addresses"]  # kept on the resident's record
        assert detail["messages"][-1]["channel"] == "sms"
        no_email = await reply(live, token, reference, "Also by mail?", "email")
        assert no_email.status_code == 409
