"""A resident's email becomes a ticket with an acknowledgement; replies thread; other senders, loops, bounces,
junk and redeliveries are each handled as the email issue says. Real SMTP both ways (aiosmtplib, aiosmtpd)."""

from __future__ import annotations

import secrets
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest

from carehub.mail.ingest import ack_context
from carehub.mail.smtpd import start_listener
from carehub.models import InboundEmail, Message, Role, Ticket
from carehub.status.links import link_in
from tests.conftest import Hub
from tests.fakes.smtp_server import SmtpSink
from tests.support.mail import CITY_CARE, post_email, resident_mail
from tests.support.store_queries import count_rows
from tests.support.waiting import eventually

RESIDENT = "resident@mail.example"


async def api(hub: Hub, path: str, token: str) -> Any:
    response = await hub.client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()


async def first_mail(hub: Hub, sink: SmtpSink, subject: str = "Pothole on Kingston Rd") -> EmailMessage:
    response = await post_email(hub.client, resident_mail(RESIDENT, subject, "There is a deep pothole.\n"))
    assert response.status_code == 202, response.text
    assert response.json()["acknowledged"] is True
    [ack] = await sink.wait_for(1)
    return ack.message


async def test_email_opens_a_ticket_and_the_resident_gets_a_threaded_acknowledgement(
    mail_hub: Hub, smtp_sink: SmtpSink
) -> None:
    raw = resident_mail(RESIDENT, "Pothole on Kingston Rd", "There is a deep pothole.\n", name="Jo Resident")
    response = await post_email(mail_hub.client, raw)

    assert response.status_code == 202
    assert response.json()["status"] == "processed"
    assert response.json()["ticket"] == "PKR-000001"
    [ack] = await smtp_sink.wait_for(1)
    assert ack.rcpt_tos == (RESIDENT,)
    msg = ack.message
    assert msg["To"] == RESIDENT
    assert CITY_CARE in msg["From"]
    assert msg["Subject"] == "Re: Pothole on Kingston Rd [PKR-000001]"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert str(msg["In-Reply-To"]) in raw.decode()
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None
    assert "PKR-000001" in text.get_content()
    assert html is not None
    assert "PKR-000001" in html.get_content()

    token = await mail_hub.agent_token()
    ticket = await api(mail_hub, "/api/v1/tickets/PKR-000001", token)
    assert ticket["channel"] == "email"
    assert ticket["subject"] == "Pothole on Kingston Rd"
    assert ticket["contact_addresses"] == [f"email:{RESIDENT}"]
    inbound, out = ticket["messages"]
    assert inbound["body"] == "There is a deep pothole."
    assert inbound["email"]["subject"] == "Pothole on Kingston Rd"
    assert inbound["email"]["from_name"] == "Jo Resident"
    assert out["delivery"]["status"] == "sent"


async def test_redelivered_email_is_stored_but_makes_no_second_message_or_ack(
    mail_hub: Hub, smtp_sink: SmtpSink
) -> None:
    raw = resident_mail(RESIDENT, "Garbage day?", "When is pickup on my street?\n")
    first = await post_email(mail_hub.client, raw)
    second = await post_email(mail_hub.client, raw)

    assert (first.json()["status"], second.json()["status"]) == ("processed", "duplicate")
    assert second.json()["ticket"] == "PKR-000001"
    await smtp_sink.wait_for(1)
    engine = mail_hub.runtime.engine
    assert await count_rows(engine, InboundEmail) == 2  # both arrivals are on record
    assert await count_rows(engine, Message) == 2  # one inbound, one acknowledgement
    assert len(smtp_sink.messages) == 1


async def test_mail_without_message_id_gets_a_deterministic_one_so_redelivery_via_another_relay_dedupes(
    mail_hub: Hub,
) -> None:
    raw = resident_mail(RESIDENT, "No id", "My client sets no Message-ID.\n")
    headers, _, body = raw.partition(b"\n\n")
    without_id = (
        b"\n".join(line for line in headers.split(b"\n") if not line.startswith(b"Message-ID")) + b"\n\n" + body
    )
    relayed = b"Received: from relay2.example by mx.pickering.example; Sun, 29 Nov 2026 10:00:00 +0000\n" + without_id

    first = await post_email(mail_hub.client, without_id)
    second = await post_email(mail_hub.client, relayed)

    assert (first.json()["status"], second.json()["status"]) == ("processed", "duplicate")


