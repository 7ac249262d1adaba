"""The bytes channels/email/writer.py writes: they parse back to exactly what the hub gave, stay 7-bit with lines
inside RFC 5322's and RFC 2045's limits, and survive SMTP's dot transparency and mbox "From " quoting."""

from __future__ import annotations

import re
from email import policy
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser

import pytest

from channels.base import ChannelKind, OutboundEmail, OutboundEnvelope, PermanentSendError
from channels.email.console import ConsoleEmailAdapter
from channels.email.smtp import SmtpEmailAdapter
from channels.email.writer import compose_bytes
from tests.fakes.smtp_server import SmtpSink

CITY_ADDRESS = "311@ville.test"
CITY_NAME = "Ville de Québec — Service 311"
RESIDENT = "marie.tremblay@example.org"
SUBJECT = "Re: Numéro de référence PKR-1042 : nid-de-poule devant le 1867, rue Saint-Jean (Québec), côté église"
TEXT = (
    "Bonjour Mme Tremblay,\n\n"
    "Nous avons bien reçu votre signalement du nid-de-poule situé devant le 1867, rue Saint-Jean, et une équipe des "
    "Travaux publics passera d'ici vendredi. Merci de votre patience à l'égard de ces délais.\n"
    "From our side, the request is PKR-1042.\n"
    ".\n"
    ". a line that starts with a dot\n"
    "..two dots\n"
    "trailing spaces   \n"
    "tab\tinside and at the end\t\n"
    "--=_carehub_0123456789abcdef01234567\n"
    "=_carehub_ and =3D and =?utf-8?q?not_a_header?=\n"
    "\n"
    "L'équipe du 311\n"
)
HTML = (
    "<p>Bonjour Mme Tremblay,</p><p>Nous avons bien reçu votre signalement du nid-de-poule situé devant le 1867, "
    "rue Saint-Jean.</p>\n<p>From here: <strong>PKR-1042</strong></p>\n.\n<p>--=_carehub_0123456789abcdef</p>"
)
REFERENCES = tuple(f"<CAF{n}=resident.{n:04d}.Xk3vQ9aZ@mail.example.org>" for n in range(30))


def envelope(**email: object) -> OutboundEnvelope:
    fields: dict[str, object] = {
        "message_id": "<outbox.1.a1b2c3@carehub.ville.test>",
        "subject": SUBJECT,
        "text": TEXT,
        "html": HTML,
        "in_reply_to": REFERENCES[-1],
        "references": REFERENCES,
        "headers": {"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"},
    }
    fields.update(email)
    to = str(fields.pop("to", RESIDENT))
    out = OutboundEmail(**fields)  # type: ignore[arg-type]
    return OutboundEnvelope(outbox_id=1, channel=ChannelKind.EMAIL, to=to, body=out.text, email=out)


def compose(env: OutboundEnvelope, from_name: str = CITY_NAME) -> bytes:
    return compose_bytes(env, from_address=CITY_ADDRESS, from_name=from_name)


def parse(data: bytes) -> EmailMessage:
    """Parsed with line endings made local, as a mail store keeps them, so bodies read back as they were written."""
    msg = BytesParser(policy=policy.default).parsebytes(data.replace(b"\r\n", b"\n"))
    assert isinstance(msg, EmailMessage)
    assert msg.defects == []
    return msg


def header_block(data: bytes) -> list[bytes]:
    return data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def parts(msg: EmailMessage) -> tuple[EmailMessage, EmailMessage]:
    plain, html = msg.iter_parts()
    assert isinstance(plain, EmailMessage)
    assert isinstance(html, EmailMessage)
    return plain, html


