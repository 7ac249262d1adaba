"""Hubs in production mode (delivery through arq on this run's Redis) and real arq workers to deliver for them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from arq.worker import Worker

from carehub.settings import Settings
from tests.conftest import Hub, hub_settings, running_hub
from tests.fakes.twilio_api import FakeTwilioApi
from tests.support import stores
from tests.support.waiting import eventually
from workers.settings import worker_settings


@pytest.fixture
async def queue_settings(database_url: str, fake_twilio: FakeTwilioApi, redis_url: str) -> Settings:
    await stores.flush_redis(redis_url)  # ids restart with each test's store, so no job may survive from the last
    return hub_settings(database_url, fake_twilio.base_url, redis_url=redis_url)


@pytest.fixture
async def queue_hub(queue_settings: Settings) -> AsyncIterator[Hub]:
    async with running_hub(queue_settings) as hub:
        yield hub


@asynccontextmanager
async def arq_worker(settings: Settings) -> AsyncIterator[Worker]:
    """A real arq worker, in this process and event loop, running carehub's delivery job and sweeper cron."""
    worker = Worker(**{**worker_settings(settings), "handle_signals": False})
    task = asyncio.create_task(worker.async_run())
    try:
        yield worker
    finally:
        # Let jobs in flight (a send, or a cron sweep that started with the worker) finish, as a deploy's SIGTERM
        # does: cancelling one half-way raises CancelledError out of arq's close().
        async def idle() -> bool:
            return all(t.done() for t in worker.tasks.values())

        await eventually(idle, within=15, what="the worker's jobs in flight to finish")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await worker.close()
