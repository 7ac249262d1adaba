"""Two hub processes behind one Redis and one PostgreSQL, as in production behind a load balancer: a resident's
socket on one replica, the agent on the other, and live events crossing between them through Redis pub/sub."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from carehub.realtime.broker import RedisBroker
from carehub.settings import Settings
from tests.carehub.chat.conftest import chat_settings
from tests.conftest import running_hub
from tests.support.chat import agent_stream, reply, resident
from tests.support.live import live_hub
from tests.support.processes import carehub_process, settings_env
from tests.support.stores import RUN_ID
from tests.support.waiting import eventually


@pytest.fixture
def backend() -> str:
    return "postgresql"  # replicas share one database: that is PostgreSQL's job


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def replicas(settings: Settings, redis_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two `carehub serve` processes sharing this run's Redis (with a pub/sub prefix no other run uses)."""
    shared = chat_settings(
        settings, redis_url=redis_url, realtime_prefix=f"carehub-test-{RUN_ID}", chat_require_agent_online=True
    )
    env = settings_env(shared)
    urls = []
    with ExitStack() as stack:
        for name in ("a", "b"):
            port = free_port()
            stack.enter_context(
                carehub_process(
                    "serve", "--host", "127.0.0.1", "--port", str(port), env=env, cwd=tmp_path, log=tmp_path / name
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        yield urls[0], urls[1]


async def answers(url: str) -> bool:
    try:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"{url}/healthz")).status_code == 200
    except httpx.TransportError:
        return False


async def test_events_cross_replicas_and_a_resident_resumes_on_the_other_one(
    replicas: tuple[str, str], settings: Settings
) -> None:
    hub_a, hub_b = replicas
    for url in replicas:
        await eventually(lambda url=url: answers(url), within=30, what=f"hub at {url}")  # type: ignore[misc]
    async with running_hub(settings) as local:  # only to create an agent in the shared database
        token = await local.agent_token()

    ws_a, ws_b = (u.replace("http://", "ws://") + "/chat/ws" for u in replicas)
    async with httpx.AsyncClient(base_url=hub_b) as api_b, httpx.AsyncClient(base_url=hub_a) as api_a:
        async with resident(ws_a) as jo:
            welcome = await jo.hello()
            assert welcome["reason"] == "no_agents"  # nobody online anywhere yet
        async with agent_stream(hub_b, token) as stream:
            async with resident(ws_a) as jo:
                # The agent's presence on B makes chat available on A.
                assert (await jo.hello())["available"] is True
                await jo.say("Snow plow missed our street")
                reference = jo.reference
                seen = await stream.wait_for("message.created", reference=reference, seq=1)
                assert seen["body"] == "Snow plow missed our street"

                await reply(api_b, token, reference, "A plow is on its way.")  # written on B, socket on A
                assert (await jo.expect("message", seq=3))["body"] == "A plow is on its way."
                token_a, last = jo.token, jo.last_seq

            async with resident(ws_b, token=token_a, last_seq=last) as back:  # the balancer sent it to B
                await back.hello()
                await reply(api_a, token, reference, "Done, thank you for waiting.")  # written on A, socket on B
                assert (await back.expect("message", seq=4))["body"] == "Done, thank you for waiting."


async def test_a_socket_catches_up_what_pubsub_dropped_while_redis_reconnected(
    settings: Settings, redis_url: str
) -> None:
    """Redis drops this replica's subscriber; an agent's reply published meanwhile reaches nobody through pub/sub.
    When the broker has reconnected, every socket looks in the database and the resident gets the reply."""
    hub_settings = chat_settings(settings, redis_url=redis_url, realtime_prefix=f"carehub-test-{RUN_ID}-drop")
    async with live_hub(hub_settings) as live:
        token = await live.agent_token()
        broker = live.runtime.broker
        assert isinstance(broker, RedisBroker)
        async with resident(live.ws_url) as jo:
            await jo.hello()
            await jo.say("Garbage bin stolen")
            await jo.expect("message", seq=2)
            admin = Redis.from_url(redis_url, decode_responses=True)
            try:
                subscribers = [
                    c["id"]
                    for c in await admin.client_list()
                    if c.get("name") == broker.client_name and "P" in c.get("flags", "")
                ]
                assert len(subscribers) == 1
                await admin.client_kill_filter(_id=subscribers[0])
            finally:
                await admin.aclose()
            await reply(live.client, token, jo.reference, "A new bin is on its way.")
            caught_up = await jo.expect("message", seq=3)
            assert caught_up["body"] == "A new bin is on its way."
