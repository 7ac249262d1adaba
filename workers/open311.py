"""arq cron job for Open311: tell requesters of their requests' status changes every
CAREHUB_EVENT_FEED_INTERVAL_SECONDS (carehub/open311/notify.py)."""

from __future__ import annotations

from typing import Any

from arq import cron
from arq.cron import CronJob

from carehub.open311.notify import tell_status_changes
from carehub.runtime import Runtime
from carehub.settings import Settings


async def open311_tick(ctx: dict[str, Any]) -> int:
    runtime: Runtime = ctx["runtime"]
    return await tell_status_changes(runtime)


def open311_cron(settings: Settings) -> CronJob:
    return cron(
        open311_tick,
        name="open311_tick",
        second=set(range(0, 60, settings.event_feed_interval_seconds)),
        run_at_startup=True,
        unique=True,
        keep_result=0,
    )
