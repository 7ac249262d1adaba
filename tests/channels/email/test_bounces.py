"""Recognising bounces and complaints: every real bounce in the corpus, constructed edge cases, no false positives."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path
from typing import NamedTuple

import pytest

from channels.email.bounces import Bounce, BouncedRecipient, is_complaint, parse_bounce, reported_message_id
from channels.email.mime import parse_email
from tests.support.corpus import EMAIL

MESSAGES = EMAIL / "flanker" / "messages"
BOUNCES = MESSAGES / "bounce"
COMPLAINTS = MESSAGES / "complaints"
NON_BOUNCES = sorted(
    p for p in [*MESSAGES.rglob("*.eml"), *(EMAIL / "talon").rglob("*.eml")] if p.parent not in (BOUNCES, COMPLAINTS)
)


def load(path: Path) -> EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def parse(raw: str) -> EmailMessage:
    return email.message_from_bytes(raw.encode(), policy=email.policy.default)


class Expected(NamedTuple):
    address: str
    status: str | None
    action: str
    permanent: bool
    original_message_id: str | None


# Read off each file by hand; the ids are those of the returned (our) message, never the bounce's own.
EXPECTED = {
    "mailbox-full.eml": Expected("user@aol.com", "5.2.2", "failed", True, "<4E326A95.3010907@example.com>"),
    "zed.eml": Expected(
        "asdfasdfasdfasdfasdfasdfewrqertrtyrthsfgdfgadfqeadvxzvz@gmail.com",
        "5.1.1",
        "failed",
        True,
        "<20090708054735.GC7578@example.com>",
    ),
    "office365.eml": Expected(
        "noname@example.com", "5.1.10", "failed", True, "<20171013111011.20866.254C2F3A4D7AA526@ninomail.com>"
    ),
    "no-mx.eml": Expected("user@example.com", "4.4.4", "delayed", False, "<19E44CA63F984902B7D654F8FF40F89D@bo>"),
    # Action says failed, but the 4.x.x status is what decides: the address itself may still work.
    "delayed.eml": Expected("foo@example.com", "4.0.0", "failed", False, None),
    "delayed-broken.eml": Expected("demo@example.com", "4.2.2", "failed", False, None),
    "gmail-invalid-address.eml": Expected(
        "awfawfawfawfawfaw@someserverhere.com",
        "5.1.0",
        "failed",
        True,
        "<CAKsfaBUUGqVZiaMrmH3TRPfq1odQPtM7Ey5YW1SgyJJRHtAjgw@mail.gmail.com>",
    ),
    # No status code anywhere; "failed permanently" / "Delivery failed 10 attempts" mean the MTA gave up.
    "gmail-no-dns.eml": Expected("user@example.comm", None, "failed", True, None),
    "broken-mime.eml": Expected("info@example.net", None, "failed", True, None),
}


def test_every_corpus_bounce_has_an_expectation() -> None:
    assert {p.name for p in BOUNCES.glob("*.eml")} == set(EXPECTED)


@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED.items()))
def test_corpus_bounce_reports_recipient_status_and_original_message(name: str, expected: Expected) -> None:
    bounce = parse_bounce(load(BOUNCES / name))

    assert bounce is not None
    assert len(bounce.recipients) == 1
    recipient = bounce.recipients[0]
    assert (recipient.address, recipient.status, recipient.action, recipient.permanent) == expected[:4]
    assert bounce.is_permanent is expected.permanent
    assert bounce.original_message_id == expected.original_message_id


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("mailbox-full.eml", "552 5.2.2 E4.12 user MAILBOX FULL"),
        ("zed.eml", "The email account that you tried to reach does not exist"),
        ("office365.eml", "RESOLVER.ADR.RecipientNotFound"),
        ("no-mx.eml", "no MX or A for domain"),
        ("gmail-invalid-address.eml", "550 5.1.0 Recipient rejected"),
    ],
)
def test_corpus_bounce_keeps_the_remote_servers_diagnostic(name: str, fragment: str) -> None:
    bounce = parse_bounce(load(BOUNCES / name))

    assert bounce is not None
    assert fragment in (bounce.recipients[0].diagnostic or "")


def test_text_bounce_takes_the_original_id_from_the_quoted_message_not_the_bounce_itself() -> None:
    msg = load(BOUNCES / "gmail-invalid-address.eml")
    bounce = parse_bounce(msg)

    assert bounce is not None
    assert bounce.original_message_id != msg["Message-ID"]


@pytest.mark.parametrize("path", NON_BOUNCES, ids=lambda p: p.relative_to(EMAIL).as_posix())
def test_non_bounce_corpus_message_is_not_a_bounce(path: Path) -> None:
    assert parse_bounce(load(path)) is None


@pytest.mark.parametrize("path", NON_BOUNCES, ids=lambda p: p.relative_to(EMAIL).as_posix())
def test_non_complaint_corpus_message_is_not_a_complaint(path: Path) -> None:
    assert not is_complaint(load(path))


def test_non_bounce_corpus_covers_human_mail_and_a_read_receipt() -> None:
    # Guards the two parametrised tests above against silently running over nothing.
    names = {p.name for p in NON_BOUNCES}
    assert {"text-only.eml", "iphone.eml", "outlook-express.eml", "disposition-notification.eml"} <= names
    assert len(NON_BOUNCES) >= 50


@pytest.mark.parametrize("name", ["aol.eml", "yahoo.eml"])
def test_arf_feedback_report_is_a_complaint_and_not_a_bounce(name: str) -> None:
    msg = load(COMPLAINTS / name)

    assert is_complaint(msg)
    assert parse_bounce(msg) is None


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bounce_is_not_a_complaint(name: str) -> None:
    assert not is_complaint(load(BOUNCES / name))


DSN_HEAD = """\
From: Mail Delivery System <MAILER-DAEMON@mx.example.org>
To: help@carehub.example
Subject: Delivery Status Notification
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

