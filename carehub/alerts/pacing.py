"""The provider's rate, kept by a schedule: every alert delivery gets a slot (its next_attempt_at), 1/rate seconds
after the one before on its channel, and is never claimed before it (carehub.outbox.repository.claim_many).

Slots are reserved per channel in `sender_slots` under a row lock, in the transaction that stages the deliveries,
so two alerts fanning out at once share the sender's rate instead of each taking all of it, whichever worker runs
them. Because the schedule lives in the database, it survives a Redis flush or a worker crash: a delivery found
again by the sweeper still waits for its slot. The ETA of an alert is its last slot.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.db import insert_or_ignore
from carehub.models import Outbox, SenderSlot
from channels.base import ChannelKind, DeliveryStatus

SLOTS = SenderSlot.__table__  # type: ignore[attr-defined]
START_MARGIN = timedelta(milliseconds=500)  # under the claim lookahead (outbox.repository.ALERT_LOOKAHEAD)


async def reserve(
    conn: AsyncConnection, channel: ChannelKind, count: int, rate: float, now: datetime
) -> list[datetime]:
    """`count` consecutive slots on `channel` at `rate` per second, starting no earlier than now."""
    if count <= 0:
        return []
    await conn.execute(insert_or_ignore(conn, SLOTS).values(channel=channel.value, next_slot_at=now))
    current = (
        await conn.execute(select(SLOTS.c.next_slot_at).where(SLOTS.c.channel == channel.value).with_for_update())
    ).scalar_one()
    # An idle sender starts a moment from now, not now: the first job reaches a worker only after the commit and a
    # poll, and slots already past by then would all go at once, above the rate.
    start = max(current, now + START_MARGIN)
    step = timedelta(seconds=1.0 / rate)
    slots = [start + i * step for i in range(count)]
    await conn.execute(update(SLOTS).where(SLOTS.c.channel == channel.value).values(next_slot_at=slots[-1] + step))
    return slots


async def next_free(conn: AsyncConnection, channel: ChannelKind, now: datetime) -> datetime:
    """When a delivery staged now on `channel` would go: the composer's estimate starts there."""
    current = (
        await conn.execute(select(SLOTS.c.next_slot_at).where(SLOTS.c.channel == channel.value))
    ).scalar_one_or_none()
    return now if current is None else max(current, now)


async def release(conn: AsyncConnection, channel: ChannelKind, now: datetime) -> None:
    """Give back the slots of deliveries that will not be sent (a cancelled alert): the channel's next free slot
    becomes the one after the last alert delivery still waiting on it, or now."""
    outbox = Outbox.__table__  # type: ignore[attr-defined]
    last = (
        await conn.execute(
            select(func.max(outbox.c.next_attempt_at)).where(
                outbox.c.channel == channel.value,
                outbox.c.alert_id.is_not(None),
                outbox.c.status == DeliveryStatus.QUEUED.value,
            )
        )
    ).scalar_one_or_none()
    free = now if last is None else max(now, last + timedelta(milliseconds=1))
    await conn.execute(update(SLOTS).where(SLOTS.c.channel == channel.value).values(next_slot_at=free))
