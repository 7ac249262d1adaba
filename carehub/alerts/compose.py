"""The text of claimed alert deliveries, at send time: each in its resident's language, from the alert's content
(so an alert is stored once, not once per recipient). SMS gets the text; email the whole message."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.alerts import repository as alerts
from carehub.alerts import texts
from carehub.mail.ingest import message_id_for
from carehub.models import AlertKind
from carehub.outbox.repository import ClaimedDelivery
from carehub.runtime import Runtime
from channels.base import ChannelKind, OutboundEmail


async def compose_alerts(
    rt: Runtime, conn: AsyncConnection, claimed: Sequence[ClaimedDelivery]
) -> dict[int, tuple[str, OutboundEmail | None]]:
    """Outbox id -> (SMS text or mail text, the mail) for the alert deliveries among `claimed`."""
    mine = [c for c in claimed if c.alert_id is not None]
    if not mine:
        return {}
    table = alerts.ALERTS
    found = await conn.execute(
        select(table.c.id, table.c.kind, table.c.content).where(table.c.id.in_({c.alert_id for c in mine}))
    )
    by_id = {row.id: row for row in found}
    mailed = [c.subscription_id for c in mine if c.channel is ChannelKind.EMAIL and c.subscription_id is not None]
    topic_names = await alerts.topic_names(conn, mailed) if mailed else {}
    composed: dict[int, tuple[str, OutboundEmail | None]] = {}
    for c in mine:
        alert = by_id[c.alert_id]
        kind = AlertKind(alert.kind)
        if c.channel is ChannelKind.EMAIL:
            created_ms = int(c.created_at.timestamp() * 1000) if c.created_at is not None else 0
            mail = texts.email(
                rt.settings,
                rt.templates,
                content=alert.content,
                language=c.language,
                kind=kind,
                topic_name=topic_names.get(c.subscription_id or 0, {"en": rt.settings.city_name}),
                subscription_id=c.subscription_id or 0,
                message_id=message_id_for(rt, c.id, created_ms),
            )
            composed[c.id] = (mail.text, mail)
        else:
            composed[c.id] = (texts.sms_text(rt.settings, alert.content, c.language, kind), None)
    return composed