def test_composed_message_parses_back_to_exactly_the_subject_sender_and_both_bodies() -> None:
    msg = parse(compose(envelope()))

    assert msg["Subject"] == SUBJECT
    assert msg["From"].addresses == (Address(display_name=CITY_NAME, addr_spec=CITY_ADDRESS),)
    assert msg["To"] == RESIDENT
    assert msg["Message-ID"] == "<outbox.1.a1b2c3@carehub.ville.test>"
    assert msg["In-Reply-To"] == REFERENCES[-1]
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["MIME-Version"] == "1.0"
    assert msg["Date"].datetime.utcoffset().total_seconds() == 0
    assert msg.get_content_type() == "multipart/alternative"
    plain, html = parts(msg)
    assert (plain.get_content_type(), plain.get_content_charset()) == ("text/plain", "utf-8")
    assert (html.get_content_type(), html.get_content_charset()) == ("text/html", "utf-8")
    assert plain.get_content() == TEXT
    assert html.get_content() == HTML + "\n"  # a part's content ends with a line break, as with the stdlib


def test_composed_message_is_7bit_crlf_with_every_line_within_its_limit() -> None:
    data = compose(envelope())

    assert data.isascii()
    assert data.endswith(b"\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    head, body = data.split(b"\r\n\r\n", 1)
    assert max(len(line) for line in head.split(b"\r\n")) <= 78
    assert max(len(line) for line in body.split(b"\r\n")) <= 76  # quoted-printable's limit


def test_thirty_references_are_folded_at_spaces_and_read_back_in_order() -> None:
    data = compose(envelope())

    lines = header_block(data)
    start = next(i for i, line in enumerate(lines) if line.startswith(b"References:"))
    continuation = [line for line in lines[start + 1 :] if line.startswith(b" ")][: len(REFERENCES)]
    assert len(continuation) >= 10  # folded over many lines, not written as one
    assert all(len(line) <= 78 for line in lines)
    assert parse(data)["References"].split() == list(REFERENCES)


def test_a_long_ascii_subject_is_folded_not_encoded_and_keeps_its_spacing() -> None:
    subject = "Re: " + " ".join(f"word{n}" for n in range(60)) + "  double  spaced"

    data = compose(envelope(subject=subject))

    assert b"=?" not in b"\r\n".join(line for line in header_block(data) if not line.startswith(b"From:"))
    assert parse(data)["Subject"] == subject
    assert all(len(line) <= 78 for line in header_block(data))


@pytest.mark.parametrize(
    "subject",
    [
        pytest.param("é" * 200, id="long-non-ascii"),
        pytest.param("x" * 1200, id="one-word-past-998"),
        pytest.param("Votre demande =?utf-8?q?ceci_n_est_pas_encod=C3=A9?= PKR-1042", id="looks-encoded"),
        pytest.param("Québec 🏙️ 311 — réponse", id="four-byte-characters"),
    ],
)
def test_subjects_that_cannot_go_as_plain_ascii_are_encoded_and_read_back_exactly(subject: str) -> None:
    data = compose(envelope(subject=subject))

    assert parse(data)["Subject"] == subject
    assert all(len(line) <= 78 for line in header_block(data))


def test_body_lines_past_76_columns_starting_with_from_or_a_dot_read_back_exactly() -> None:
    text = "From " + "long " * 40 + "end\n" + "x" * 200 + "\nFrom the city\n.\n..\n.hidden\nFrom\n"

    data = compose(envelope(text=text, html=None))

    body = data.split(b"\r\n\r\n", 1)[1]
    assert not any(line.startswith(b"From ") for line in body.split(b"\r\n"))  # nothing for an mbox to quote
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    assert parse(data).get_content() == text


def test_text_only_message_is_one_quoted_printable_part() -> None:
    data = compose(envelope(html=None))

    msg = parse(data)
    assert msg.get_content_type() == "text/plain"
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"
    assert msg.get_content() == TEXT
    assert b"boundary" not in data


def test_body_text_that_looks_like_the_boundary_does_not_split_the_message() -> None:
    msg = parse(compose(envelope()))

    boundary = msg.get_boundary()
    assert boundary is not None
    assert re.fullmatch(r"=_carehub_[0-9a-f]{24}", boundary)
    plain, html = parts(msg)
    assert "--=_carehub_0123456789abcdef01234567" in plain.get_content()
    assert "--=_carehub_0123456789abcdef" in html.get_content()


def test_each_message_gets_its_own_boundary() -> None:
    assert parse(compose(envelope())).get_boundary() != parse(compose(envelope())).get_boundary()


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_any_newline_convention_in_the_body_reads_back_as_lines(newline: str) -> None:
    text = "one\ntwo\n\nthree\n"

    msg = parse(compose(envelope(text=text.replace("\n", newline), html=None)))

    assert msg.get_content() == text


def test_a_body_without_a_final_newline_gets_one() -> None:
    assert parse(compose(envelope(text="Bonjour", html=None))).get_content() == "Bonjour\n"


def test_a_non_ascii_extra_header_value_is_encoded_and_reads_back() -> None:
    msg = parse(compose(envelope(headers={"X-Carehub-Service": "Travaux publics — Québec"})))

    assert msg["X-Carehub-Service"] == "Travaux publics — Québec"


@pytest.mark.parametrize("name", [CITY_NAME, "City of Toronto, 311", 'The "311" line', "Ville"])
def test_the_sender_name_reads_back_however_punctuated(name: str) -> None:
    data = compose(envelope(), from_name=name)

    assert parse(data)["From"].addresses == (Address(display_name=name, addr_spec=CITY_ADDRESS),)
    assert all(len(line) <= 78 for line in header_block(data))


@pytest.mark.parametrize("name", ["Ville de Québec — Service 311 " * 4, "é" * 100])
def test_a_long_sender_name_is_split_over_encoded_words_an_rfc_2047_reader_joins(name: str) -> None:
    data = compose(envelope(), from_name=name)

    # Python's address parser puts a space between adjacent encoded words in a display name (RFC 2047 says to drop
    # the white space between them), so read the header as RFC 2047 does.
    raw = BytesHeaderParser(policy=policy.compat32).parsebytes(data)["From"]
    assert str(make_header(decode_header(raw))) == f"{name} <{CITY_ADDRESS}>"
    assert all(len(line) <= 78 for line in header_block(data))


def test_a_non_ascii_mailbox_goes_in_the_to_header_as_utf8() -> None:
    data = compose(envelope(to="josée@québec.example"))

    assert b"To: jos\xc3\xa9e@qu\xc3\xa9bec.example\r\n" in data
    assert data.split(b"\r\n\r\n", 1)[1].isascii()


async def test_a_sender_name_with_a_line_break_is_refused_by_the_console_adapter_too() -> None:
    adapter = ConsoleEmailAdapter(from_address=CITY_ADDRESS, from_name="311\r\nBcc: everyone@example.org")
    with pytest.raises(PermanentSendError) as caught:
        await adapter.send(envelope())
    assert caught.value.code == "header-injection"


# ---------------------------------------------------------------- over SMTP


async def test_dot_lines_and_from_lines_arrive_intact_over_smtp() -> None:
    text = ".\n..\n.leading dot\nFrom the city\n" + "." * 120 + "\n"
    async with SmtpSink() as sink:
        adapter = SmtpEmailAdapter(
            host=sink.host, port=sink.port, from_address=CITY_ADDRESS, from_name=CITY_NAME, tls="none"
        )
        try:
            await adapter.send(envelope(text=text))
        finally:
            await adapter.aclose()
        (received,) = await sink.wait_for(1)

    plain, _ = parts(received.message)
    assert plain.get_content() == text
    assert received.content.isascii()


async def test_a_non_ascii_recipient_on_a_server_without_smtputf8_is_permanent_and_nothing_is_sent() -> None:
    async with SmtpSink() as sink:  # aiosmtpd offers no SMTPUTF8 unless asked to
        adapter = SmtpEmailAdapter(
            host=sink.host, port=sink.port, from_address=CITY_ADDRESS, from_name=CITY_NAME, tls="none"
        )
        try:
            with pytest.raises(PermanentSendError) as caught:
                await adapter.send(envelope(to="josée@québec.example"))
        finally:
            await adapter.aclose()
        assert caught.value.code == "smtp-unsupported"
        assert "SMTPUTF8" in caught.value.message
        assert sink.messages == []
