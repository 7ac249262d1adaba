"""Real-world mail (flanker's fixtures and torture tests, CPython's test_email data, talon's client replies) through
the real webhook into a running hub: every message is stored and settled, none is dropped, and a sample is checked
field by field on the ticket the agents see."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesParser
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from carehub.models import InboundEmail, Role, Ticket
from tests.conftest import Hub
from tests.fakes.smtp_server import SmtpSink
from tests.support.corpus import real_world_mail
from tests.support.mail import post_email
from tests.support.store_queries import count_rows, outbox_rows, undeliverable_addresses
from tests.support.waiting import eventually

CORPUS = real_world_mail()
KNOWN_STATUSES = {"processed", "duplicate", "bounce", "unprocessable"}
NOT_MAIL = [
    *sorted(k for k in CORPUS if k.startswith("cpython/") and not k.startswith("cpython/msg_")),  # images, sounds
    "cpython/msg_19.txt",  # a bare body: the headers were left out on purpose
]
NO_SENDER = [
    "flanker/attached-pdf.eml",
    "cpython/msg_11.txt",
    "cpython/msg_18.txt",
    "cpython/msg_37.txt",
    "cpython/msg_38.txt",
    "cpython/msg_39.txt",
    "cpython/msg_40.txt",
]
# Delivery reports and spam complaints about mail somebody else sent: none names a Message-ID of ours.
FOREIGN_REPORTS = [
    *sorted(k for k in CORPUS if k.startswith(("flanker/bounce/", "flanker/complaints/"))),
    "cpython/msg_05.txt",
    "cpython/msg_16.txt",  # a DSN whose Content-Type lacks report-type=delivery-status (its status part decides)
    "cpython/msg_25.txt",
    "cpython/msg_43.txt",
]
# Copies in the corpora that keep the Message-ID of an earlier file (posted in sorted order): redeliveries to us.
SAME_MESSAGE_ID_AS = {
    "flanker/enclosed-broken-body.eml": "flanker/enclosed-bad-encoding.eml",
    "flanker/enclosed-broken.eml": "flanker/enclosed-bad-encoding.eml",
    "flanker/enclosed-endless.eml": "flanker/enclosed-bad-encoding.eml",
    "flanker/enclosed-global.eml": "flanker/enclosed-bad-encoding.eml",
    "flanker/enclosed.eml": "flanker/enclosed-bad-encoding.eml",
    "flanker/text-only.eml": "flanker/no-ctype.eml",
    "flanker/torture.eml": "flanker/torture-part.eml",
    "cpython/msg_03.txt": "cpython/msg_01.txt",
    "cpython/msg_14.txt": "cpython/msg_01.txt",
    "cpython/msg_20.txt": "cpython/msg_01.txt",
    "cpython/msg_29.txt": "cpython/msg_01.txt",
    "cpython/msg_44.txt": "cpython/msg_04.txt",
}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def api(hub: Hub, path: str, token: str) -> Any:
    response = await hub.client.get(path, headers=auth(token))
    assert response.status_code == 200, response.text
    return response.json()


async def post_corpus_file(hub: Hub, name: str) -> dict[str, Any]:
    response = await post_email(hub.client, CORPUS[name].read_bytes())
    assert response.status_code == 202, f"{name}: {response.status_code} {response.text}"
    outcome: dict[str, Any] = response.json()
    return outcome


def test_the_three_corpora_are_all_present() -> None:
    prefixes = {name.split("/", 1)[0] for name in CORPUS}
    assert prefixes == {"flanker", "cpython", "talon"}
    assert len(CORPUS) > 120
    assert [k for k in CORPUS if k.startswith("talon/")]


async def test_every_real_world_message_is_stored_answered_202_and_settled_with_a_known_outcome(
    mail_hub: Hub, smtp_sink: SmtpSink
) -> None:
    outcomes = {name: await post_corpus_file(mail_hub, name) for name in CORPUS}

    engine = mail_hub.runtime.engine
    assert {o["status"] for o in outcomes.values()} <= KNOWN_STATUSES
    assert await count_rows(engine, InboundEmail) == len(CORPUS)  # nothing silently dropped
    supervisor = await mail_hub.agent_token(role=Role.SUPERVISOR)
    rows = (await api(mail_hub, "/api/v1/inbound-emails?limit=200", supervisor))["items"]
    assert len(rows) == len(CORPUS)
    assert [r for r in rows if r["status"] == "received"] == []
    by_id = {r["id"]: r for r in rows}
    for name, outcome in outcomes.items():
        row = by_id[outcome["id"]]
        assert (row["status"], row["reason"]) == (outcome["status"], outcome["reason"]), name
        if outcome["status"] == "unprocessable":
            assert outcome["reason"], name

    def named(status: str, reason_start: str = "") -> set[str]:
        return {
            k for k, o in outcomes.items() if o["status"] == status and (o["reason"] or "").startswith(reason_start)
        }

    unprocessable = named("unprocessable")
    assert named("unprocessable", "not an email: ") == set(NOT_MAIL)
    assert named("unprocessable", "no sender address (From) to answer") == set(NO_SENDER)
    assert named("unprocessable", "a delivery report about mail carehub did not send") == set(FOREIGN_REPORTS)
    assert unprocessable == set(NOT_MAIL) | set(NO_SENDER) | set(FOREIGN_REPORTS)
    for name in FOREIGN_REPORTS:  # a foreign report touches no ticket and no delivery
        row = by_id[outcomes[name]["id"]]
        assert (row["ticket_id"], row["outbox_id"]) == (None, None), name
    assert named("bounce") == set()  # none of the corpus bounces is about mail carehub sent

    assert named("duplicate") == set(SAME_MESSAGE_ID_AS)
    for copy, original in SAME_MESSAGE_ID_AS.items():
        assert outcomes[original]["status"] == "processed", original
        assert outcomes[copy]["ticket"] == outcomes[original]["ticket"], copy

    processed = named("processed")
    assert processed == set(CORPUS) - unprocessable - set(SAME_MESSAGE_ID_AS)
    tickets = [outcomes[k]["ticket"] for k in processed]
    assert all(tickets)
    assert len(set(tickets)) == len(tickets) == await count_rows(engine, Ticket)  # one new ticket each

    # Every acknowledgement really goes out, to the address the mail came from, and nothing bounced.
    acknowledged = [k for k in processed if outcomes[k]["acknowledged"]]
    assert len(acknowledged) > 20
    received = await smtp_sink.wait_for(len(acknowledged), within=20.0)
    senders = {by_id[outcomes[k]["id"]]["from_address"] for k in acknowledged}
    assert {rcpt for m in received for rcpt in m.rcpt_tos} == senders
    assert len(received) == len(acknowledged)

    async def all_sent() -> bool:
        return all(r.status == "sent" for r in await outbox_rows(engine))

    await eventually(all_sent, what="every acknowledgement recorded as sent")
    assert await undeliverable_addresses(engine) == []

    # Junk keeps its exact bytes in the archive for staff.
    gif = outcomes["cpython/python.gif"]["id"]
    raw = await mail_hub.client.get(f"/api/v1/inbound-emails/{gif}/raw", headers=auth(supervisor))
    assert raw.content == CORPUS["cpython/python.gif"].read_bytes()
    zed = by_id[outcomes["flanker/bounce/zed.eml"]["id"]]
    assert zed["from_address"] == "mailer-daemon@example.com.com"
    assert zed["subject"] == "Undelivered Mail Returned to Sender"


@dataclass(frozen=True)
class Expected:
    """What the agent sees for one corpus message: who wrote, about what, and the first words of the new text."""

    name: str
    sender: str
    from_name: str | None
    subject: str | None  # the ticket's, without Re:/Fwd: (None: checked by a test of its own)
    body_start: str
    html_has: str | None = None
    full_text_has: str | None = None


SAMPLE = [
    # text/plain, ISO-8859-1 declared, ASCII content
    Expected(
        "flanker/no-ctype.eml", "bob@marley.com", "Bob Marley", "Testing message parsing", "Hello,\nI'm just testing"
    ),
    # HTML only, ISO-8859-1: the text comes from the HTML, which is kept sanitised
    Expected(
        "flanker/long-links.eml",
        "postmaster@example.com",
        "Bob",
        "Please enjoy this mega long link",
        "http://www.longurlmaker.com/view/?id=UAOJNVKBMQUGPYZKCQZRZKJEXRC",
        html_has='rel="noopener noreferrer"',
    ),
    # multipart/alternative, ISO-8859-1: the plain part is the body; the signature is not in it
    Expected(
        "flanker/relative.eml",
        "example@example.com",
        "Bob Simple",
        "Html and text message",
        "This is html and text message, thanks",
        html_has="This is html and text message, thanks",
    ),
    # quoted-printable UTF-8 body, base64 encoded-word subject, both Cyrillic
    Expected(
        "flanker/bilingual-simple.eml",
        "hello@example.com",
        "Hello",
        "Simple text. How are you? Как ты поживаешь?",
        "This line is in English\nА эта линия по-русски.",  # noqa: RUF001 - Cyrillic on purpose
    ),
    # 8bit UTF-8 Cyrillic beside an HTML alternative made of character references
    Expected("flanker/8bitmime.eml", "bob@example.com", "bob", "2 RCPT MIME", "Превел\n\n123", html_has="123"),
    # ISO-8859-1 quoted-printable HTML (an inverted exclamation mark, 0xA1) among base64 and 7bit plain parts
    Expected(
        "cpython/msg_10.txt",
        "barry@python.org",
        "Barry Warsaw",
        "Lyrics",
        "This is a 7bit encoded message.\n\nThis is a Base64 encoded message.",
        html_has="¡This is a Quoted Printable encoded message!",
    ),
    # 8-bit ISO-8859-1 body (no-break spaces at line ends, trimmed like other trailing blanks) from a spammer's
    # Outlook Express; its subject has its own test: test_undeclared_8bit_subject_is_decoded_leniently
    Expected(
        "flanker/spam/broken-headers.eml",
        "admin@advertise-bz.cn",
        "Link Directory SUbmitter",
        None,
        "Do you really know what it takes to quickly\ngenerate high-quality traffic to your Web Site?\n\n"
        "Listen up. I must let you in on a few insider *secrets*:\n\nInstead of waiting months",
    ),
    # undeclared Latin-1 in the From display name; a reply whose quoted lines are stripped from the body
    Expected(
        "flanker/from-encoding.eml",
        "ingo@blank.pages.de",
        "Ingo Lütkebohle",
        "running server as root (Was: Re: PUT method)",
        "Marc Slemko wrote:\n\nIsn't that the case for almost every other server",
        full_text_has="> If you have a real uid of root",
    ),
    # a Gmail reply: only the new text is the body, the quoted history stays in full_text
    Expected(
        "talon/standard_replies/gmail.eml",
        "xxx@gmail.com",
        "Megan One",
        "Test",
        "Hello",
        full_text_has="On Mon, Apr 2, 2012 at 6:26 PM, Megan One <xxx@gmail.com> wrote:",
    ),
    # blank lines before the headers (an iPhone relay), UTF-8 Cyrillic, an image attachment
    Expected("flanker/mailgun-pic.eml", "hello@example.com", "Bob Smith", "Mailgun rocks!", "Мейлган! Хахах!"),  # noqa: RUF001
]


@pytest.mark.parametrize("expected", SAMPLE, ids=[e.name for e in SAMPLE])
async def test_real_world_mail_opens_a_ticket_with_its_sender_subject_and_text(
    mail_hub: Hub, expected: Expected
) -> None:
    outcome = await post_corpus_file(mail_hub, expected.name)

    assert (outcome["status"], outcome["ticket"]) == ("processed", "PKR-000001")
    ticket = await api(mail_hub, "/api/v1/tickets/PKR-000001", await mail_hub.agent_token())
    assert ticket["channel"] == "email"
    if expected.subject is not None:
        assert ticket["subject"] == expected.subject
    assert ticket["contact_addresses"] == [f"email:{expected.sender}"]
    inbound = ticket["messages"][0]
    assert inbound["direction"] == "in"
    assert inbound["body"].startswith(expected.body_start), inbound["body"][:200]
    assert "\r" not in inbound["body"]
    assert inbound["email"]["from_name"] == expected.from_name
    assert inbound["email"]["inbound_email_id"] == outcome["id"]
    html = inbound["email"]["html"]
    if expected.html_has is not None:
        assert expected.html_has in html
        assert "<script" not in html.lower()
    if expected.full_text_has is not None:
        assert expected.full_text_has in inbound["email"]["full_text"]
        assert expected.full_text_has not in inbound["body"]


def filename_of(download: httpx.Response) -> str:
    """The name a browser saves a download under (RFC 6266: filename* wins over the ASCII filename)."""
    header = download.headers["content-disposition"]
    extended = re.search(r"filename\*=UTF-8''([^;\s]+)", header, re.IGNORECASE)
    if extended is not None:
        return unquote(extended.group(1))
    plain = re.search(r'filename="([^"]*)"', header)
    assert plain is not None, header
    return plain.group(1)


def stdlib_attachments(raw: bytes) -> list[tuple[str, bytes | Message]]:
    """What the stdlib alone decodes as attached, in order: (content type, bytes), or the enclosed message itself."""
    found: list[tuple[str, bytes | Message]] = []

    def walk(part: Message) -> None:
        ctype = part.get_content_type()
        subparts = [p for p in part.get_payload() if isinstance(p, Message)] if part.is_multipart() else []
        if part.get_content_maintype() == "message":
            found.append((ctype, subparts[0]))
        elif part.is_multipart():
            for sub in subparts:
                walk(sub)
        elif ctype not in ("text/plain", "text/html") or part.get_filename() or part.get_content_disposition():
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found.append((ctype, payload))

    walk(BytesParser(policy=policy.compat32).parsebytes(raw.lstrip(b"\r\n")))
    return found


@pytest.mark.parametrize(
    ("name", "filenames"),
    [
        ("flanker/mailgun-pic.eml", ["mailgun.png"]),
        ("cpython/msg_07.txt", ["dingusfish.gif"]),
        ("cpython/msg_26.txt", ["clock.bmp"]),
        (
            "flanker/torture.eml",
            ["attachment-1.eml", "attachment-2.eml", "attachment-3.au", "attachment-4.bin", "attachment-5.eml"]
            + [f"attachment-{i}.eml" for i in (6, 7, 8)]
            + ["attachment-9.gif", "attachment-10.eml", "attachment-11.eml"],
        ),
    ],
)
async def test_attachments_are_listed_on_the_message_and_download_with_identical_bytes(
    mail_hub: Hub, name: str, filenames: list[str]
) -> None:
    outcome = await post_corpus_file(mail_hub, name)
    token = await mail_hub.agent_token()
    ticket = await api(mail_hub, f"/api/v1/tickets/{outcome['ticket']}", token)

    listed = ticket["messages"][0]["attachments"]
    expected = stdlib_attachments(CORPUS[name].read_bytes())
    assert [a["filename"] for a in listed] == filenames
    assert [a["content_type"] for a in listed] == [ctype for ctype, _ in expected]
    for attachment, (_, content) in zip(listed, expected, strict=True):
        download = await mail_hub.client.get(f"/api/v1/attachments/{attachment['id']}", headers=auth(token))
        assert download.status_code == 200
        assert download.headers["content-disposition"].startswith("attachment; ")
        assert filename_of(download) == attachment["filename"]
        assert download.headers["content-type"] == "application/octet-stream"
        assert len(download.content) == attachment["size"]
        if isinstance(content, bytes):
            assert download.content == content, attachment["filename"]
        else:  # an enclosed message comes back as a message of its own, with its own headers
            enclosed = BytesParser(policy=policy.compat32).parsebytes(download.content)
            assert (enclosed["From"], enclosed["Subject"]) == (content["From"], content["Subject"])


async def test_attachment_with_a_cyrillic_filename_downloads_under_that_name(mail_hub: Hub) -> None:
    outcome = await post_corpus_file(mail_hub, "flanker/russian-attachment-yahoo.eml")
    token = await mail_hub.agent_token()
    ticket = await api(mail_hub, f"/api/v1/tickets/{outcome['ticket']}", token)
    [attachment] = ticket["messages"][0]["attachments"]
    assert attachment["filename"].startswith("Картинка с очень, очень длинным")  # noqa: RUF001 - Cyrillic on purpose

    download = await mail_hub.client.get(f"/api/v1/attachments/{attachment['id']}", headers=auth(token))

    assert download.status_code == 200
    assert filename_of(download) == attachment["filename"]
    [(_, content)] = stdlib_attachments(CORPUS["flanker/russian-attachment-yahoo.eml"].read_bytes())
    assert download.content == content


async def test_undeclared_8bit_subject_is_decoded_leniently(mail_hub: Hub) -> None:
    outcome = await post_corpus_file(mail_hub, "flanker/spam/broken-headers.eml")  # "Exchange" then byte 0x85

    ticket = await api(mail_hub, f"/api/v1/tickets/{outcome['ticket']}", await mail_hub.agent_token())

    assert ticket["subject"] == "Forget Asking For A Link Exchange\u2026"  # cp1252's ellipsis, as From gets
