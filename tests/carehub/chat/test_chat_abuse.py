"""Abuse controls on the public socket: origins, tokens, the hello deadline, frame size, rates, sockets per IP."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from carehub.chat import protocol, tokens
from carehub.clock import utcnow
from carehub.settings import Settings
from tests.carehub.chat.conftest import chat_settings
from tests.support.chat import resident
from tests.support.live import LiveHub, live_hub


async def close_of(ws: ClientConnection) -> tuple[int, str]:
    """Read until the hub closes the socket (within a deadline); its close code and reason."""
    async with asyncio.timeout(10):
        while True:
            try:
                await ws.recv()
            except ConnectionClosed as closed:
                received = closed.rcvd
                break
    assert received is not None, "closed without a close frame"
    return received.code, received.reason


async def closed_with(ws_url: str, first_frame: str | bytes | None) -> tuple[int, str]:
    async with connect(ws_url, compression=None) as ws:
        if first_frame is not None:
            await ws.send(first_frame)
        return await close_of(ws)


async def test_a_site_not_on_the_allowlist_cannot_open_the_chat(live: LiveHub) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with resident(live.ws_url, origin="https://evil.example"):
            pass
    assert refused.value.response.status_code == 403


async def test_the_city_website_may_open_the_chat(live: LiveHub) -> None:
    async with resident(live.ws_url, origin=live.settings.city_website) as jo:
        assert (await jo.hello())["type"] == "welcome"


@pytest.mark.parametrize(
    "token",
    [
        "made-up",
        tokens.issue("another hub's secret", tokens.new_key(), utcnow().replace(year=utcnow().year + 1)),
    ],
    ids=["made-up", "another-hubs"],  # stable names: the token itself is random (parallel workers must agree)
)
async def test_a_forged_or_unknown_token_is_refused(live: LiveHub, token: str) -> None:
    hello = json.dumps({"type": "hello", "token": token, "last_seq": 0})
    assert (await closed_with(live.ws_url, hello))[0] == 4401


async def test_an_expired_token_is_refused(live: LiveHub) -> None:
    async with resident(live.ws_url) as jo:
        await jo.hello()
        await jo.say("hello")
        assert jo.token is not None
        key = jo.token.split(".")[0]
    secret = live.settings.chat_token_secret.get_secret_value()
    expired = tokens.issue(secret, key, utcnow().replace(year=2020))
    hello = json.dumps({"type": "hello", "token": expired, "last_seq": 0})
    assert (await closed_with(live.ws_url, hello))[0] == 4401


async def test_the_first_frame_must_be_hello(live: LiveHub) -> None:
    code, reason = await closed_with(live.ws_url, json.dumps({"type": "ping"}))
    assert code == 4400
    assert "hello" in reason


async def test_a_silent_socket_is_closed_after_the_hello_deadline(
    live: LiveHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(protocol, "HELLO_TIMEOUT_SECONDS", 0.2)
    assert (await closed_with(live.ws_url, None))[0] == 4408


async def test_a_frame_over_8_kib_closes_the_socket(live: LiveHub) -> None:
    async with resident(live.ws_url) as jo:
        await jo.hello()
        await jo.send(type="message", cid="abcdefgh-ijklmnop", body="é" * 5000)  # ~10 KB of UTF-8
        assert (await close_of(jo.ws))[0] == 1009


async def test_messages_past_the_conversation_rate_are_refused_not_stored(settings: Settings) -> None:
    async with live_hub(chat_settings(settings, chat_messages_per_minute=10)) as live, resident(live.ws_url) as jo:
        await jo.hello()
        accepted = refused = 0
        for i in range(12):
            await jo.send(type="message", cid=f"rate-test-message-{i:04d}", body=f"spam {i}")
            while True:
                frame = await jo.next()
                if frame["type"] == "ack":
                    accepted += 1
                    break
                if frame["type"] == "error":
                    assert frame["code"] == "rate_limited"
                    refused += 1
                    break
        # The first message opens the conversation (counted against the address); then the conversation's burst
        # (a tenth of a minute's worth, at least five) goes through and the rest is refused.
        assert accepted == 6
        assert refused == 6


async def test_too_many_sockets_from_one_address_are_refused(settings: Settings) -> None:
    async with live_hub(chat_settings(settings, chat_ip_max_connections=2)) as live:
        async with resident(live.ws_url) as one, resident(live.ws_url) as two:
            await one.hello()
            await two.hello()
            assert (await closed_with(live.ws_url, None))[0] == 4429
        async with resident(live.ws_url) as again:  # the count goes down when sockets close
            assert (await again.hello())["type"] == "welcome"


async def test_binary_frames_are_refused_plainly(live: LiveHub) -> None:
    async with resident(live.ws_url) as jo:
        await jo.hello()
        await jo.ws.send(b"\x00\x01 not json")
        error = await jo.expect("error")
        assert error["code"] == "bad_frame"
        assert "binary" in error["reason"]
    assert (await closed_with(live.ws_url, b'{"type": "hello"}'))[0] == 4400
