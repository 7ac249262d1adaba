"""arq cron job: SLA timers (due times, warnings and breaches for supervisors), every CAREHUB_SLA_INTERVAL_SECONDS."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from arq import cron
from arq.cron import CronJob

from carehub.clock import utcnow
from carehub.runtime import Runtime
from carehub.settings import Settings
from carehub.sla.timers import check_sla

RUN_TIMEOUT_SECONDS = 300  # a run is bounded batches; this only stops one stuck on the database


async def check_sla_timers(ctx: dict[str, Any]) -> dict[str, int]:
    runtime: Runtime = ctx["runtime"]
    return asdict(await check_sla(runtime, utcnow()))


def sla_cron(settings: Settings) -> CronJob:
    """Every interval seconds (under a minute), or every interval // 60 minutes at second 0; unique, so of several
    workers one runs each time (a second run at once would still announce nothing twice)."""
    interval = settings.sla_interval_seconds
    if interval < 60:
        schedule: dict[str, Any] = {"second": set(range(0, 60, interval))}
    else:
        schedule = {"second": 0, "minute": set(range(0, 60, min(interval // 60, 60)))}
    return cron(
        check_sla_timers,
        name="sla_timers",
        **schedule,
        # Not at startup: the next slot is at most one interval away, and a worker that starts and stops at once
        # (deploys, tests) should not be caught mid-run.
        run_at_startup=False,
        unique=True,
        keep_result=0,
        timeout=RUN_TIMEOUT_SECONDS,
    )