async def test_webhook_refuses_missing_or_wrong_secret_wrong_type_and_empty_body(mail_hub: Hub) -> None:
    raw = resident_mail(RESIDENT, "Hello", "Hi\n")
    no_auth = await mail_hub.client.post("/webhooks/email", content=raw, headers={"Content-Type": "message/rfc822"})
    wrong = await post_email(mail_hub.client, raw, secret="not-the-secret")
    json_body = await post_email(mail_hub.client, b'{"a": 1}', content_type="application/json")
    empty = await post_email(mail_hub.client, b"")

    assert [r.status_code for r in (no_auth, wrong, json_body, empty)] == [401, 401, 415, 400]
    for response in (no_auth, wrong, json_body, empty):
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"]
    assert await count_rows(mail_hub.runtime.engine, InboundEmail) == 0


async def test_webhook_takes_mail_larger_than_other_endpoints_allow_and_refuses_past_the_transport_limit(
    settings: Any, smtp_sink: SmtpSink
) -> None:
    from tests.conftest import mail_settings, running_hub

    limited = mail_settings(settings, smtp_sink, email_max_bytes=100 * 1024)
    async with running_hub(limited) as hub:
        big = resident_mail(RESIDENT, "Photos", "See attached.\n" + "x" * (150 * 1024))
        too_big = resident_mail(RESIDENT, "Video", "y" * (250 * 1024))

        archived = await post_email(hub.client, big)
        refused = await post_email(hub.client, too_big)

        assert archived.status_code == 202
        assert archived.json()["status"] == "unprocessable"
        assert "too large to process" in archived.json()["reason"]
        assert refused.status_code == 413
        assert refused.headers["content-type"] == "application/problem+json"
        assert await count_rows(hub.runtime.engine, InboundEmail) == 1


async def test_unparseable_mail_is_archived_with_its_reason_and_raw_bytes_for_staff(mail_hub: Hub) -> None:
    junk = b"\x89PNG\r\n\x1a\n this is not an email at all"
    response = await post_email(mail_hub.client, junk)

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "unprocessable"
    assert "not an email" in body["reason"]
    supervisor = await mail_hub.agent_token(role=Role.SUPERVISOR)
    page = await api(mail_hub, "/api/v1/inbound-emails?status=unprocessable", supervisor)
    [item] = page["items"]
    assert item["id"] == body["id"]
    assert item["reason"] == body["reason"]
    raw = await mail_hub.client.get(
        f"/api/v1/inbound-emails/{item['id']}/raw", headers={"Authorization": f"Bearer {supervisor}"}
    )
    assert raw.status_code == 200
    assert raw.content == junk
    assert raw.headers["content-disposition"].startswith("attachment")
    agent = await mail_hub.agent_token(email="plain-agent@city.test")
    denied = await mail_hub.client.get("/api/v1/inbound-emails", headers={"Authorization": f"Bearer {agent}"})
    assert denied.status_code == 403


async def test_reply_threads_by_in_reply_to_and_reopens_nothing_new(mail_hub: Hub, smtp_sink: SmtpSink) -> None:
    ack = await first_mail(mail_hub, smtp_sink)
    reply = resident_mail(
        RESIDENT, "Re: " + str(ack["Subject"]), "Also the sidewalk.\n", in_reply_to=str(ack["Message-ID"])
    )
    response = await post_email(mail_hub.client, reply)

    assert response.json()["ticket"] == "PKR-000001"
    assert response.json()["acknowledged"] is False  # a follow-up is not acknowledged again
    assert await count_rows(mail_hub.runtime.engine, Ticket) == 1


async def test_a_different_sender_on_the_thread_opens_a_linked_ticket_instead_of_joining(
    mail_hub: Hub, smtp_sink: SmtpSink
) -> None:
    ack = await first_mail(mail_hub, smtp_sink)
    intruder = resident_mail(
        "neighbour@other.example",
        "Re: " + str(ack["Subject"]),
        "I have the same problem.\n",
        in_reply_to=str(ack["Message-ID"]),
        references=[str(ack["Message-ID"])],
    )
    response = await post_email(mail_hub.client, intruder)

    assert response.json()["ticket"] == "PKR-000002"
    assert response.json()["reason"] == "another sender wrote on this thread"
    token = await mail_hub.agent_token()
    first = await api(mail_hub, "/api/v1/tickets/PKR-000001", token)
    second = await api(mail_hub, "/api/v1/tickets/PKR-000002", token)
    assert second["linked_ticket_id"] == 1
    assert [m["body"] for m in first["messages"] if m["direction"] == "in"] == ["There is a deep pothole."]
    assert second["contact_addresses"] == ["email:neighbour@other.example"]