See the report.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

"""


def test_dsn_with_mixed_recipients_reports_each_and_is_permanent_if_any_is() -> None:
    msg = parse(
        DSN_HEAD
        + """\
Final-Recipient: rfc822; gone@example.org
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 No such user

Final-Recipient: rfc822; slow@example.org
Action: delayed
Status: 4.2.2

--B--
"""
    )

    bounce = parse_bounce(msg)

    assert bounce == Bounce(
        (
            BouncedRecipient("gone@example.org", "5.1.1", "failed", "550 5.1.1 No such user", permanent=True),
            BouncedRecipient("slow@example.org", "4.2.2", "delayed", None, permanent=False),
        ),
        original_message_id=None,
    )
    assert bounce.is_permanent


def test_dsn_reporting_only_successful_delivery_is_not_a_bounce() -> None:
    msg = parse(DSN_HEAD + "Final-Recipient: rfc822; ok@example.org\nAction: delivered\nStatus: 2.0.0\n\n--B--\n")

    assert parse_bounce(msg) is None


def test_dsn_without_returned_message_falls_back_to_in_reply_to() -> None:
    raw = DSN_HEAD + "Final-Recipient: rfc822; gone@example.org\nAction: failed\nStatus: 5.1.1\n\n--B--\n"
    msg = parse("In-Reply-To: <ticket-42@carehub.example>\n" + raw)

    bounce = parse_bounce(msg)

    assert bounce is not None
    assert bounce.original_message_id == "<ticket-42@carehub.example>"


def test_dsn_without_returned_message_falls_back_to_last_reference() -> None:
    raw = DSN_HEAD + "Final-Recipient: rfc822; gone@example.org\nAction: failed\nStatus: 5.1.1\n\n--B--\n"
    msg = parse("References: <thread-1@carehub.example> <ticket-43@carehub.example>\n" + raw)

    bounce = parse_bounce(msg)

    assert bounce is not None
    assert bounce.original_message_id == "<ticket-43@carehub.example>"


def test_dsn_without_status_uses_the_smtp_code_to_decide_permanence() -> None:
    msg = parse(
        DSN_HEAD + "Final-Recipient: rfc822; busy@example.org\nAction: failed\n"
        "Diagnostic-Code: smtp; 452 mailbox busy\n\n--B--\n"
    )

    bounce = parse_bounce(msg)

    assert bounce is not None
    assert not bounce.is_permanent


EXIM_BOUNCE = """\
Return-Path: <>
From: Mail Delivery System <Mailer-Daemon@mx.example.org>
To: help@carehub.example
Subject: {subject}
X-Failed-Recipients: resident@example.org
Content-Type: text/plain

