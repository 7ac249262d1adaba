"""Channel fallback: when an alert's SMS fails for good (a landline, a number out of service) and the same resident
has an email address mail can reach, the alert goes there instead, once (it is one more delivery of the same alert,
so the one-per-address rule still holds). Not after an opt-out: a resident who said STOP gets nothing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.alerts import repository as alerts
from carehub.alerts.fanout import plan
from carehub.alerts.repository import Recipient
from carehub.models import AlertStatus
from carehub.runtime import Runtime
from channels.base import ChannelKind


async def stage_fallback(
    conn: AsyncConnection, rt: Runtime, outbox_id: int, now: datetime
) -> list[tuple[int, datetime]]:
    """Stage the email fallback of this failed alert SMS, if there is one to make; returns what to enqueue."""
    table = alerts.OUTBOX
    row = (
        await conn.execute(
            select(table.c.alert_id, table.c.channel, table.c.to_address, table.c.subscription_id).where(
                table.c.id == outbox_id
            )
        )
    ).one_or_none()
    if row is None or row.alert_id is None or row.channel != ChannelKind.SMS.value or row.subscription_id is None:
        return []
    alert = await alerts.get(conn, row.alert_id)
    if alert is None or alert.status not in (AlertStatus.SENDING.value, AlertStatus.SENT.value):
        return []
    email = await alerts.email_for_fallback(conn, row.to_address)
    if email is None:
        return []
    recipient = Recipient(row.subscription_id, ChannelKind.EMAIL, email[0], email[1])
    planned = await plan(conn, rt, [recipient], now)
    return await alerts.stage(conn, row.alert_id, planned, now, fallback_of_id=outbox_id)
