"""When carehub must stay quiet instead of acknowledging: one test per reason, the real corpus, and our own headers."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path
from typing import Literal

import pytest

from channels.email.loops import auto_reply_suppressed, outgoing_auto_headers
from channels.email.mime import UnparseableEmail, parse_email
from tests.support.corpus import EMAIL, real_world_mail

MESSAGES = EMAIL / "flanker" / "messages"
OURS = frozenset({"carehub.example", "Montreal.example"})


def load(path: Path) -> EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def resident_mail(**headers: str) -> EmailMessage:
    """A plain message from a resident, plus the given headers (underscores in names become dashes)."""
    msg = EmailMessage()
    msg["From"] = "Jeanne Résident <jeanne@example.org>"
    msg["To"] = "help@carehub.example"
    msg["Subject"] = "Pothole on Rue Sainte-Catherine"
    msg["Message-ID"] = "<abc@example.org>"
    for name, value in headers.items():
        del msg[name.replace("_", "-")]
        msg[name.replace("_", "-")] = value
    msg.set_content("There is a pothole.")
    return msg


def test_plain_resident_mail_may_be_acknowledged() -> None:
    assert auto_reply_suppressed(resident_mail(), our_domains=OURS) is None


@pytest.mark.parametrize(
    ("headers", "reason_fragment"),
    [
        ({"Auto_Submitted": "auto-replied"}, "Auto-Submitted"),
        ({"Auto_Submitted": "Auto-Generated; owner-email=x@example.org"}, "Auto-Submitted"),
        ({"Auto_Submitted": "auto-notified"}, "Auto-Submitted"),
        ({"Precedence": "bulk"}, "Precedence"),
        ({"Precedence": "Junk"}, "Precedence"),
        ({"Precedence": "list"}, "Precedence"),
        ({"Precedence": "auto_reply"}, "Precedence"),
        ({"X_Loop": "anything@example.org"}, "X-Loop"),
        ({"X_Auto_Response_Suppress": "All"}, "X-Auto-Response-Suppress"),
        ({"X_Auto_Response_Suppress": "DR, AutoReply"}, "X-Auto-Response-Suppress"),
        ({"X_Auto_Response_Suppress": "oof"}, "X-Auto-Response-Suppress"),
        ({"List_Id": "Residents <residents.lists.example.org>"}, "List-Id"),
        ({"List_Unsubscribe": "<mailto:leave@lists.example.org>"}, "List-Unsubscribe"),
        ({"Return_Path": "<>"}, "null sender"),
        ({"From": "Clerk <clerk@carehub.example>"}, "our domains"),
        ({"From": "clerk@mail.montreal.EXAMPLE"}, "our domains"),
        ({"From": "MAILER-DAEMON@mx.example.org"}, "robot sender"),
        ({"From": "postmaster@example.org"}, "robot sender"),
        ({"From": "noreply@shop.example.org"}, "robot sender"),
        ({"From": "No-Reply <no-reply@shop.example.org>"}, "robot sender"),
        ({"From": "donotreply@shop.example.org"}, "robot sender"),
        ({"From": "do-not-reply@shop.example.org"}, "robot sender"),
        ({"From": "residents-request@lists.example.org"}, "robot sender"),
        (
            {"From": "jeanne@example.org", "Return_Path": "<residents-bounces+jeanne=example.org@lists.example.org>"},
            "robot",
        ),
    ],
    ids=lambda v: str(v) if isinstance(v, str) else "-".join(f"{k}={w}" for k, w in v.items()),
)
def test_automatic_or_robot_mail_is_not_acknowledged(headers: dict[str, str], reason_fragment: str) -> None:
    reason = auto_reply_suppressed(resident_mail(**headers), our_domains=OURS)

    assert reason is not None
    assert reason_fragment in reason


def test_message_without_from_is_not_acknowledged() -> None:
    msg = resident_mail()
    del msg["From"]

    assert auto_reply_suppressed(msg, our_domains=OURS) == "no From address"


def test_delivery_report_content_type_is_not_acknowledged() -> None:
    msg = email.message_from_bytes(
        b"From: someone@example.org\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\n\n"
        b"--B\nContent-Type: text/plain\n\nx\n--B--\n",
        policy=email.policy.default,
    )

    assert auto_reply_suppressed(msg, our_domains=OURS) == "delivery/feedback report (multipart/report)"


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto_Submitted": "no"},
        {"Auto_Submitted": "No; comment"},
        {"Precedence": "first-class"},
        # DR/NDR/RN/NRN suppress delivery and read receipts; an acknowledgement is neither.
        {"X_Auto_Response_Suppress": "DR, NDR, RN, NRN"},
        {"X_Auto_Response_Suppress": "None"},
        {"From": "clerk@notcarehub.example"},
        {"From": "noreen@example.org"},
        {"From": "postmaster-fan@example.org"},
        {"Return_Path": "<jeanne@example.org>"},
    ],
    ids=lambda v: "-".join(f"{k}={w}" for k, w in v.items()),
)
def test_human_mail_with_harmless_headers_may_be_acknowledged(headers: dict[str, str]) -> None:
    assert auto_reply_suppressed(resident_mail(**headers), our_domains=OURS) is None


@pytest.mark.parametrize(
    "path",
    sorted([*(MESSAGES / "bounce").glob("*.eml"), *(MESSAGES / "complaints").glob("*.eml")]),
    ids=lambda p: p.name,
)
def test_corpus_bounces_and_complaints_are_not_acknowledged(path: Path) -> None:
    assert auto_reply_suppressed(load(path), our_domains=OURS) is not None


@pytest.mark.parametrize(
    "path",
    [
        MESSAGES / "text-only.eml",
        MESSAGES / "iphone.eml",
        MESSAGES / "outlook-express.eml",
        *sorted((EMAIL / "talon" / "standard_replies").glob("*.eml")),
    ],
    ids=lambda p: p.relative_to(EMAIL).as_posix(),
)
def test_corpus_human_mail_may_be_acknowledged(path: Path) -> None:
    assert auto_reply_suppressed(load(path), our_domains=OURS) is None


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("apache-message-news-mime.eml", "Precedence: bulk"),
        ("disposition-notification.eml", "delivery/feedback report (multipart/report)"),
    ],
)
def test_corpus_list_mail_and_read_receipts_are_not_acknowledged(name: str, reason: str) -> None:
    assert auto_reply_suppressed(load(MESSAGES / name), our_domains=OURS) == reason


KINDS: list[Literal["auto-replied", "auto-generated"]] = ["auto-replied", "auto-generated"]


@pytest.mark.parametrize("kind", KINDS)
def test_our_automatic_mail_carries_rfc3834_microsoft_and_loop_headers(
    kind: Literal["auto-replied", "auto-generated"],
) -> None:
    assert outgoing_auto_headers(kind, "hub-1@carehub.example") == {
        "Auto-Submitted": kind,
        "X-Auto-Response-Suppress": "All",
        "X-Loop": "hub-1@carehub.example",
    }


@pytest.mark.parametrize("kind", KINDS)
def test_another_carehub_never_acknowledges_our_automatic_mail(kind: Literal["auto-replied", "auto-generated"]) -> None:
    # Two hubs (say, the city's and a borough's) must not acknowledge each other's acknowledgements forever,
    # even when the other hub does not count our domain as its own.
    msg = EmailMessage()
    msg["From"] = "Montreal 311 <help@carehub.example>"
    msg["To"] = "help@other-city.example"
    for name, value in outgoing_auto_headers(kind, "hub-1@carehub.example").items():
        msg[name] = value
    msg.set_content("We received your request.")
    sent = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)

    assert auto_reply_suppressed(sent, our_domains=frozenset({"other-city.example"})) is not None


@pytest.mark.parametrize("token", ["", "hub\r\nBcc: victim@example.org", "hub\n"])
def test_loop_token_that_would_inject_headers_is_refused(token: str) -> None:
    with pytest.raises(ValueError, match="single line"):
        outgoing_auto_headers("auto-replied", token)


@pytest.mark.parametrize("path", list(real_world_mail().values()), ids=list(real_world_mail()))
def test_parsed_email_tree_gives_the_same_answer_as_a_policy_default_parse(path: Path) -> None:
    # parse_email keeps a compat32 tree (raw header strings); the check must read it as policy.default would.
    try:
        parsed = parse_email(path.read_bytes()).message
    except UnparseableEmail:
        return
    domains = frozenset({*OURS, "example.com"})
    assert auto_reply_suppressed(parsed, our_domains=domains) == auto_reply_suppressed(load(path), our_domains=domains)