async def test_subject_reference_alone_threads_a_reply_from_the_same_sender(mail_hub: Hub, smtp_sink: SmtpSink) -> None:
    await first_mail(mail_hub, smtp_sink)
    fresh = resident_mail(RESIDENT, "About PKR-000001 again", "Any news?\n")
    response = await post_email(mail_hub.client, fresh)

    assert response.json()["ticket"] == "PKR-000001"


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({"Auto-Submitted": "auto-replied"}, "Auto-Submitted"),
        ({"Precedence": "bulk"}, "Precedence"),
        ({"X-Loop": "care@elsewhere.example"}, "X-Loop"),
        ({"X-Auto-Response-Suppress": "All"}, "X-Auto-Response-Suppress"),
        ({"List-Id": "<residents.lists.example>"}, "List"),
    ],
)
async def test_automatic_mail_becomes_a_ticket_but_gets_no_acknowledgement(
    mail_hub: Hub, smtp_sink: SmtpSink, headers: dict[str, str], why: str
) -> None:
    raw = resident_mail(RESIDENT, "Out of office", "I am away.\n", headers=headers)
    response = await post_email(mail_hub.client, raw)

    assert response.json()["status"] == "processed"
    assert response.json()["acknowledged"] is False
    token = await mail_hub.agent_token()
    ticket = await api(mail_hub, "/api/v1/tickets/PKR-000001", token)
    [message] = ticket["messages"]
    assert why.lower() in message["email"]["no_auto_reply"].lower()
    assert smtp_sink.messages == []


async def test_mail_from_our_own_domain_and_robot_senders_is_not_acknowledged(mail_hub: Hub) -> None:
    ours = await post_email(mail_hub.client, resident_mail("clerk@pickering.example", "FYI", "Forwarding.\n"))
    robot = await post_email(mail_hub.client, resident_mail("noreply@shop.example", "Receipt", "Thanks.\n"))

    assert ours.json()["acknowledged"] is False
    assert robot.json()["acknowledged"] is False


async def test_at_most_one_acknowledgement_per_sender_per_period(mail_hub: Hub, smtp_sink: SmtpSink) -> None:
    outcomes = [
        (await post_email(mail_hub.client, resident_mail(RESIDENT, f"Question {i}", f"Question number {i}\n"))).json()
        for i in range(3)
    ]

    assert [o["ticket"] for o in outcomes] == ["PKR-000001", "PKR-000002", "PKR-000003"]
    assert [o["acknowledged"] for o in outcomes] == [True, False, False]
    await smtp_sink.wait_for(1)
    assert len(smtp_sink.messages) == 1


async def test_smtp_listener_takes_mail_for_our_domain_and_refuses_to_relay(mail_hub: Hub) -> None:
    server = await start_listener(mail_hub.runtime, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        raw = resident_mail(RESIDENT, "Snow on my street", "Not ploughed yet.\n")
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False) as client:
            _, reply = await client.sendmail(RESIDENT, [CITY_CARE], raw)
            with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
                await client.sendmail(RESIDENT, ["someone@elsewhere.example"], raw)
        assert reply.startswith("2.0.0 Stored as ")
        assert refused.value.recipients[0].code == 550
        token = await mail_hub.agent_token()
        ticket = await api(mail_hub, "/api/v1/tickets/PKR-000001", token)
        assert ticket["subject"] == "Snow on my street"
    finally:
        server.close()
        await server.wait_closed()


async def test_null_envelope_sender_over_smtp_gets_no_acknowledgement(mail_hub: Hub, smtp_sink: SmtpSink) -> None:
    server = await start_listener(mail_hub.runtime, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        raw = resident_mail(RESIDENT, "Notice", "Automatic notice.\n")
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False) as client:
            await client.sendmail("", [CITY_CARE], raw)
        token = await mail_hub.agent_token()
        ticket = await eventually(lambda: _ticket_or_none(mail_hub, token), what="the ticket from the SMTP listener")
        assert "null envelope sender" in ticket["messages"][0]["email"]["no_auto_reply"]
    finally:
        server.close()
        await server.wait_closed()


async def _ticket_or_none(hub: Hub, token: str) -> Any:
    response = await hub.client.get("/api/v1/tickets/PKR-000001", headers={"Authorization": f"Bearer {token}"})
    return response.json() if response.status_code == 200 else None


async def test_attachments_are_stored_listed_and_downloaded_as_files_whatever_their_names(mail_hub: Hub) -> None:
    msg = EmailMessage()
    msg["From"] = RESIDENT
    msg["To"] = CITY_CARE
    msg["Subject"] = "Photos of the flooding"
    msg.set_content("Two photos attached.\n")
    photo = bytes(range(256)) * 40
    msg.add_attachment(photo, maintype="image", subtype="jpeg", filename='报告 "rue" été.jpg')
    msg.add_attachment(b"%PDF-1.4 plan", maintype="application", subtype="pdf", filename="../../etc/passwd")
    response = await post_email(mail_hub.client, msg.as_bytes())
    assert response.json()["status"] == "processed"

    token = await mail_hub.agent_token()
    ticket = await api(mail_hub, "/api/v1/tickets/PKR-000001", token)
    files = ticket["messages"][0]["attachments"]
    assert [(f["filename"], f["content_type"], f["size"]) for f in files] == [
        ('报告 "rue" été.jpg', "image/jpeg", len(photo)),
        ("passwd", "application/pdf", len(b"%PDF-1.4 plan")),
    ]
    download = await mail_hub.client.get(
        f"/api/v1/attachments/{files[0]['id']}", headers={"Authorization": f"Bearer {token}"}
    )
    assert download.status_code == 200
    assert download.content == photo
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["x-content-type-options"] == "nosniff"
    disposition = download.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="')
    assert "filename*=UTF-8''%E6%8A%A5%E5%91%8A%20%22rue%22%20%C3%A9t%C3%A9.jpg" in disposition


