"""Email both ways through real SMTP: agents' replies thread in the resident's client (even one that drops
In-Reply-To), SMTP failures retry or fail with the server's words, and two hubs mailing each other stay bounded."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select

from carehub.models import InboundEmail, Outbox
from carehub.settings import Settings
from channels.base import DeliveryStatus
from tests.conftest import Hub, running_hub
from tests.fakes.smtp_server import SmtpSink
from tests.support import stores
from tests.support.mail import post_email, resident_mail
from tests.support.store_queries import count_rows
from tests.support.waiting import eventually

RESIDENT = "resident@mail.example"


async def reply(hub: Hub, token: str, body: str, ref: str = "PKR-000001") -> Any:
    response = await hub.client.post(
        f"/api/v1/tickets/{ref}/replies", json={"body": body}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _reply_recorded_sent(hub: Hub, token: str, body: str) -> bool:
    messages = (await ticket(hub, token))["messages"]
    return any(m["body"] == body and m["delivery"]["status"] == "sent" for m in messages)


async def ticket(hub: Hub, token: str, ref: str = "PKR-000001") -> Any:
    response = await hub.client.get(f"/api/v1/tickets/{ref}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()


def ids(value: object) -> list[str]:
    return str(value or "").split()


async def test_five_message_conversation_with_a_client_that_drops_in_reply_to(
    mail_hub: Hub, smtp_sink: SmtpSink
) -> None:
    token = await mail_hub.agent_token()
    first_id = "<first.1@mail.example>"
    await post_email(
        mail_hub.client, resident_mail(RESIDENT, "Broken streetlight", "Light 42 is out.\n", message_id=first_id)
    )
    [ack] = await smtp_sink.wait_for(1)

    answer1_body = "Thank you, a crew is booked for Tuesday."
    await reply(mail_hub, token, answer1_body)
    answer1 = (await smtp_sink.wait_for(2))[1].message
    assert answer1["In-Reply-To"] == first_id
    assert ids(answer1["References"]) == [first_id, ack.message["Message-ID"]]
    assert answer1["Subject"] == "Re: Broken streetlight [PKR-000001]"
    assert answer1["Auto-Submitted"] is None  # a person wrote it
    # References lists what was recorded as sent: the sink has the mail a moment before the hub records it.
    await eventually(lambda: _reply_recorded_sent(mail_hub, token, answer1_body), what="the first answer recorded")

    # Outlook-style reply: "RE:" subject, Thread-Index, References cut down to the first message, no In-Reply-To.
    second_id = "<second.2@mail.example>"
    outlook = {"Thread-Index": "AQHZx1b2c3RyZWV0bGlnaHQ=", "Thread-Topic": "Broken streetlight"}
    await post_email(
        mail_hub.client,
        resident_mail(
            RESIDENT,
            "RE: " + str(answer1["Subject"]),
            "Tuesday works, thank you.\n\n-----Original Message-----\nFrom: City\nThank you, a crew is booked.\n",
            message_id=second_id,
            references=[first_id],
            headers=outlook,
        ),
    )
    await reply(mail_hub, token, "The light is fixed.")
    answer2 = (await smtp_sink.wait_for(3))[2].message
    assert answer2["In-Reply-To"] == second_id
    assert set(ids(answer2["References"])) >= {first_id, second_id, answer1["Message-ID"]}

    # The last one carries neither In-Reply-To nor References: only the reference in the subject joins it.
    third_id = "<third.3@mail.example>"
    response = await post_email(
        mail_hub.client,
        resident_mail(
            RESIDENT, "RE: " + str(answer2["Subject"]), "Confirmed, thanks!\n", message_id=third_id, headers=outlook
        ),
    )

    assert response.json()["ticket"] == "PKR-000001"

    async def all_recorded_sent() -> dict[str, Any] | None:  # the sink has each mail a moment before it is recorded
        found = await ticket(mail_hub, token)
        statuses = [m["delivery"]["status"] for m in found["messages"] if m["direction"] == "out"]
        return found if statuses == ["sent"] * 3 else None

    detail = await eventually(all_recorded_sent, what="the acknowledgement and both answers recorded as sent")
    resident_lines = [m["body"] for m in detail["messages"] if m["direction"] == "in"]
    assert resident_lines == ["Light 42 is out.", "Tuesday works, thank you.", "Confirmed, thanks!"]
    assert detail["status"] == "open"
    listed = await mail_hub.client.get("/api/v1/tickets", headers={"Authorization": f"Bearer {token}"})
    assert len(listed.json()["items"]) == 1
    # Quoted history is kept for the agent who wants it, but is not the message.
    second = [m for m in detail["messages"] if m["direction"] == "in"][1]
    assert "Original Message" in second["email"]["full_text"]


async def test_a_4xx_answer_is_retried_and_the_mail_goes_out_once(mail_hub: Hub, smtp_sink: SmtpSink) -> None:
    smtp_sink.fail_next("RCPT", "451 4.3.0 Mailbox busy, try later", times=2)
    await post_email(mail_hub.client, resident_mail(RESIDENT, "Parking permit", "How do I renew?\n"))

    [ack] = await smtp_sink.wait_for(1)
    assert ack.rcpt_tos == (RESIDENT,)
    token = await mail_hub.agent_token()

    async def settled() -> Any:
        out = [m for m in (await ticket(mail_hub, token))["messages"] if m["direction"] == "out"]
        return out if out and out[0]["delivery"]["status"] == "sent" else None

    [out] = await eventually(settled, what="the acknowledgement recorded as sent")
    assert out["delivery"]["attempts"] == 3
    assert len(smtp_sink.messages) == 1


async def test_a_5xx_answer_fails_for_good_with_the_servers_reply_on_the_ticket(
    mail_hub: Hub, smtp_sink: SmtpSink
) -> None:
    smtp_sink.fail_next("RCPT", "550 5.1.1 <resident@mail.example>: Recipient address rejected: User unknown")
    await post_email(mail_hub.client, resident_mail(RESIDENT, "Tree down", "On Rougemount Dr.\n"))
    token = await mail_hub.agent_token()

    async def failed() -> Any:
        out = [m for m in (await ticket(mail_hub, token))["messages"] if m["direction"] == "out"]
        return out[0]["delivery"] if out and out[0]["delivery"]["status"] == "failed" else None

    delivery = await eventually(failed, what="the acknowledgement failing")
    assert delivery["error_code"] == "550"
    assert "5.1.1" in delivery["last_error"]
    assert "User unknown" in delivery["last_error"]
    assert delivery["attempts"] == 1
    assert smtp_sink.messages == []
    # The mailbox does not exist: an agent is told so instead of queueing more mail into the void.
    refused = await mail_hub.client.post(
        "/api/v1/tickets/PKR-000001/replies", json={"body": "Hello?"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert refused.status_code == 409
    assert "bounced" in refused.json()["detail"]


async def test_the_smtp_server_being_down_delays_mail_without_losing_it(mail_hub: Hub, smtp_sink: SmtpSink) -> None:
    await smtp_sink.stop()
    await post_email(mail_hub.client, resident_mail(RESIDENT, "Library hours", "Open Sunday?\n"))
    token = await mail_hub.agent_token()

    async def retrying() -> Any:
        out = [m for m in (await ticket(mail_hub, token))["messages"] if m["direction"] == "out"]
        return out and out[0]["delivery"]["error_code"] == "smtp-connect"

    await eventually(retrying, what="a failed connection recorded")
    await smtp_sink.start()
    [ack] = await smtp_sink.wait_for(1, within=10)
    assert ack.rcpt_tos == (RESIDENT,)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@asynccontextmanager
async def _hub_for(settings: Settings, domain: str, listen: int, send_to: int) -> AsyncIterator[Hub]:
    own = settings.model_copy(
        update={
            "email_from_address": f"care@{domain}",
            "smtp_host": "127.0.0.1",
            "smtp_port": send_to,
            "smtp_tls": "none",
            "smtp_inbound_in_process": True,
            "smtp_inbound_port": listen,
        }
    )
    async with running_hub(own) as hub:
        yield hub


async def _settled(hub: Hub) -> list[str]:
    async with hub.runtime.engine.connect() as conn:
        return [r.status for r in await conn.execute(select(Outbox.__table__.c.status))]  # type: ignore[attr-defined]


async def test_two_hubs_mailing_each_other_stay_bounded(
    settings: Settings, tmp_path: Path, sqlite_template: Path
) -> None:
    port_a, port_b = _free_port(), _free_port()
    (tmp_path / "hub-b").mkdir()
    other_store = stores.fresh_sqlite(sqlite_template, tmp_path / "hub-b")
    settings_b = settings.model_copy(update={"database_url": other_store})
    async with (
        _hub_for(settings, "a.example", listen=port_a, send_to=port_b) as hub_a,
        _hub_for(settings_b, "b.example", listen=port_b, send_to=port_a) as hub_b,
    ):
        # Hub B's own address writes to hub A (a forward, a misconfigured rule, a spoof): A acknowledges it...
        await post_email(hub_a.client, resident_mail("care@b.example", "Hello from B", "Ping.\n", to="care@a.example"))

        async def a_sent() -> bool:
            return await _settled(hub_a) == [DeliveryStatus.SENT]

        await eventually(a_sent, what="hub A's acknowledgement delivered to hub B")
        # ... and B, whose listener answered 250 only after processing it, took it in without answering back.
        engine_b = hub_b.runtime.engine
        async with engine_b.connect() as conn:
            [row] = list(await conn.execute(select(InboundEmail.__table__)))  # type: ignore[attr-defined]
        assert row.status == "processed"
        assert row.from_address == "care@a.example"
        assert await _settled(hub_b) == []
        assert await count_rows(hub_a.runtime.engine, InboundEmail) == 1
        assert await count_rows(engine_b, Outbox) == 0


async def test_an_undeliverable_outbox_row_for_an_address_that_bounced_is_failed_without_sending(
    mail_hub: Hub, smtp_sink: SmtpSink
) -> None:
    smtp_sink.fail_next("RCPT", "550 5.1.1 User unknown")
    await post_email(mail_hub.client, resident_mail(RESIDENT, "First", "One.\n"))
    token = await mail_hub.agent_token()

    async def failed() -> Any:
        out = [m for m in (await ticket(mail_hub, token))["messages"] if m["direction"] == "out"]
        return out and out[0]["delivery"]["status"] == "failed"

    await eventually(failed, what="the first acknowledgement failing")
    # The resident writes again from the same address: that proves it works, so replies may go there again.
    await post_email(mail_hub.client, resident_mail(RESIDENT, "Re: First [PKR-000001]", "I am here.\n"))
    await reply(mail_hub, token, "Got it.")
    [answer] = await smtp_sink.wait_for(1)
    assert answer.rcpt_tos == (RESIDENT,)
