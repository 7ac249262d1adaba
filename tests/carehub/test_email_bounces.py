"""Real bounces (flanker's DSNs and a prose bounce) about mail the hub really sent: the acknowledgement goes out over
SMTP, then a report that names its Message-ID comes back through the webhook and changes delivery and replies."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from carehub.models import Role
from tests.conftest import Hub
from tests.fakes.smtp_server import SmtpSink
from tests.support.corpus import FLANKER_MESSAGES
from tests.support.mail import post_email, resident_mail
from tests.support.store_queries import undeliverable_addresses
from tests.support.waiting import eventually

RESIDENT = "resident@mail.example"
TICKET = "PKR-000001"


def rewritten_bounce(name: str, *, original_id: str, failed: str, our_id: str, resident: str = RESIDENT) -> bytes:
    """A corpus bounce made to be about our message: its returned Message-ID and failed recipient replaced."""
    raw = (FLANKER_MESSAGES / "bounce" / name).read_bytes()
    assert raw.count(original_id.encode()) == 1, f"{name} should quote {original_id} once"
    assert failed.encode() in raw, f"{name} should name {failed}"
    return raw.replace(original_id.encode(), our_id.encode()).replace(failed.encode(), resident.encode())


async def ticket(hub: Hub, token: str) -> Any:
    response = await hub.client.get(f"/api/v1/tickets/{TICKET}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()


def acknowledgement(detail: Any) -> Any:
    [ack] = [m for m in detail["messages"] if m["direction"] == "out" and m["author_agent_id"] is None]
    return ack


async def reply(hub: Hub, token: str, body: str) -> httpx.Response:
    return await hub.client.post(
        f"/api/v1/tickets/{TICKET}/replies", json={"body": body}, headers={"Authorization": f"Bearer {token}"}
    )


async def acknowledged_mail(hub: Hub, sink: SmtpSink, token: str) -> str:
    """A resident writes, the hub acknowledges over SMTP; returns the Message-ID of the acknowledgement."""
    response = await post_email(
        hub.client, resident_mail(RESIDENT, "Streetlight out on Liverpool Rd", "The light at number 12 is out.\n")
    )
    assert (response.json()["ticket"], response.json()["acknowledged"]) == (TICKET, True)
    [ack] = await sink.wait_for(1)
    assert ack.rcpt_tos == (RESIDENT,)
    message_id = str(ack.message["Message-ID"])
    assert message_id.startswith("<carehub.1.")
    assert message_id.endswith("@pickering.example>")

    # The hub records "sent" (with the Message-ID) just after the server's 250; a bounce cannot come back sooner.
    async def recorded_sent() -> bool:
        return bool(acknowledgement(await ticket(hub, token))["delivery"]["status"] == "sent")

    await eventually(recorded_sent, what="the acknowledgement recorded as sent")
    return message_id


PERMANENT = [
    # Postfix, multipart/report with message/delivery-status and the returned message/rfc822
    pytest.param(
        "zed.eml",
        "<20090708054735.GC7578@example.com>",
        "asdfasdfasdfasdfasdfasdfewrqertrtyrthsfgdfgadfqeadvxzvz@gmail.com",
        "5.1.1",
        id="postfix-dsn-5.1.1",
    ),
    # Gmail's old non-standard text/plain bounce: X-Failed-Recipients, the original quoted as prose
    pytest.param(
        "gmail-invalid-address.eml",
        "<CAKsfaBUUGqVZiaMrmH3TRPfq1odQPtM7Ey5YW1SgyJJRHtAjgw@mail.gmail.com>",
        "awfawfawfawfawfaw@someserverhere.com",
        "5.1.0",
        id="gmail-prose-5.1.0",
    ),
]


@pytest.mark.parametrize(("name", "original_id", "failed", "status"), PERMANENT)
async def test_permanent_bounce_marks_our_mail_undelivered_and_holds_replies_until_the_resident_writes_again(
    mail_hub: Hub, smtp_sink: SmtpSink, name: str, original_id: str, failed: str, status: str
) -> None:
    token = await mail_hub.agent_token()
    our_id = await acknowledged_mail(mail_hub, smtp_sink, token)

    bounce = rewritten_bounce(name, original_id=original_id, failed=failed, our_id=our_id)
    response = await post_email(mail_hub.client, bounce)

    assert response.status_code == 202
    outcome = response.json()
    assert (outcome["status"], outcome["ticket"]) == ("bounce", TICKET)
    assert outcome["reason"].startswith(f"permanent failure {status} for {RESIDENT}: ")
    delivery = acknowledgement(await ticket(mail_hub, token))["delivery"]
    assert delivery["status"] == "undelivered"
    assert delivery["error_code"] == status
    assert status in delivery["last_error"]
    assert await undeliverable_addresses(mail_hub.runtime.engine) == [RESIDENT]
    supervisor = await mail_hub.agent_token(role=Role.SUPERVISOR, email="supervisor@city.test")
    archived = await mail_hub.client.get(
        f"/api/v1/inbound-emails/{outcome['id']}", headers={"Authorization": f"Bearer {supervisor}"}
    )
    assert archived.json()["outbox_id"] == 1
    assert archived.json()["ticket_id"] == 1

    held = await reply(mail_hub, token, "A crew will fix it this week.")

    assert held.status_code == 409
    assert held.headers["content-type"] == "application/problem+json"
    assert f"Mail to {RESIDENT} bounced" in held.json()["detail"]
    assert status in held.json()["detail"]

    # The resident writes again from the same address: it works, so replies are allowed again.
    again = await post_email(mail_hub.client, resident_mail(RESIDENT, "Still dark", "Any news about the light?\n"))
    assert again.json()["status"] == "processed"
    assert await undeliverable_addresses(mail_hub.runtime.engine) == []

    allowed = await reply(mail_hub, token, "A crew will fix it this week.")

    assert allowed.status_code == 201, allowed.text
    [_, sent] = await smtp_sink.wait_for(2)
    assert sent.rcpt_tos == (RESIDENT,)
    text = sent.message.get_body(("plain",))
    assert text is not None
    assert "A crew will fix it this week." in text.get_content()
    assert str(sent.message["Subject"]).endswith(f"[{TICKET}]")


async def test_delayed_delivery_report_records_the_problem_but_keeps_the_mail_sent_and_replies_allowed(
    mail_hub: Hub, smtp_sink: SmtpSink
) -> None:
    token = await mail_hub.agent_token()
    our_id = await acknowledged_mail(mail_hub, smtp_sink, token)
    # A real "Delayed Mail (still being retried)" DSN: Action: delayed, Status: 4.4.4, returned headers only.
    bounce = rewritten_bounce(
        "no-mx.eml", original_id="<19E44CA63F984902B7D654F8FF40F89D@bo>", failed="user@example.com", our_id=our_id
    )

    response = await post_email(mail_hub.client, bounce)

    outcome = response.json()
    assert (outcome["status"], outcome["ticket"]) == ("bounce", TICKET)
    assert outcome["reason"].startswith(f"temporary problem 4.4.4 for {RESIDENT}: ")
    delivery = acknowledgement(await ticket(mail_hub, token))["delivery"]
    assert delivery["status"] == "sent"
    assert delivery["error_code"] == "4.4.4"
    assert "temporary problem 4.4.4" in delivery["last_error"]
    assert "no MX or A for domain" in delivery["last_error"]
    assert await undeliverable_addresses(mail_hub.runtime.engine) == []

    allowed = await reply(mail_hub, token, "We have logged the outage.")

    assert allowed.status_code == 201, allowed.text
    [_, sent] = await smtp_sink.wait_for(2)
    assert sent.rcpt_tos == (RESIDENT,)


async def test_bounce_about_a_message_id_we_never_sent_is_archived_and_changes_nothing(
    mail_hub: Hub, smtp_sink: SmtpSink
) -> None:
    token = await mail_hub.agent_token()
    our_id = await acknowledged_mail(mail_hub, smtp_sink, token)
    # Our format, our domain, our resident; but outbox row 99 never existed.
    never_sent = our_id.replace("<carehub.1.", "<carehub.99.")
    bounce = rewritten_bounce(
        "zed.eml",
        original_id="<20090708054735.GC7578@example.com>",
        failed="asdfasdfasdfasdfasdfasdfewrqertrtyrthsfgdfgadfqeadvxzvz@gmail.com",
        our_id=never_sent,
    )

    response = await post_email(mail_hub.client, bounce)

    assert response.status_code == 202
    outcome = response.json()
    assert outcome["status"] == "unprocessable"
    assert outcome["reason"] == "a delivery report about mail carehub did not send (no Message-ID of ours in it)"
    assert outcome["ticket"] is None
    delivery = acknowledgement(await ticket(mail_hub, token))["delivery"]
    assert (delivery["status"], delivery["error_code"], delivery["last_error"]) == ("sent", None, None)
    assert await undeliverable_addresses(mail_hub.runtime.engine) == []
    assert (await reply(mail_hub, token, "Thanks, noted.")).status_code == 201
    await smtp_sink.wait_for(2)


async def test_a_spam_complaint_about_our_mail_opts_the_address_out(mail_hub: Hub, smtp_sink: SmtpSink) -> None:
    token = await mail_hub.agent_token()
    our_id = await acknowledged_mail(mail_hub, smtp_sink, token)
    raw = (FLANKER_MESSAGES / "complaints" / "yahoo.eml").read_bytes()
    original = b"<20120711015015.4A8BE2E088E@www.example.com>"
    assert raw.count(original) == 1
    complaint = raw.replace(original, our_id.encode()).replace(b"user@yahoo.com", RESIDENT.encode())

    outcome = (await post_email(mail_hub.client, complaint)).json()

    assert outcome["status"] == "bounce"
    assert outcome["reason"] == f"spam complaint about mail to {RESIDENT}: no more mail goes there"
    refused = await reply(mail_hub, token, "Following up.")
    assert refused.status_code == 409
    assert "opted out" in refused.json()["detail"]
