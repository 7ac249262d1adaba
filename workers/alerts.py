"""arq jobs for alerts: the fan-out of one alert, and the alerts tick (scheduled alerts, stalled fan-outs,
finished alerts) every CAREHUB_ALERT_INTERVAL_SECONDS."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from arq import cron
from arq.cron import CronJob

from carehub.alerts.fanout import fan_out
from carehub.alerts.runner import tick
from carehub.runtime import Runtime
from carehub.settings import Settings


async def fan_out_alert(ctx: dict[str, Any], alert_id: int) -> int:
    runtime: Runtime = ctx["runtime"]
    return await fan_out(runtime, alert_id)


async def alerts_tick(ctx: dict[str, Any]) -> dict[str, int]:
    runtime: Runtime = ctx["runtime"]
    return asdict(await tick(runtime))


def alerts_cron(settings: Settings) -> CronJob:
    return cron(
        alerts_tick,
        name="alerts_tick",
        second=set(range(0, 60, settings.alert_interval_seconds)),
        run_at_startup=True,
        unique=True,
        keep_result=0,
    )