This message was created automatically by mail delivery software.
A message that you sent could not be delivered to one or more of its
recipients. The mail server at 10.2.5.1 said:

  resident@example.org
    {line}

------ This is a copy of the message, including all the headers. ------

Message-ID: <ticket-7@carehub.example>
From: help@carehub.example
To: resident@example.org, other@example.org
"""


def test_exim_style_text_bounce_uses_failed_recipients_header_and_body_status() -> None:
    msg = parse(
        EXIM_BOUNCE.format(subject="Mail delivery failed: returning message to sender", line="550 5.1.1 unknown")
    )

    bounce = parse_bounce(msg)

    assert bounce == Bounce(
        (BouncedRecipient("resident@example.org", "5.1.1", "failed", "550 5.1.1 unknown", permanent=True),),
        original_message_id="<ticket-7@carehub.example>",
    )


def test_text_bounce_does_not_read_a_status_out_of_an_ip_address() -> None:
    # "10.2.5.1" in the prose must not become status 2.5.1; the only code present is the 4xx one.
    msg = parse(EXIM_BOUNCE.format(subject="Mail delivery failed", line="421 try again later"))

    bounce = parse_bounce(msg)

    assert bounce is not None
    assert bounce.recipients[0].status is None
    assert not bounce.is_permanent


def test_text_bounce_with_delay_subject_is_temporary() -> None:
    msg = parse(EXIM_BOUNCE.format(subject="Warning: message delayed", line="Connection timed out"))

    bounce = parse_bounce(msg)

    assert bounce is not None
    assert bounce.recipients[0].action == "delayed"
    assert not bounce.is_permanent


def test_person_forwarding_a_bounce_is_not_a_bounce() -> None:
    raw = EXIM_BOUNCE.format(subject="Fwd: Mail delivery failed", line="550 5.1.1 unknown")
    raw = raw.replace("Return-Path: <>\n", "").replace("Mail Delivery System <Mailer-Daemon@mx.example.org>", "a@b.org")

    assert parse_bounce(parse(raw)) is None


def test_text_bounce_in_an_unknown_charset_does_not_crash() -> None:
    raw = EXIM_BOUNCE.format(subject="failure notice", line="550 5.1.1 unknown")
    msg = parse(raw.replace("Content-Type: text/plain", "Content-Type: text/plain; charset=x-no-such-charset"))

    bounce = parse_bounce(msg)

    assert bounce is not None
    assert bounce.recipients[0].status == "5.1.1"


def test_bounce_with_no_recipients_is_not_permanent() -> None:
    assert not Bounce((), None).is_permanent


@pytest.mark.parametrize(
    "path", sorted([*BOUNCES.glob("*.eml"), *COMPLAINTS.glob("*.eml"), *NON_BOUNCES]), ids=lambda p: p.name
)
def test_parsed_email_tree_gives_the_same_answers_as_a_policy_default_parse(path: Path) -> None:
    # parse_email keeps a compat32 tree (raw header strings); the checks must read it as policy.default would.
    parsed, default = parse_email(path.read_bytes()).message, load(path)
    assert parse_bounce(parsed) == parse_bounce(default)
    assert is_complaint(parsed) == is_complaint(default)
    assert reported_message_id(parsed) == reported_message_id(default)
