"""Delivery through real arq workers on real Redis: replies go out, a flushed Redis loses nothing (the sweeper
re-enqueues from the outbox), and a worker killed mid-send leads to exactly one message at the provider."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from carehub.settings import Settings
from tests.conftest import Hub, hub_settings, running_hub
from tests.fakes.twilio_api import FakeTwilioApi, hang
from tests.support import stores
from tests.support.processes import CAREHUB_BIN, carehub_process, kill, settings_env
from tests.support.store_queries import outbox_rows
from tests.support.twilio import text_hub
from tests.support.waiting import eventually
from tests.workers.conftest import arq_worker


def resident(i: int) -> str:
    return f"+1905555{i:04d}"


async def all_sent(hub: Hub, n: int) -> bool:
    rows = await outbox_rows(hub.runtime.engine)
    return len(rows) == n and all(r.status == "sent" for r in rows)


async def test_acknowledgement_is_delivered_by_an_arq_worker(
    queue_hub: Hub, queue_settings: Settings, fake_twilio: FakeTwilioApi
) -> None:
    async with arq_worker(queue_settings):
        await text_hub(queue_hub.client, resident(1), "Is the library open on Sunday?")
        [ack] = await fake_twilio.wait_for(1, timeout=10)
        await eventually(lambda: all_sent(queue_hub, 1), what="the worker to record the send")

    assert ack.to == resident(1)
    [row] = await outbox_rows(queue_hub.runtime.engine)
    assert (row.status, row.provider_id, row.attempts) == ("sent", ack.sid, 1)


async def test_redis_flushed_mid_way_loses_no_delivery_and_sends_none_twice(
    queue_hub: Hub, queue_settings: Settings, fake_twilio: FakeTwilioApi, redis_url: str
) -> None:
    async with arq_worker(queue_settings):
        for i in range(15):
            await text_hub(queue_hub.client, resident(i), "first half")
        await eventually(lambda: all_sent(queue_hub, 15), within=15, what="the first half to be sent")
    # The second half is enqueued while no worker runs, then Redis loses every job.
    for i in range(15, 30):
        await text_hub(queue_hub.client, resident(i), "second half")
    await stores.flush_redis(redis_url)

    async with arq_worker(queue_settings):
        await eventually(lambda: all_sent(queue_hub, 30), within=30, what="every delivery to be sent")

    assert sorted(m.to for m in fake_twilio.accepted) == sorted(resident(i) for i in range(30))


async def test_worker_killed_mid_send_recovers_and_the_message_is_sent_once(
    database_url: str, fake_twilio: FakeTwilioApi, redis_url: str, tmp_path: Path
) -> None:
    await stores.flush_redis(redis_url)
    settings = hub_settings(database_url, fake_twilio.base_url, redis_url=redis_url, delivery_lease_seconds=3.0)
    fake_twilio.push(hang())

    async with running_hub(settings) as hub:
        with carehub_process("worker", env=settings_env(settings), cwd=tmp_path) as first_worker:
            await text_hub(hub.client, resident(7), "Water bill question")
            await fake_twilio.wait_for_requests(1, timeout=30)  # the worker is inside the provider call
            kill(first_worker)
        assert fake_twilio.accepted == []

        with carehub_process("worker", env=settings_env(settings), cwd=tmp_path):
            await eventually(lambda: all_sent(hub, 1), within=30, what="the sweeper to recover the delivery")

        [row] = await outbox_rows(hub.runtime.engine)
    assert row.attempts == 2
    assert [m.to for m in fake_twilio.accepted] == [resident(7)]


async def test_texts_taken_while_redis_is_down_are_delivered_once_it_is_back(
    queue_settings: Settings, fake_twilio: FakeTwilioApi
) -> None:
    redis_down = queue_settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    async with running_hub(redis_down) as hub:
        response = await text_hub(hub.client, resident(3), "Road flooded at Finch and Altona")
        assert response.status_code == 200
        [row] = await outbox_rows(hub.runtime.engine)
        assert row.status == "queued"

        async with arq_worker(queue_settings):  # Redis is back: the sweeper finds the row
            await eventually(lambda: all_sent(hub, 1), within=20, what="the sweeper to deliver the acknowledgement")

    assert [m.to for m in fake_twilio.accepted] == [resident(3)]


async def test_worker_health_check_command_tells_whether_a_worker_is_alive(
    queue_settings: Settings, tmp_path: Path
) -> None:
    """compose.yaml's worker healthcheck is `carehub worker --check`: it must fail with no worker and pass with one."""

    async def check() -> int:
        proc = await asyncio.create_subprocess_exec(
            str(CAREHUB_BIN),
            "worker",
            "--check",
            env=settings_env(queue_settings),
            cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return await proc.wait()

    assert await check() == 1
    async with arq_worker(queue_settings):
        await eventually(lambda: _passes(check), within=20, what="the worker's health-check key")


async def _passes(check: Callable[[], Awaitable[int]]) -> bool:
    return await check() == 0
