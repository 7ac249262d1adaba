"""Outbound webhooks in production mode: the hub on Redis, real arq workers running the event feed's cron job and
the delivery jobs, two of them at once, and a receiver that fails before it succeeds: each event arrives once."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import pytest

from carehub.models import Role
from carehub.settings import Settings
from carehub.webhooks.feed import FeedResult, tick
from tests.conftest import Hub, hub_settings, running_hub
from tests.fakes.twilio_api import FakeTwilioApi
from tests.support import stores
from tests.support.alerts import staff
from tests.support.twilio import text_hub
from tests.support.webhook_receiver import Reply, WebhookReceiver
from tests.workers.conftest import arq_worker

QUICK = {"event_feed_interval_seconds": 1, "sweep_interval_seconds": 1, "sweep_grace_seconds": 0.5}


@pytest.fixture
async def queue_settings(database_url: str, fake_twilio: FakeTwilioApi, redis_url: str) -> Settings:
    await stores.flush_redis(redis_url)  # ids restart with each test's store, so no job may survive from the last
    return hub_settings(database_url, fake_twilio.base_url, redis_url=redis_url, **QUICK)


@pytest.fixture
async def queue_hub(queue_settings: Settings) -> AsyncIterator[Hub]:
    async with running_hub(queue_settings) as hub:
        yield hub


async def test_workers_run_the_event_feed_and_deliver_each_event_once(queue_hub: Hub, queue_settings: Settings) -> None:
    async with WebhookReceiver() as receiver:
        receiver.push(Reply(500), Reply(429, headers={"Retry-After": "0"}), Reply(drop=True))
        admin = await staff(queue_hub, Role.ADMIN)
        created = await queue_hub.client.post(
            "/api/v1/webhooks",
            json={"url": receiver.url, "events": ["ticket.created", "message.created"], "allow_private": True},
            headers=admin,
        )
        assert created.status_code == 201, created.text
        await text_hub(queue_hub.client, "+19055550123", "Streetlight out on Kingston Rd")
        await text_hub(queue_hub.client, "+19055550124", "Pothole on Brock Rd")

        async with arq_worker(queue_settings), arq_worker(queue_settings):
            # Two tickets, two inbound texts and their two acknowledgements.
            await receiver.wait_for_successes(6, within=30)
            again = [await tick(queue_hub.runtime) for _ in range(2)]  # on top of the workers' cron runs

        assert all(result == FeedResult(0, 0, 0) for result in again)
        assert len(receiver.requests) == 9  # three failures, then each event once
        assert Counter(r.event_id for r in receiver.successes) == Counter(
            ["ticket.created:1", "ticket.created:2", *(f"message.created:{i}" for i in range(1, 5))]
        )
