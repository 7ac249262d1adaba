"""Sending through the real aiosmtplib client to a real aiosmtpd server on a local socket: the message arrives
as composed, connections are pooled and replaced when they die, and each failure becomes the right error."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from email.headerregistry import Address
from email.message import EmailMessage
from importlib import resources

import pytest

from channels.base import (
    AmbiguousSendError,
    ChannelKind,
    ChannelSender,
    OutboundEmail,
    OutboundEnvelope,
    PermanentSendError,
    TransientSendError,
)
from channels.email.console import ConsoleEmailAdapter
from channels.email.smtp import SmtpEmailAdapter
from tests.fakes.smtp_server import SmtpSink

CITY_ADDRESS = "311@ville.test"
CITY_NAME = "Ville de Québec — Service 311"
RESIDENT = "marie.tremblay@example.org"
SUBJECT = "Numéro de référence PKR-1042 : nid-de-poule, rue Saint-Jean"
TEXT = "Bonjour,\n\nNuméro de référence : PKR-1042.\nNous avons bien reçu votre demande.\n"
HTML = "<p>Bonjour,</p><p>Numéro de référence : <strong>PKR-1042</strong>.</p>"
AUTO_HEADERS = {"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"}

MakeAdapter = Callable[..., SmtpEmailAdapter]


def envelope(
    n: int = 1,
    *,
    to: str = RESIDENT,
    subject: str = SUBJECT,
    html: str | None = HTML,
    in_reply_to: str | None = "<CAF=resident.1@mail.example.org>",
    references: tuple[str, ...] = ("<CAF=resident.0@mail.example.org>", "<CAF=resident.1@mail.example.org>"),
    headers: dict[str, str] | None = None,
    message_id: str | None = None,
) -> OutboundEnvelope:
    email = OutboundEmail(
        message_id=message_id or f"<outbox.{n}.a1b2c3@carehub.ville.test>",
        subject=subject,
        text=TEXT,
        html=html,
        in_reply_to=in_reply_to,
        references=references,
        headers=AUTO_HEADERS if headers is None else headers,
    )
    return OutboundEnvelope(outbox_id=n, channel=ChannelKind.EMAIL, to=to, body=TEXT, email=email)


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    async with SmtpSink() as server:
        yield server


@pytest.fixture
async def make_adapter(sink: SmtpSink) -> AsyncIterator[MakeAdapter]:
    """Adapters pointed at the sink (plain SMTP, no TLS); all closed at the end of the test."""
    made: list[SmtpEmailAdapter] = []

    def make(**overrides: object) -> SmtpEmailAdapter:
        options: dict[str, object] = {
            "host": sink.host,
            "port": sink.port,
            "from_address": CITY_ADDRESS,
            "from_name": CITY_NAME,
            "tls": "none",
            "timeout": 5.0,
        }
        options.update(overrides)
        adapter = SmtpEmailAdapter(**options)  # type: ignore[arg-type]
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        await adapter.aclose()


@pytest.fixture
def adapter(make_adapter: MakeAdapter) -> SmtpEmailAdapter:
    return make_adapter()


# ---------------------------------------------------------------- the message


async def test_message_arrives_with_its_headers_and_both_parts_decoded(
    adapter: SmtpEmailAdapter, sink: SmtpSink
) -> None:
    sender: ChannelSender = adapter
    env = envelope()
    result = await sender.send(env)

    assert env.email is not None
    assert result.provider_id == env.email.message_id
    (received,) = await sink.wait_for(1)
    assert received.mail_from == CITY_ADDRESS
    assert received.rcpt_tos == (RESIDENT,)
    msg = received.message
    assert msg["From"].addresses == (Address(display_name=CITY_NAME, addr_spec=CITY_ADDRESS),)
    assert msg["To"] == RESIDENT
    assert msg["Subject"] == SUBJECT
    assert msg["Message-ID"] == "<outbox.1.a1b2c3@carehub.ville.test>"
    assert msg["In-Reply-To"] == "<CAF=resident.1@mail.example.org>"
    # The stdlib folds a header that just overflows 78 columns right after its colon: legal folding white space,
    # so compare the ids, not the spacing.
    assert msg["References"].split() == ["<CAF=resident.0@mail.example.org>", "<CAF=resident.1@mail.example.org>"]
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["MIME-Version"] == "1.0"
    assert msg["Date"].datetime.tzinfo is not None
    assert msg.get_content_type() == "multipart/alternative"
    plain, html = msg.iter_parts()
    assert isinstance(plain, EmailMessage)
    assert isinstance(html, EmailMessage)
    assert (plain.get_content_type(), plain.get_content_charset()) == ("text/plain", "utf-8")
    assert plain.get_content() == TEXT
    assert (html.get_content_type(), html.get_content_charset()) == ("text/html", "utf-8")
    assert html.get_content().rstrip("\n") == HTML
    # Only the top level says MIME-Version; and every line of what went over the wire ends in CRLF.
    assert "MIME-Version" not in plain
    assert "MIME-Version" not in html
    assert b"\n" not in received.content.replace(b"\r\n", b"")
    assert msg.defects == []


async def test_text_only_message_is_a_single_text_part_without_threading_headers(
    adapter: SmtpEmailAdapter, sink: SmtpSink
) -> None:
    await adapter.send(envelope(html=None, in_reply_to=None, references=(), headers={}))

    (received,) = await sink.wait_for(1)
    msg = received.message
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content() == TEXT
    for absent in ("In-Reply-To", "References", "Auto-Submitted"):
        assert absent not in msg


@pytest.mark.parametrize(
    "env",
    [
        pytest.param(envelope(subject="Hello\r\nBcc: everyone@example.org"), id="subject-crlf"),
        pytest.param(envelope(subject="Hello\nBcc: everyone@example.org"), id="subject-lf"),
        pytest.param(envelope(message_id="<a@b>\r\nBcc: everyone@example.org"), id="message-id"),
        pytest.param(envelope(in_reply_to="<a@b>\rX-Evil: 1"), id="in-reply-to-cr"),
        pytest.param(envelope(references=("<a@b>\nX-Evil: 1",)), id="references"),
        pytest.param(envelope(headers={"X-Loop": "311@ville.test\r\nBcc: everyone@example.org"}), id="extra-value"),
        pytest.param(envelope(headers={"X-Loop\r\nBcc": "everyone@example.org"}), id="extra-name"),
        pytest.param(envelope(to="marie@example.org\r\nBcc: everyone@example.org"), id="to"),
    ],
)
async def test_header_injection_is_refused_before_anything_is_sent(
    adapter: SmtpEmailAdapter, sink: SmtpSink, env: OutboundEnvelope
) -> None:
    with pytest.raises(PermanentSendError) as caught:
        await adapter.send(env)
    assert caught.value.code == "header-injection"
    assert sink.connections == 0


async def test_an_extra_header_may_not_replace_one_the_adapter_sets(adapter: SmtpEmailAdapter, sink: SmtpSink) -> None:
    with pytest.raises(PermanentSendError, match="Subject"):
        await adapter.send(envelope(headers={"Subject": "something else"}))
    assert sink.connections == 0


async def test_an_envelope_without_its_email_part_is_refused(adapter: SmtpEmailAdapter) -> None:
    env = OutboundEnvelope(outbox_id=1, channel=ChannelKind.EMAIL, to=RESIDENT, body=TEXT)
    with pytest.raises(PermanentSendError) as caught:
        await adapter.send(env)
    assert caught.value.code == "no-email"


async def test_an_address_that_cannot_go_on_the_rcpt_line_is_refused(adapter: SmtpEmailAdapter, sink: SmtpSink) -> None:
    with pytest.raises(PermanentSendError) as caught:
        await adapter.send(envelope(to="marie tremblay@example.org"))
    assert caught.value.code == "invalid-address"
    assert sink.connections == 0


# ---------------------------------------------------------------- the pool


async def test_sequential_sends_share_one_connection(adapter: SmtpEmailAdapter, sink: SmtpSink) -> None:
    for n in range(20):
        await adapter.send(envelope(n))

    received = await sink.wait_for(20)
    assert [m.message["Message-ID"] for m in received] == [f"<outbox.{n}.a1b2c3@carehub.ville.test>" for n in range(20)]
    assert sink.connections == 1


async def test_concurrent_sends_open_at_most_pool_size_connections(make_adapter: MakeAdapter, sink: SmtpSink) -> None:
    adapter = make_adapter(pool_size=3)

    results = await asyncio.gather(*(adapter.send(envelope(n)) for n in range(12)))

    assert len({r.provider_id for r in results}) == 12
    assert len(await sink.wait_for(12)) == 12
    assert sink.connections == 3


async def test_a_server_restart_between_sends_still_delivers(adapter: SmtpEmailAdapter, sink: SmtpSink) -> None:
    await adapter.send(envelope(1))
    await sink.stop()  # closes the pooled connection from the server side
    await sink.start()

    await adapter.send(envelope(2))

    assert len(await sink.wait_for(2)) == 2
    assert sink.connections == 2


async def test_a_pooled_connection_that_dies_on_its_first_command_is_replaced_transparently(
    adapter: SmtpEmailAdapter, sink: SmtpSink
) -> None:
    await adapter.send(envelope(1))
    sink.drop_next("MAIL")  # the server hangs up on the reused connection, as after an unnoticed restart

    await adapter.send(envelope(2))

    assert len(await sink.wait_for(2)) == 2
    assert sink.connections == 2


async def test_a_failed_send_discards_its_connection(adapter: SmtpEmailAdapter, sink: SmtpSink) -> None:
    await adapter.send(envelope(1))
    sink.fail_next("RCPT", "550 5.1.1 No such user")
    with pytest.raises(PermanentSendError):
        await adapter.send(envelope(2))

    await adapter.send(envelope(3))

    assert len(await sink.wait_for(2)) == 2
    assert sink.connections == 2


async def test_aclose_quits_the_pooled_connections(make_adapter: MakeAdapter, sink: SmtpSink) -> None:
    adapter = make_adapter(pool_size=2)
    await asyncio.gather(adapter.send(envelope(1)), adapter.send(envelope(2)))
    assert sink.open_connections == 2

    await adapter.aclose()

    await sink.wait_for_connections(0)


# ---------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("stage", "reply", "code", "text"),
    [
        ("MAIL", "421 4.3.2 Service not available", "421", "4.3.2 Service not available"),
        ("RCPT", "451 4.3.0 Try later", "451", "4.3.0 Try later"),
        ("DATA", "451 4.3.0 Try later", "451", "4.3.0 Try later"),
        ("DATA", "421 4.3.2 Service not available", "421", "4.3.2 Service not available"),
    ],
)
async def test_a_4xx_reply_is_transient_with_the_code_and_the_servers_text(
    adapter: SmtpEmailAdapter, sink: SmtpSink, stage: str, reply: str, code: str, text: str
) -> None:
    sink.fail_next(stage, reply)  # type: ignore[arg-type]
    with pytest.raises(TransientSendError) as caught:
        await adapter.send(envelope())
    assert caught.value.code == code
    assert text in caught.value.message
    assert stage in caught.value.message
    assert sink.messages == []

    await adapter.send(envelope(2))  # and the next one goes through
    assert len(await sink.wait_for(1)) == 1


@pytest.mark.parametrize(
    ("stage", "reply", "code", "text"),
    [
        ("RCPT", "550 5.1.1 No such user", "550", "5.1.1 No such user"),
        ("MAIL", "553 5.7.1 Sender address rejected", "553", "5.7.1 Sender address rejected"),
        ("DATA", "554 5.7.1 Message rejected as spam", "554", "5.7.1 Message rejected as spam"),
    ],
)
async def test_a_5xx_reply_is_permanent_with_the_servers_text_recorded(
    adapter: SmtpEmailAdapter, sink: SmtpSink, stage: str, reply: str, code: str, text: str
) -> None:
    sink.fail_next(stage, reply)  # type: ignore[arg-type]
    with pytest.raises(PermanentSendError) as caught:
        await adapter.send(envelope())
    assert caught.value.code == code
    assert text in caught.value.message
    assert not caught.value.opted_out
    assert sink.messages == []


async def test_a_server_that_is_down_is_transient_and_delivery_resumes_when_it_is_back(
    adapter: SmtpEmailAdapter, sink: SmtpSink
) -> None:
    await sink.stop()
    with pytest.raises(TransientSendError) as caught:
        await adapter.send(envelope(1))
    assert caught.value.code == "smtp-connect"
    assert str(sink.port) in caught.value.message

    await sink.start()
    await adapter.send(envelope(2))
    assert len(await sink.wait_for(1)) == 1


async def test_a_fresh_connection_dropped_before_data_is_transient(adapter: SmtpEmailAdapter, sink: SmtpSink) -> None:
    sink.drop_next("RCPT")
    with pytest.raises(TransientSendError) as caught:
        await adapter.send(envelope())
    assert caught.value.code == "smtp-connect"
    assert sink.connections == 1  # only a reused connection gets a second chance


async def test_a_connection_dropped_after_the_content_was_sent_is_ambiguous(
    adapter: SmtpEmailAdapter, sink: SmtpSink
) -> None:
    sink.drop_next("DATA")
    with pytest.raises(AmbiguousSendError) as caught:
        await adapter.send(envelope())
    assert caught.value.code == "smtp-data"
    assert len(sink.messages) == 1  # the server did take it: a blind retry would send it twice
    assert sink.connections == 1


async def test_no_answer_after_the_content_is_ambiguous(make_adapter: MakeAdapter, sink: SmtpSink) -> None:
    adapter = make_adapter(timeout=0.3)
    sink.hang_next("DATA")
    with pytest.raises(AmbiguousSendError):
        await adapter.send(envelope())
    await sink.wait_for_connections(0)  # the client gave up and hung up


async def test_no_answer_before_data_is_transient(make_adapter: MakeAdapter, sink: SmtpSink) -> None:
    adapter = make_adapter(timeout=0.3)
    sink.hang_next("MAIL")
    with pytest.raises(TransientSendError) as caught:
        await adapter.send(envelope())
    assert caught.value.code == "smtp-timeout"
    await sink.wait_for_connections(0)


async def test_starttls_against_a_server_without_it_is_transient(make_adapter: MakeAdapter, sink: SmtpSink) -> None:
    adapter = make_adapter(tls="starttls")
    with pytest.raises(TransientSendError) as caught:
        await adapter.send(envelope())
    assert "STARTTLS" in caught.value.message
    assert sink.messages == []


@pytest.fixture(scope="session")
def server_tls_context() -> ssl.SSLContext:
    """A server context with the self-signed certificate aiosmtpd ships for its own tests (CN "aes", so only a
    client that skips verification accepts it)."""
    certs = resources.files("aiosmtpd") / "tests" / "certs"
    if not certs.joinpath("server.crt").is_file():
        pytest.skip("aiosmtpd's test certificate is not installed")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certs / "server.crt"), str(certs / "server.key"))
    return context


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
async def test_tls_modes_deliver_over_an_encrypted_session(server_tls_context: ssl.SSLContext, tls: str) -> None:
    async with SmtpSink(tls=tls, tls_context=server_tls_context) as sink:  # type: ignore[arg-type]
        adapter = SmtpEmailAdapter(
            host=sink.host,
            port=sink.port,
            from_address=CITY_ADDRESS,
            from_name=CITY_NAME,
            tls=tls,  # type: ignore[arg-type]
            validate_certs=False,
        )
        try:
            await adapter.send(envelope(1))
            await adapter.send(envelope(2))
        finally:
            await adapter.aclose()
        assert len(await sink.wait_for(2)) == 2
        assert sink.connections == 1


async def test_an_unverifiable_certificate_is_transient(server_tls_context: ssl.SSLContext) -> None:
    async with SmtpSink(tls="implicit", tls_context=server_tls_context) as sink:
        adapter = SmtpEmailAdapter(
            host=sink.host, port=sink.port, from_address=CITY_ADDRESS, from_name=CITY_NAME, tls="implicit"
        )
        with pytest.raises(TransientSendError) as caught:
            await adapter.send(envelope())
        await adapter.aclose()
        assert caught.value.code == "smtp-connect"
        assert "CERTIFICATE_VERIFY_FAILED" in caught.value.message
        assert sink.messages == []


def test_bad_settings_are_refused_at_construction() -> None:
    common: dict[str, object] = {"host": "127.0.0.1", "port": 25, "from_address": CITY_ADDRESS, "from_name": "311"}
    for bad in ({"tls": "ssl"}, {"timeout": 0}, {"pool_size": 0}, {"from_address": "a b@ville.test"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            SmtpEmailAdapter(**(common | bad))  # type: ignore[arg-type]


# ---------------------------------------------------------------- console


async def test_console_send_logs_the_message_and_returns_its_message_id(caplog: pytest.LogCaptureFixture) -> None:
    adapter: ChannelSender = ConsoleEmailAdapter(from_address=CITY_ADDRESS, from_name=CITY_NAME)
    env = envelope(7)
    with caplog.at_level(logging.INFO, logger="carehub.email.console"):
        result = await adapter.send(env)
    await adapter.aclose()

    assert result.provider_id == "<outbox.7.a1b2c3@carehub.ville.test>"
    (record,) = [r for r in caplog.records if r.name == "carehub.email.console"]
    logged = record.getMessage()
    for expected in (result.provider_id, CITY_ADDRESS, RESIDENT, "PKR-1042 : nid-de-poule", "Numéro de référence"):
        assert expected in logged


async def test_console_refuses_header_injection_like_smtp() -> None:
    adapter = ConsoleEmailAdapter(from_address=CITY_ADDRESS, from_name=CITY_NAME)
    with pytest.raises(PermanentSendError):
        await adapter.send(envelope(subject="Hi\r\nBcc: everyone@example.org"))
