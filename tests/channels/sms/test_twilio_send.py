"""Sending through the real twilio client against the fake Twilio API on a local socket: each outcome Twilio
can give (or fail to give) becomes a sid or the right class of error, and every request keeps to the spec."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import aiohttp
import pytest
from aiohttp import web
from starlette.datastructures import Headers, ImmutableMultiDict

from channels.base import (
    AmbiguousSendError,
    ChannelAdapter,
    ChannelKind,
    DeliveryStatus,
    InboundRequest,
    OutboundEnvelope,
    PermanentSendError,
    SendError,
    TransientSendError,
)
from channels.sms.twilio import TwilioSmsAdapter, parse_retry_after
from tests.channels.sms.corpus import OPENAPI_SPEC
from tests.fakes.twilio_api import (
    FakeTwilioApi,
    accept,
    drop_after_accept,
    error,
    hang,
    rate_limited,
    server_error,
)

ACCOUNT_SID = "AC" + "b2" * 16
AUTH_TOKEN = "send-test-auth-token"
CITY_NUMBER = "+19055550100"
SERVICE_SID = "MG" + "c3" * 16
RESIDENT = "+16135550123"
CALLBACK = "https://hub.test/webhooks/twilio/status?d=7"


def envelope(body: str = "Your request PKR-1042 is received.", callback: str | None = CALLBACK) -> OutboundEnvelope:
    return OutboundEnvelope(outbox_id=7, channel=ChannelKind.SMS, to=RESIDENT, body=body, status_callback_url=callback)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilioApi]:
    async with FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN) as api:
        yield api
    # Every test's traffic must have kept to the spec, whatever else it checked.
    assert api.violations == []


def make_adapter(
    base_url: str,
    *,
    from_number: str | None = CITY_NUMBER,
    service: str | None = None,
    timeout: float = 2.0,
    auth_token: str = AUTH_TOKEN,
) -> TwilioSmsAdapter:
    return TwilioSmsAdapter(
        account_sid=ACCOUNT_SID,
        auth_token=auth_token,
        from_number=from_number,
        messaging_service_sid=service,
        api_base=base_url,
        timeout=timeout,
    )


@pytest.fixture
async def adapter(fake: FakeTwilioApi) -> AsyncIterator[TwilioSmsAdapter]:
    sms = make_adapter(fake.base_url)
    yield sms
    await sms.aclose()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A local port with nothing listening, held so no other process takes it during the test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


# ---------------------------------------------------------------- accepted


async def test_accepted_message_returns_twilios_sid(fake: FakeTwilioApi, adapter: TwilioSmsAdapter) -> None:
    result = await adapter.send(envelope())
    (accepted,) = fake.accepted
    assert result.provider_id == accepted.sid
    assert re.fullmatch(r"SM[0-9a-f]{32}", result.provider_id)
    assert fake.violations == []


async def test_request_carries_recipient_sender_body_and_status_callback(
    fake: FakeTwilioApi, adapter: TwilioSmsAdapter
) -> None:
    await adapter.send(envelope(body="Crews are on the way. Réponse en français: 2"))
    (accepted,) = fake.accepted
    assert (accepted.to, accepted.from_, accepted.messaging_service_sid) == (RESIDENT, CITY_NUMBER, None)
    assert accepted.body == "Crews are on the way. Réponse en français: 2"
    assert accepted.status_callback == CALLBACK
    assert fake.violations == []


async def test_messaging_service_sends_without_from(fake: FakeTwilioApi) -> None:
    sms = make_adapter(fake.base_url, from_number=None, service=SERVICE_SID)
    try:
        result = await sms.send(envelope())
    finally:
        await sms.aclose()
    (accepted,) = fake.accepted
    assert result.provider_id == accepted.sid
    assert (accepted.from_, accepted.messaging_service_sid) == (None, SERVICE_SID)
    assert fake.violations == []


async def test_messaging_service_and_from_number_are_both_sent(fake: FakeTwilioApi) -> None:
    sms = make_adapter(fake.base_url, service=SERVICE_SID)
    try:
        await sms.send(envelope())
    finally:
        await sms.aclose()
    (accepted,) = fake.accepted
    assert (accepted.from_, accepted.messaging_service_sid) == (CITY_NUMBER, SERVICE_SID)


async def test_no_status_callback_url_sends_no_status_callback(fake: FakeTwilioApi, adapter: TwilioSmsAdapter) -> None:
    await adapter.send(envelope(callback=None))
    (accepted,) = fake.accepted
    assert accepted.status_callback is None
    assert "StatusCallback" not in dict(fake.requests[0].params)


async def test_concurrent_sends_each_get_their_own_sid(fake: FakeTwilioApi, adapter: TwilioSmsAdapter) -> None:
    results = await asyncio.gather(*(adapter.send(envelope(body=f"message {i}")) for i in range(20)))
    assert {r.provider_id for r in results} == {m.sid for m in fake.accepted}
    assert len(fake.accepted) == 20


def test_adapter_needs_a_sender() -> None:
    with pytest.raises(ValueError, match="from_number or a messaging_service_sid"):
        make_adapter("http://127.0.0.1:9", from_number=None, service=None)


def test_adapter_keeps_the_channel_adapter_contract() -> None:
    adapter: ChannelAdapter = make_adapter("http://127.0.0.1:9")
    assert adapter.kind is ChannelKind.SMS


# ---------------------------------------------------------------- refused by Twilio


async def test_invalid_number_is_permanent_with_twilios_code(fake: FakeTwilioApi, adapter: TwilioSmsAdapter) -> None:
    fake.push(error(400, 21211, "Invalid 'To' Phone Number: +1613555012"))
    with pytest.raises(PermanentSendError) as caught:
        await adapter.send(envelope())
    assert caught.value.code == "21211"
    assert not caught.value.opted_out
    assert "Invalid 'To' Phone Number" in caught.value.message
    assert fake.accepted == []


async def test_opted_out_recipient_is_permanent_and_flagged(fake: FakeTwilioApi, adapter: TwilioSmsAdapter) -> None:
    fake.push(error(400, 21610, "Attempt to send to unsubscribed recipient"))
    with pytest.raises(PermanentSendError) as caught:
        await adapter.send(envelope())
    assert (caught.value.code, caught.value.opted_out) == ("21610", True)


async def test_wrong_credentials_are_transient_so_a_rotation_loses_no_message(fake: FakeTwilioApi) -> None:
    sms = make_adapter(fake.base_url, auth_token="not-the-token")
    try:
        with pytest.raises(TransientSendError) as caught:
            await sms.send(envelope())
    finally:
        await sms.aclose()
    assert caught.value.code == "20003"
    assert [r.outcome for r in fake.requests] == ["unauthorized"]


async def test_rate_limit_is_transient_with_retry_after(fake: FakeTwilioApi, adapter: TwilioSmsAdapter) -> None:
    fake.push(rate_limited(retry_after=7))
    with pytest.raises(TransientSendError) as caught:
        await adapter.send(envelope())
    assert (caught.value.code, caught.value.retry_after) == ("429", 7.0)


async def test_rate_limit_without_retry_after_is_transient(fake: FakeTwilioApi, adapter: TwilioSmsAdapter) -> None:
    fake.push(rate_limited())
    with pytest.raises(TransientSendError) as caught:
        await adapter.send(envelope())
    assert (caught.value.code, caught.value.retry_after) == ("429", None)


@pytest.mark.parametrize("status", [500, 503])
async def test_twilio_server_error_is_transient(fake: FakeTwilioApi, adapter: TwilioSmsAdapter, status: int) -> None:
    fake.push(server_error(status))
    with pytest.raises(TransientSendError) as caught:
        await adapter.send(envelope())
    assert caught.value.code == str(20000 + status)
    assert fake.accepted == []


async def test_send_after_an_error_succeeds(fake: FakeTwilioApi, adapter: TwilioSmsAdapter) -> None:
    fake.push(server_error(503), accept())
    with pytest.raises(TransientSendError):
        await adapter.send(envelope())
    result = await adapter.send(envelope())
    assert [m.sid for m in fake.accepted] == [result.provider_id]


# ---------------------------------------------------------------- no answer


async def test_connection_refused_is_transient(closed_port: int) -> None:
    sms = make_adapter(f"http://127.0.0.1:{closed_port}")
    try:
        with pytest.raises(TransientSendError, match="could not reach Twilio") as caught:
            await sms.send(envelope())
    finally:
        await sms.aclose()
    assert isinstance(caught.value.__cause__, aiohttp.ClientConnectorError)


async def test_hung_request_times_out_as_ambiguous(fake: FakeTwilioApi) -> None:
    fake.push(hang())
    sms = make_adapter(fake.base_url, timeout=0.3)
    try:
        # The bound guards against the twilio client's own behaviour: it passes no timeout to aiohttp.
        async with asyncio.timeout(10):
            with pytest.raises(AmbiguousSendError, match="may have accepted"):
                await sms.send(envelope())
    finally:
        await sms.aclose()
    # The request did reach Twilio: from the client's side nothing tells whether it was accepted.
    assert [r.outcome for r in fake.requests] == ["hang"]
    assert fake.accepted == []


async def test_released_hung_request_is_a_transient_503_and_later_hangs_hold_again(
    fake: FakeTwilioApi, adapter: TwilioSmsAdapter
) -> None:
    fake.push(hang(), hang())
    sending = asyncio.create_task(adapter.send(envelope()))
    await fake.wait_for_requests(1)
    assert fake.held == 1
    fake.release_hung()
    with pytest.raises(TransientSendError) as caught:
        await sending
    assert caught.value.code == "20503"
    second = asyncio.create_task(adapter.send(envelope()))
    await fake.wait_for_requests(2)
    assert fake.held == 1
    fake.release_hung()
    with pytest.raises(TransientSendError):
        await second
    assert fake.accepted == []


async def test_connection_dropped_after_accept_is_ambiguous(fake: FakeTwilioApi, adapter: TwilioSmsAdapter) -> None:
    fake.push(drop_after_accept())
    with pytest.raises(AmbiguousSendError):
        await adapter.send(envelope())
    # Twilio has the message: a blind retry here would text the resident twice.
    assert len(fake.accepted) == 1


async def test_send_after_a_dropped_connection_succeeds(fake: FakeTwilioApi, adapter: TwilioSmsAdapter) -> None:
    fake.push(drop_after_accept())
    with pytest.raises(AmbiguousSendError):
        await adapter.send(envelope())
    result = await adapter.send(envelope())
    assert fake.accepted[-1].sid == result.provider_id


@pytest.mark.parametrize("body", ["<html>proxy says hi", "", '{"status": "queued"}'])
async def test_success_answer_without_a_readable_sid_is_ambiguous(body: str) -> None:
    # A 2xx means Twilio took the message; without its sid a retry would only send it again.
    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=201, text=body, content_type="application/json")

    with pytest.raises(AmbiguousSendError):
        await _send_to(answer)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [(400, 21211, PermanentSendError), (400, 21610, PermanentSendError), (503, 20503, TransientSendError)],
)
async def test_problem_details_answers_are_classified_like_legacy_ones(
    status: int, code: int, expected: type[Exception]
) -> None:
    # twilio raises TwilioServiceException, not TwilioRestException, for RFC 9457 bodies.
    problem = {"type": f"https://www.twilio.com/docs/errors/{code}", "title": "Refused", "status": status,
               "code": code, "detail": "said no"}  # fmt: skip

    async def answer(request: web.Request) -> web.Response:
        return web.json_response(problem, status=status, content_type="application/problem+json")

    with pytest.raises(expected) as caught:
        await _send_to(answer)
    assert isinstance(caught.value, SendError)
    assert caught.value.code == str(code)
    assert "said no" in caught.value.message
    assert getattr(caught.value, "opted_out", False) is (code == 21610)


async def _send_to(handler: Callable[[web.Request], Awaitable[web.Response]]) -> None:
    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", handler)
    async with _serve(app) as base_url:
        sms = make_adapter(base_url)
        try:
            await sms.send(envelope())
        finally:
            await sms.aclose()


# ---------------------------------------------------------------- status callbacks back to us


async def test_status_callback_from_fake_verifies_and_parses_back_to_the_outbox_row(fake: FakeTwilioApi) -> None:
    received: list[InboundRequest] = []

    async def hub_endpoint(request: web.Request) -> web.Response:
        form = await request.post()
        received.append(
            InboundRequest(
                url=str(request.url),
                headers=Headers(dict(request.headers)),
                form=ImmutableMultiDict([(k, str(v)) for k, v in form.items()]),
            )
        )
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/webhooks/twilio/status", hub_endpoint)
    async with _serve(app) as hub_url:
        sms = make_adapter(fake.base_url)
        try:
            result = await sms.send(envelope(callback=f"{hub_url}/webhooks/twilio/status?d=7"))
            delivery = await fake.send_status_callback(result.provider_id, "undelivered", error_code=30003)
            assert delivery.status == 204
            (req,) = received
            sms.verify(req)
            update = sms.parse_status(req)
        finally:
            await sms.aclose()
    assert (update.provider_id, update.outbox_id) == (result.provider_id, 7)
    assert (update.status, update.error_code) == (DeliveryStatus.UNDELIVERED, "30003")


# ---------------------------------------------------------------- the fake keeps us honest


async def test_fake_api_flags_requests_that_break_the_spec(fake: FakeTwilioApi) -> None:
    url = f"{fake.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    headers = {"Authorization": aiohttp.encode_basic_auth(ACCOUNT_SID, AUTH_TOKEN)}
    async with aiohttp.ClientSession() as session:
        bad = {"To": RESIDENT, "Body": "hi", "Sender": CITY_NUMBER}  # no From/MessagingServiceSid; unknown param
        async with session.post(url, data=bad, headers=headers) as response:
            answer = await response.json()
    assert response.status == 400
    assert set(answer) == {"code", "message", "more_info", "status"}
    assert any("Sender" in v for v in fake.violations)
    assert any("From or MessagingServiceSid" in v for v in fake.violations)
    assert fake.accepted == []
    fake.violations.clear()  # seen; the fixture's own check is for the adapter's requests


async def test_fake_api_answers_with_the_specs_message_shape(fake: FakeTwilioApi) -> None:
    url = f"{fake.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    headers = {"Authorization": aiohttp.encode_basic_auth(ACCOUNT_SID, AUTH_TOKEN)}
    async with aiohttp.ClientSession() as session:
        form = {"To": RESIDENT, "From": CITY_NUMBER, "Body": "hi"}
        async with session.post(url, data=form, headers=headers) as response:
            answer = await response.json()
    spec = json.loads(OPENAPI_SPEC.read_text(encoding="utf-8"))
    schema = spec["components"]["schemas"]["api.v2010.account.message"]
    assert response.status == 201
    assert set(answer) == set(schema["properties"])
    assert re.fullmatch(schema["properties"]["sid"]["pattern"], answer["sid"])
    assert answer["status"] == "queued"
    assert datetime.strptime(answer["date_created"], "%a, %d %b %Y %H:%M:%S %z").tzinfo is not None


# ---------------------------------------------------------------- Retry-After


@pytest.mark.parametrize(
    ("value", "expected"), [("7", 7.0), ("0.5", 0.5), ("-3", 0.0), ("", None), ("soon", None), ("nan", None)]
)
def test_retry_after_seconds(value: str, expected: float | None) -> None:
    assert parse_retry_after({"Retry-After": value}) == expected


def test_retry_after_http_date_is_seconds_from_now() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    seconds = parse_retry_after({"Retry-After": later})
    assert seconds is not None
    assert 100 < seconds <= 120


def test_retry_after_absent_is_none() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after({}) is None


# ---------------------------------------------------------------- helpers


@asynccontextmanager
async def _serve(app: web.Application) -> AsyncIterator[str]:
    """Serve an aiohttp app on an OS-assigned local port; yields its base URL."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
