"""arq cron job polling the CAP feeds (CAREHUB_CAP_FEED_URLS) every CAREHUB_CAP_POLL_INTERVAL_SECONDS; none when
no feed is configured."""

from __future__ import annotations

from typing import Any

from arq import cron
from arq.cron import CronJob

from carehub.cap.poller import CapPoller
from carehub.runtime import Runtime
from carehub.settings import Settings

# A poll reads each feed and at most PollLimits.max_messages messages of it, each within its own timeout.
POLL_TIMEOUT_SECONDS = 600


async def cap_poll(ctx: dict[str, Any]) -> dict[str, int]:
    # One poller per worker process, kept in its context: its memory (ETags, entries read) lasts between runs.
    poller: CapPoller | None = ctx.get("cap_poller")
    if poller is None:
        runtime: Runtime = ctx["runtime"]
        poller = ctx["cap_poller"] = CapPoller(runtime)
    return await poller.poll()


def cap_poll_crons(settings: Settings) -> list[CronJob]:
    """The poll as a cron job, at the configured interval (rounded to the clock: under a minute, on the seconds
    dividing it; under an hour, every interval's minutes; else hourly)."""
    if not settings.cap_feed_urls:
        return []
    interval = settings.cap_poll_interval_seconds
    minute: set[int] | None = None  # None: every minute
    second = {0}
    if interval < 60:
        second = set(range(0, 60, interval))
    elif interval < 3600:
        minute = set(range(0, 60, interval // 60))
    else:
        minute = {0}
    return [
        cron(
            cap_poll,
            name="cap_poll",
            run_at_startup=True,
            unique=True,
            keep_result=0,
            timeout=POLL_TIMEOUT_SECONDS,
            minute=minute,
            second=second,
        )
    ]
