"""The fan-out: an alert becomes one outbox row per recipient, staged in batches and paced at the sender's rate.

Each batch is one transaction that locks the alert row, so a cancel is either before it (the batch stages nothing)
or after it (the cancel marks what it staged), reserves slots (carehub.alerts.pacing), inserts the rows with
INSERT ... ON CONFLICT DO NOTHING on (alert, channel, address), and moves the checkpoint (alerts.staged_through).
A crash or a second run resumes after the checkpoint and can never stage an address twice. After each commit the
batch's rows are enqueued as delivery jobs deferred to their slots; if Redis loses them, the sweeper finds the rows
again, and they still wait for their slots.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.alerts import pacing
from carehub.alerts import repository as alerts
from carehub.alerts.repository import Recipient
from carehub.clock import utcnow
from carehub.models import AlertStatus
from carehub.outbox.dispatch import Job
from carehub.outbox.repository import ALERT_LOOKAHEAD
from carehub.runtime import Runtime
from channels.base import ChannelKind

log = logging.getLogger("carehub.alerts")


async def fan_out(rt: Runtime, alert_id: int) -> int:
    """Stage (and enqueue) every delivery of a sending alert not staged yet; returns how many this run staged."""
    total = 0
    while True:
        async with rt.transaction() as tx:
            now = utcnow()
            alert = await alerts.get(tx.conn, alert_id, for_update=True)
            if alert is None or alert.status != AlertStatus.SENDING.value or alert.staged_at is not None:
                return total
            batch_size = rt.settings.alert_fanout_batch
            if alert.parent_id is None:
                found = await alerts.subscribers_after(tx.conn, alert, alert.staged_through, batch_size)
                keyed = [(r.subscription_id, r) for r in found]
            else:
                keyed = await alerts.recipients_of_after(
                    tx.conn, alert.parent_id, alert.channels, alert.staged_through, batch_size
                )
            if not keyed:
                await alerts.move(tx.conn, alert_id, [AlertStatus.SENDING], staged_at=now, updated_at=now)
                log.info("alert %d: every delivery staged", alert_id)
                return total
            planned = await plan(tx.conn, rt, [r for _, r in keyed], now)
            staged = await alerts.stage(tx.conn, alert_id, planned, now)
            await alerts.move(tx.conn, alert_id, [AlertStatus.SENDING], staged_through=keyed[-1][0], updated_at=now)
        await enqueue_paced(rt, staged)
        total += len(staged)


async def plan(
    conn: AsyncConnection, rt: Runtime, recipients: Sequence[Recipient], now: datetime
) -> list[tuple[Recipient, datetime]]:
    """Each recipient (one per channel and address) with its slot at the channel's rate."""
    unique: dict[tuple[ChannelKind, str], Recipient] = {}
    for r in recipients:
        unique.setdefault((r.channel, r.address), r)
    per_channel: dict[ChannelKind, list[Recipient]] = defaultdict(list)
    for r in unique.values():
        per_channel[r.channel].append(r)
    planned: list[tuple[Recipient, datetime]] = []
    for channel, group in per_channel.items():
        slots = await pacing.reserve(conn, channel, len(group), rt.settings.send_rate(channel.value), now)
        planned.extend(zip(group, slots, strict=True))
    return planned


async def enqueue_paced(rt: Runtime, staged: Sequence[tuple[int, datetime]]) -> None:
    """Delivery jobs for staged rows, deferred to their slots: rows whose slots fall within one lookahead window go
    together in one job (the job waits for each row's slot before sending it)."""
    if rt.dispatcher is None or not staged:
        return
    jobs: list[Job] = []
    window_start: datetime | None = None
    count = 0
    for outbox_id, slot in sorted(staged, key=lambda s: s[1]):
        if window_start is None or slot - window_start >= ALERT_LOOKAHEAD or count >= rt.settings.delivery_batch_size:
            window_start, count = slot, 0
        jobs.append(Job(outbox_id, 0, not_before=window_start))
        count += 1
    await rt.dispatcher.enqueue(jobs)
