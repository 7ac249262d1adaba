"""Running alerts: start a fan-out now (an arq job on Redis, a task in the embedded hub), and the periodic tick that
starts scheduled alerts when their time comes, resumes a fan-out a crash or a Redis flush interrupted, and marks
an alert sent once every delivery has reached a final state. The tick runs as an arq cron job in workers
(workers/alerts.py) and on a timer in embedded mode."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from carehub.alerts import repository as alerts
from carehub.alerts.fanout import fan_out
from carehub.clock import utcnow
from carehub.models import AlertStatus
from carehub.outbox.dispatch import ArqDispatcher
from carehub.outbox.embedded import EmbeddedSweeper
from carehub.runtime import Runtime

log = logging.getLogger("carehub.alerts")
FAN_OUT_JOB = "fan_out_alert"


async def start_fanout(rt: Runtime, alert_id: int) -> None:
    """Have the alert's deliveries staged, now: a worker's job, or a task in this process. If this is lost, the
    tick starts it again."""
    if isinstance(rt.dispatcher, ArqDispatcher):
        try:
            await rt.dispatcher.redis.enqueue_job(
                FAN_OUT_JOB, alert_id, _job_id=f"alert-fanout:{alert_id}", _queue_name=rt.settings.queue_name
            )
        except Exception:
            log.warning("could not enqueue the fan-out of alert %d; the tick will", alert_id, exc_info=True)
        return
    rt.in_background(_fan_out_here(rt, alert_id))


async def _fan_out_here(rt: Runtime, alert_id: int) -> None:
    try:
        await fan_out(rt, alert_id)
    except Exception:
        log.exception("the fan-out of alert %d failed; the tick starts it again", alert_id)


@dataclass(frozen=True)
class TickResult:
    started: int
    resumed: int
    finished: int


async def tick(rt: Runtime, now: datetime | None = None) -> TickResult:
    now = now or utcnow()
    started = resumed = finished = 0
    async with rt.transaction() as tx:
        due = await alerts.due_to_start(tx.conn, now)
        for alert_id in due:
            moved = await alerts.move(
                tx.conn,
                alert_id,
                [AlertStatus.SCHEDULED],
                status=AlertStatus.SENDING.value,
                started_at=now,
                updated_at=now,
            )
            started += int(moved)
        sending = await alerts.sending(tx.conn)
    for alert_id in due:
        await start_fanout(rt, alert_id)
    for row in sending:
        if row.id in due:
            continue
        if row.staged_at is None:
            if row.updated_at < now - timedelta(seconds=rt.settings.alert_stalled_seconds):
                log.info("alert %d: fan-out stalled since %s; starting it again", row.id, row.updated_at)
                await start_fanout(rt, row.id)
                resumed += 1
            continue
        async with rt.transaction() as tx:
            if await alerts.unfinished(tx.conn, row.id) == 0:
                finished += int(
                    await alerts.move(
                        tx.conn,
                        row.id,
                        [AlertStatus.SENDING],
                        status=AlertStatus.SENT.value,
                        finished_at=now,
                        updated_at=now,
                    )
                )
    return TickResult(started, resumed, finished)


def start_embedded(rt: Runtime) -> EmbeddedSweeper | None:
    """Embedded mode: tick in this process every CAREHUB_ALERT_INTERVAL_SECONDS (workers do it with Redis)."""
    if rt.settings.redis_url is not None:
        return None
    timer = EmbeddedSweeper(lambda: tick(rt), rt.settings.alert_interval_seconds, name="alerts")
    timer.start()
    return timer
