"""arq worker settings for `carehub worker`: the delivery job and the sweeper cron.

Read from the same CAREHUB_* settings as the hub; scale out by running more worker processes.
"""

from __future__ import annotations

from typing import Any

from arq import cron, func
from arq.connections import RedisSettings

from carehub.alerts.runner import FAN_OUT_JOB
from carehub.outbox.dispatch import SEND_BATCH_JOB, SEND_JOB, ArqDispatcher
from carehub.runtime import Runtime
from carehub.settings import Settings
from workers.alerts import alerts_cron, fan_out_alert
from workers.cap_poll import cap_poll_crons
from workers.open311 import open311_cron
from workers.routing import sweep_routing
from workers.send_message import send_message, send_messages
from workers.sla import sla_cron
from workers.sweeper import sweep_outbox
from workers.webhooks import event_feed_cron

FAN_OUT_TIMEOUT_SECONDS = 3600


def worker_settings(settings: Settings) -> dict[str, Any]:
    if settings.redis_url is None:
        raise SystemExit("carehub worker needs CAREHUB_REDIS_URL; without it `carehub dev` delivers in-process.")

    async def startup(ctx: dict[str, Any]) -> None:
        runtime = Runtime.create(settings)
        await runtime.open_hot_pool()  # stored mail a crash left behind is processed here too (the sweeper)
        runtime.dispatcher = ArqDispatcher.for_settings(ctx["redis"], settings)
        ctx["runtime"] = runtime

    async def shutdown(ctx: dict[str, Any]) -> None:
        runtime: Runtime | None = ctx.get("runtime")
        if runtime is not None:
            runtime.dispatcher = None  # arq owns and closes the Redis pool
            await runtime.aclose()

    interval = settings.sweep_interval_seconds
    return {
        "functions": [
            func(send_message, name=SEND_JOB, keep_result=0),
            func(send_messages, name=SEND_BATCH_JOB, keep_result=0),
            # A fan-out of a large audience takes a while: it commits batch by batch and resumes after a crash.
            func(fan_out_alert, name=FAN_OUT_JOB, keep_result=0, timeout=FAN_OUT_TIMEOUT_SECONDS),
        ],
        "cron_jobs": [
            cron(
                sweep_outbox,
                second=set(range(0, 60, interval)),
                run_at_startup=True,
                unique=True,
                keep_result=0,
            ),
            cron(
                sweep_routing,
                second=set(range(0, 60, settings.routing_interval_seconds)),
                run_at_startup=True,
                unique=True,
                keep_result=0,
            ),
            sla_cron(settings),
            alerts_cron(settings),
            event_feed_cron(settings),
            open311_cron(settings),
            *cap_poll_crons(settings),
        ],
        "on_startup": startup,
        "on_shutdown": shutdown,
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "queue_name": settings.queue_name,
        "max_jobs": settings.worker_max_jobs,
        # Poll often: the default 0.5 s caps a worker at max_jobs per half second for short jobs.
        "poll_delay": 0.05,
        # As long as the longest lease a job can hold (a full batch of alert deliveries): arq never cancels a job
        # whose rows another worker could not yet take, and no lease runs out under a job that still works.
        "job_timeout": settings.delivery_job_seconds,
        "keep_result": 0,
        # On SIGTERM (deploys), let sends in flight finish and record their outcome instead of cancelling them
        # between the provider's accept and our commit, which would resend after the lease expires.
        "job_completion_wait": int(settings.provider_call_seconds) + 5,
        "handle_signals": True,
        # The key `carehub worker --check` reads expires this soon after a worker stops refreshing it.
        "health_check_interval": 15,
    }
