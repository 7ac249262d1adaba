"""arq cron job for outbound webhooks: the event feed's tick every CAREHUB_EVENT_FEED_INTERVAL_SECONDS, which stages
deliveries of new events in the outbox (sent by the ordinary delivery jobs)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from arq import cron
from arq.cron import CronJob

from carehub.runtime import Runtime
from carehub.settings import Settings
from carehub.webhooks.feed import tick


async def event_feed_tick(ctx: dict[str, Any]) -> dict[str, int]:
    runtime: Runtime = ctx["runtime"]
    return asdict(await tick(runtime))


def event_feed_cron(settings: Settings) -> CronJob:
    return cron(
        event_feed_tick,
        name="event_feed_tick",
        second=set(range(0, 60, settings.event_feed_interval_seconds)),
        run_at_startup=True,
        unique=True,
        keep_result=0,
    )