@pytest.mark.parametrize("damage", ["lost", "torn"])
async def test_an_attachment_lost_from_the_blob_store_is_recovered_from_the_raw_message(
    mail_hub: Hub, damage: str
) -> None:
    msg = EmailMessage()
    msg["From"] = RESIDENT
    msg["To"] = CITY_CARE
    msg["Subject"] = "Receipt"
    msg.set_content("Attached.\n")
    # Unique bytes: blobs are content-addressed, and another run may share the directory.
    content = b"receipt " + bytes(range(256)) * 7 + secrets.token_bytes(16)
    msg.add_attachment(content, maintype="application", subtype="pdf", filename="receipt.pdf")
    await post_email(mail_hub.client, msg.as_bytes())
    token = await mail_hub.agent_token()
    [attachment] = (await api(mail_hub, "/api/v1/tickets/PKR-000001", token))["messages"][0]["attachments"]
    blobs = mail_hub.settings.data_dir / "blobs"

    async def written() -> list[Any]:  # blobs are written just after the answer
        return [p for p in blobs.rglob("*") if p.is_file() and _holds(p, content)]

    [blob] = await eventually(written, what="the attachment written to the blob store")
    if damage == "lost":
        blob.unlink()
    else:
        blob.write_bytes(content[:10])  # a crash before the disk had it all

    download = await mail_hub.client.get(
        f"/api/v1/attachments/{attachment['id']}", headers={"Authorization": f"Bearer {token}"}
    )

    assert download.status_code == 200
    assert download.content == content
    assert blob.read_bytes() == content  # put back


def _holds(path: Any, content: bytes) -> bool:
    return bool(path.read_bytes() == content)


async def test_the_acknowledgement_sent_is_exactly_the_templates_rendered_for_the_ticket(
    mail_hub: Hub, smtp_sink: SmtpSink
) -> None:
    # Open all week, so this is the in-hours acknowledgement whenever the test runs (after hours: test_routing.py).
    mail_hub.runtime.settings = mail_hub.settings.model_copy(update={"business_hours": "mon-sun 00:00-24:00"})
    ack = await first_mail(mail_hub, smtp_sink)

    text_part, html_part = ack.get_body(("plain",)), ack.get_body(("html",))
    assert text_part is not None
    assert html_part is not None
    link = link_in(text_part.get_content())  # the ticket's status link, random, so read back from the mail
    assert link is not None
    context = ack_context(mail_hub.runtime, "PKR-000001", link)
    text, html = mail_hub.runtime.templates.render_email("ack", "en", **context)
    assert text_part.get_content().replace("\r\n", "\n").strip() == text
    assert html_part.get_content().replace("\r\n", "\n").strip() == html


async def test_a_supervisor_sends_archived_mail_back_for_processing(mail_hub: Hub) -> None:
    supervisor = await mail_hub.agent_token(role=Role.SUPERVISOR)
    auth = {"Authorization": f"Bearer {supervisor}"}
    processed = (await post_email(mail_hub.client, resident_mail(RESIDENT, "Hi", "x\n"))).json()
    # Archived under a tighter limit; the limit is then raised again, as an operator would after a complaint.
    limit = mail_hub.settings.email_max_bytes
    mail_hub.runtime.settings = mail_hub.settings.model_copy(update={"email_max_bytes": 64 * 1024})
    big = resident_mail(RESIDENT, "Plans", "See the plans.\n" + "p" * 70_000)
    too_big = (await post_email(mail_hub.client, big)).json()
    mail_hub.runtime.settings = mail_hub.settings.model_copy(update={"email_max_bytes": limit})

    not_archived = await mail_hub.client.post(f"/api/v1/inbound-emails/{processed['id']}/retry", headers=auth)
    retried = await mail_hub.client.post(f"/api/v1/inbound-emails/{too_big['id']}/retry", headers=auth)

    assert too_big["status"] == "unprocessable"
    assert not_archived.status_code == 409
    assert retried.status_code == 200
    assert retried.json()["status"] == "processed"
    assert retried.json()["ticket_id"] == 2
