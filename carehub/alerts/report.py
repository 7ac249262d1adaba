"""The delivery report of an alert: counts per channel and status, progress, and the ETA while it is sending."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.alerts import repository as alerts
from carehub.db import AnyRow
from carehub.models import AlertStatus
from channels.base import DeliveryStatus

REPORT_STATUSES = [s.value for s in DeliveryStatus]


async def report(conn: AsyncConnection, alert: AnyRow, now: datetime) -> dict[str, Any]:
    """The delivery report: counts per channel and status, progress, and the ETA while sending."""
    counts = await alerts.counts(conn, alert.id)
    channels: dict[str, dict[str, int]] = {}
    for channel in dict.fromkeys([*alert.channels, *(c for c, _ in counts)]):
        per = {status: counts.get((channel, status), 0) for status in REPORT_STATUSES}
        per["total"] = sum(per.values())
        channels[channel] = per
    total = sum(c["total"] for c in channels.values())
    waiting = sum(c[DeliveryStatus.QUEUED.value] + c[DeliveryStatus.SENDING.value] for c in channels.values())
    last = await alerts.last_slot(conn, alert.id) if waiting else None
    return {
        "channels": channels,
        "total": total,
        "done": total - waiting,
        "progress": 1.0 if total == 0 else round((total - waiting) / total, 4),
        "staging": alert.status == AlertStatus.SENDING.value and alert.staged_at is None,
        "eta": None if last is None else max(last, now).isoformat(),
    }
