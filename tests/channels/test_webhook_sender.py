"""The webhook sender against a real local receiver: signed so that an independent Standard Webhooks library
verifies it, every answer classified (retry or fail), and no connection to an address that is off limits."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from channels.base import (
    ChannelKind,
    OutboundEnvelope,
    OutboundWebhook,
    PermanentSendError,
    TransientSendError,
)
from channels.webhook.addresses import GuardedResolver, RefusedAddress, refusal
from channels.webhook.sender import USER_AGENT, WebhookSender
from channels.webhook.signing import new_secret, signature
from tests.support.webhook_receiver import Reply, WebhookReceiver

DOCS = Path(__file__).parents[2] / "docs" / "webhooks.md"
BODY = json.dumps({"id": "ticket.created:7", "type": "ticket.created", "data": {"reference": "PKR-000007"}})


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as running:
        yield running


@pytest.fixture
async def sender() -> AsyncIterator[WebhookSender]:
    sending = WebhookSender(timeout=0.5)
    yield sending
    await sending.aclose()


def envelope(url: str, secret: str, *, allow_private: bool = True, outbox_id: int = 1) -> OutboundEnvelope:
    hook = OutboundWebhook(
        url=url, secret=secret, event_id="ticket.created:7", event_type="ticket.created", allow_private=allow_private
    )
    return OutboundEnvelope(outbox_id=outbox_id, channel=ChannelKind.WEBHOOK, to=url, body=BODY, webhook=hook)


async def test_a_delivery_is_verified_by_an_independent_standard_webhooks_library(
    sender: WebhookSender, receiver: WebhookReceiver
) -> None:
    secret = new_secret()

    result = await sender.send(envelope(receiver.url, secret))

    [got] = receiver.requests
    assert result.provider_id == "1:http-204"
    assert got.body == BODY
    assert got.headers["webhook-id"] == "ticket.created:7"
    assert got.headers["carehub-event-type"] == "ticket.created"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"] == USER_AGENT
    assert Webhook(secret).verify(got.body, got.headers) == json.loads(BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(got.body, got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(got.body.replace("PKR-000007", "PKR-000008"), got.headers)


async def test_the_documented_standard_library_check_verifies_a_delivery(
    sender: WebhookSender, receiver: WebhookReceiver
) -> None:
    secret = new_secret()
    await sender.send(envelope(receiver.url, secret))
    [got] = receiver.requests
    snippet = DOCS.read_text().split("Or with nothing but the standard library:")[1].split("```python")[1]
    namespace: dict[str, Any] = {}
    exec(snippet.split("```")[0], namespace)  # noqa: S102 - our own documentation's code
    verify = namespace["verify"]

    assert verify(secret, got.headers, got.body.encode()) is True
    assert verify(new_secret(), got.headers, got.body.encode()) is False
    assert verify(secret, got.headers, got.body.encode() + b" ") is False


def test_the_signature_matches_the_standard_webhooks_reference_signer() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    at = 1_733_530_000
    expected = Webhook(secret).sign("msg_1", datetime.fromtimestamp(at, UTC), BODY)
    assert signature(secret, "msg_1", at, BODY) == expected


@pytest.mark.parametrize(
    ("reply", "code", "retry_after"),
    [
        (Reply(500, body="oops"), "http-500", None),
        (Reply(503, headers={"Retry-After": "7"}), "http-503", 7.0),
        (Reply(429, headers={"Retry-After": "3"}), "http-429", 3.0),
        (Reply(408), "http-408", None),
        (Reply(drop=True), "connection", None),
        (Reply(hang=True), "timeout", None),
    ],
)
async def test_answers_worth_retrying_are_transient(
    sender: WebhookSender, receiver: WebhookReceiver, reply: Reply, code: str, retry_after: float | None
) -> None:
    receiver.push(reply)

    with pytest.raises(TransientSendError) as raised:
        await sender.send(envelope(receiver.url, new_secret()))

    assert raised.value.code == code
    assert raised.value.retry_after == retry_after


@pytest.mark.parametrize(
    ("reply", "says"),
    [
        (Reply(404, body="no such hook"), "HTTP 404: no such hook"),
        (Reply(401, body="bad signature " * 100), "HTTP 401: bad signature"),
        (Reply(302, headers={"Location": "https://elsewhere.example/"}), "redirects are not followed"),
    ],
)
async def test_other_answers_fail_for_good_with_what_the_endpoint_said(
    sender: WebhookSender, receiver: WebhookReceiver, reply: Reply, says: str
) -> None:
    receiver.push(reply)

    with pytest.raises(PermanentSendError) as raised:
        await sender.send(envelope(receiver.url, new_secret()))

    assert says in raised.value.message
    assert len(raised.value.message) < 400  # an excerpt, never the whole body
    assert len(receiver.requests) == 1  # a redirect is not followed


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://localhost:{port}/hooks", "loopback"),
        ("https://127.0.0.1:{port}/hooks", "127.0.0.1 is a loopback address"),
        ("https://[::1]:{port}/hooks", "loopback"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://10.0.0.8/hooks", "private"),
        ("http://127.0.0.1:{port}/hooks", "https"),
    ],
)
async def test_private_targets_are_refused_unless_allowed(
    sender: WebhookSender, receiver: WebhookReceiver, url: str, says: str
) -> None:
    with pytest.raises(PermanentSendError) as raised:
        await sender.send(envelope(url.format(port=receiver.port), new_secret(), allow_private=False))

    assert says in raised.value.message
    assert receiver.requests == []


async def test_the_resolver_refuses_a_name_that_resolves_to_loopback() -> None:
    resolver = GuardedResolver()
    try:
        with pytest.raises(RefusedAddress, match=r"localhost resolves to .* loopback"):
            await resolver.resolve("localhost", 443)
    finally:
        await resolver.close()


@pytest.mark.parametrize(
    ("address", "off_limits"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),
        ("100.64.0.1", True),  # carrier-grade NAT
        ("0.0.0.0", True),  # noqa: S104 - an address under test, not a bind
        ("224.0.0.1", True),
        ("255.255.255.255", True),
        ("::1", True),
        ("fe80::1", True),
        ("fd00::1", True),
        ("::ffff:10.0.0.1", True),  # IPv4-mapped
        ("2002:a00:1::", True),  # 6to4 around 10.0.0.1
        ("64:ff9b::7f00:1", True),  # NAT64 around 127.0.0.1
        ("8.8.8.8", False),
        ("2001:4860:4860::8888", False),
    ],
)
def test_address_rules(address: str, off_limits: bool) -> None:
    assert (refusal(ipaddress.ip_address(address)) is not None) is off_limits
