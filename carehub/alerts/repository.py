"""Alert queries: the alert rows, their audience (subscriptions, or an earlier alert's recipients), and their
deliveries (outbox rows with alert_id) counted for the delivery report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.db import AnyRow, insert_or_ignore
from carehub.models import (
    Alert,
    AlertStatus,
    AlertTemplate,
    Area,
    Contact,
    ContactAddress,
    Outbox,
    Subscription,
    SubscriptionStatus,
    Topic,
)
from channels.base import ChannelKind, DeliveryStatus

ALERTS = Alert.__table__  # type: ignore[attr-defined]
OUTBOX = Outbox.__table__  # type: ignore[attr-defined]
SUBSCRIPTIONS = Subscription.__table__  # type: ignore[attr-defined]
ADDRESSES = ContactAddress.__table__  # type: ignore[attr-defined]
CONTACTS = Contact.__table__  # type: ignore[attr-defined]
TOPICS = Topic.__table__  # type: ignore[attr-defined]
TEMPLATES = AlertTemplate.__table__  # type: ignore[attr-defined]
AREAS = Area.__table__  # type: ignore[attr-defined]

REACHED = (DeliveryStatus.SENT.value, DeliveryStatus.DELIVERED.value)


@dataclass(frozen=True)
class Recipient:
    """One delivery to stage: who, on which channel, in which language, under which subscription."""

    subscription_id: int
    channel: ChannelKind
    address: str
    language: str


async def insert_alert(conn: AsyncConnection, values: dict[str, Any]) -> int:
    return int((await conn.execute(insert(ALERTS).values(**values).returning(ALERTS.c.id))).scalar_one())


async def get(conn: AsyncConnection, alert_id: int, *, for_update: bool = False) -> AnyRow | None:
    query = select(ALERTS).where(ALERTS.c.id == alert_id)
    if for_update:
        query = query.with_for_update()
    return (await conn.execute(query)).one_or_none()


async def by_idempotency_key(conn: AsyncConnection, created_by: int, key: str) -> AnyRow | None:
    query = select(ALERTS).where(ALERTS.c.created_by == created_by, ALERTS.c.idempotency_key == key)
    return (await conn.execute(query)).one_or_none()


async def list_alerts(conn: AsyncConnection, *, limit: int, before_id: int | None = None) -> list[AnyRow]:
    query = select(ALERTS).order_by(ALERTS.c.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(ALERTS.c.id < before_id)
    return list(await conn.execute(query))


async def move(conn: AsyncConnection, alert_id: int, from_statuses: Sequence[AlertStatus], **values: Any) -> bool:
    """Change the alert only if it is in one of `from_statuses` (so racing requests cannot both move it)."""
    result = await conn.execute(
        update(ALERTS)
        .where(ALERTS.c.id == alert_id, ALERTS.c.status.in_([s.value for s in from_statuses]))
        .values(**values)
    )
    return result.rowcount == 1


def _audience(alert: AnyRow) -> list[ColumnElement[bool]]:
    """Active subscriptions of addresses that can be reached, in the alert's topic (any, for all residents) and
    areas (a subscription without an area hears about the whole city)."""
    conditions: list[ColumnElement[bool]] = [
        SUBSCRIPTIONS.c.status == SubscriptionStatus.ACTIVE.value,
        ADDRESSES.c.opted_out_at.is_(None),
        ADDRESSES.c.undeliverable_at.is_(None),
        ADDRESSES.c.channel.in_(list(alert.channels)),
    ]
    if alert.topic_id is not None:
        conditions.append(SUBSCRIPTIONS.c.topic_id == alert.topic_id)
    if alert.area_ids:
        conditions.append(or_(SUBSCRIPTIONS.c.area_id.is_(None), SUBSCRIPTIONS.c.area_id.in_(list(alert.area_ids))))
    return conditions


async def subscribers_after(conn: AsyncConnection, alert: AnyRow, after_id: int, limit: int) -> list[Recipient]:
    """The next `limit` subscriptions of the audience with ids above `after_id`, in id order."""
    rows = await conn.execute(
        select(SUBSCRIPTIONS.c.id, ADDRESSES.c.channel, ADDRESSES.c.address, SUBSCRIPTIONS.c.language)
        .join(ADDRESSES, ADDRESSES.c.id == SUBSCRIPTIONS.c.address_id)
        .where(SUBSCRIPTIONS.c.id > after_id, *_audience(alert))
        .order_by(SUBSCRIPTIONS.c.id)
        .limit(limit)
    )
    return [Recipient(r.id, ChannelKind(r.channel), r.address, r.language) for r in rows]


async def recipients_of_after(
    conn: AsyncConnection, parent_id: int, channels: Sequence[str], after_id: int, limit: int
) -> list[tuple[int, Recipient]]:
    """(outbox id, recipient) of the earlier alert's deliveries that reached someone, above `after_id`: an update
    or all-clear goes to exactly the people who got the alert (whether they are still subscribed is checked when
    each is sent)."""
    rows = await conn.execute(
        select(OUTBOX.c.id, OUTBOX.c.subscription_id, OUTBOX.c.channel, OUTBOX.c.to_address, OUTBOX.c.language)
        .where(
            OUTBOX.c.alert_id == parent_id,
            OUTBOX.c.status.in_(REACHED),
            OUTBOX.c.channel.in_(list(channels)),
            OUTBOX.c.id > after_id,
        )
        .order_by(OUTBOX.c.id)
        .limit(limit)
    )
    return [
        (r.id, Recipient(r.subscription_id, ChannelKind(r.channel), r.to_address, r.language or "en")) for r in rows
    ]


async def audience_size(conn: AsyncConnection, alert: AnyRow) -> dict[str, int]:
    """Addresses per channel the alert would reach now (one per address, however many subscriptions match)."""
    if alert.parent_id is not None:
        rows = await conn.execute(
            select(OUTBOX.c.channel, func.count(func.distinct(OUTBOX.c.to_address)))
            .where(
                OUTBOX.c.alert_id == alert.parent_id,
                OUTBOX.c.status.in_(REACHED),
                OUTBOX.c.channel.in_(list(alert.channels)),
            )
            .group_by(OUTBOX.c.channel)
        )
    else:
        rows = await conn.execute(
            select(ADDRESSES.c.channel, func.count(func.distinct(ADDRESSES.c.id)))
            .select_from(SUBSCRIPTIONS.join(ADDRESSES, ADDRESSES.c.id == SUBSCRIPTIONS.c.address_id))
            .where(*_audience(alert))
            .group_by(ADDRESSES.c.channel)
        )
    found = {channel: int(n) for channel, n in rows}
    return {channel: found.get(channel, 0) for channel in alert.channels}


async def audience_languages(conn: AsyncConnection, alert: AnyRow) -> dict[tuple[str, str], int]:
    """(channel, language) -> addresses: how many get each language's text (for the total SMS segments)."""
    if alert.parent_id is not None:
        language = func.coalesce(OUTBOX.c.language, "en")
        query = (
            select(OUTBOX.c.channel, language, func.count(func.distinct(OUTBOX.c.to_address)))
            .where(OUTBOX.c.alert_id == alert.parent_id, OUTBOX.c.status.in_(REACHED))
            .group_by(OUTBOX.c.channel, language)
        )
    else:
        query = (
            select(ADDRESSES.c.channel, SUBSCRIPTIONS.c.language, func.count(func.distinct(ADDRESSES.c.id)))
            .select_from(SUBSCRIPTIONS.join(ADDRESSES, ADDRESSES.c.id == SUBSCRIPTIONS.c.address_id))
            .where(*_audience(alert))
            .group_by(ADDRESSES.c.channel, SUBSCRIPTIONS.c.language)
        )
    return {(channel, language): int(n) for channel, language, n in await conn.execute(query)}


async def stage(
    conn: AsyncConnection,
    alert_id: int,
    deliveries: Sequence[tuple[Recipient, datetime]],
    now: datetime,
    *,
    fallback_of_id: int | None = None,
) -> list[tuple[int, datetime]]:
    """Insert the deliveries (recipient, slot), skipping any address this alert already has on that channel (a
    re-run of the fan-out, an update's duplicate address); returns (outbox id, slot) of those inserted."""
    if not deliveries:
        return []
    statement = insert_or_ignore(conn, OUTBOX).returning(OUTBOX.c.id, OUTBOX.c.next_attempt_at)
    result = await conn.execute(
        statement,
        [
            {
                "alert_id": alert_id,
                "subscription_id": r.subscription_id,
                "language": r.language,
                "fallback_of_id": fallback_of_id,
                "channel": r.channel.value,
                "to_address": r.address,
                "status": DeliveryStatus.QUEUED.value,
                "attempts": 0,
                "next_attempt_at": slot,
                "created_at": now,
                "updated_at": now,
            }
            for r, slot in deliveries
        ],
    )
    return [(int(row.id), row.next_attempt_at) for row in result]


async def cancel_queued(conn: AsyncConnection, alert_id: int, now: datetime) -> int:
    result = await conn.execute(
        update(OUTBOX)
        .where(OUTBOX.c.alert_id == alert_id, OUTBOX.c.status == DeliveryStatus.QUEUED.value)
        .values(status=DeliveryStatus.CANCELLED.value, last_error="the alert was cancelled", updated_at=now)
    )
    return int(result.rowcount)


async def counts(conn: AsyncConnection, alert_id: int) -> dict[tuple[str, str], int]:
    """(channel, status) -> deliveries, from the (alert_id, status) index."""
    rows = await conn.execute(
        select(OUTBOX.c.channel, OUTBOX.c.status, func.count())
        .where(OUTBOX.c.alert_id == alert_id)
        .group_by(OUTBOX.c.channel, OUTBOX.c.status)
    )
    return {(channel, status): int(n) for channel, status, n in rows}


async def done_and_total(conn: AsyncConnection, alert_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Alert id -> (deliveries in a final state, all deliveries), for many alerts in one query (the alerts list)."""
    waiting = OUTBOX.c.status.in_([DeliveryStatus.QUEUED.value, DeliveryStatus.SENDING.value])
    rows = await conn.execute(
        select(OUTBOX.c.alert_id, func.count(), func.count().filter(waiting))
        .where(OUTBOX.c.alert_id.in_(list(alert_ids)))
        .group_by(OUTBOX.c.alert_id)
    )
    return {int(alert_id): (int(total) - int(busy), int(total)) for alert_id, total, busy in rows}


async def last_slot(conn: AsyncConnection, alert_id: int) -> datetime | None:
    """When the alert's last waiting delivery is due: its ETA while sending."""
    return (
        await conn.execute(
            select(func.max(OUTBOX.c.next_attempt_at)).where(
                OUTBOX.c.alert_id == alert_id, OUTBOX.c.status == DeliveryStatus.QUEUED.value
            )
        )
    ).scalar_one_or_none()


async def unfinished(conn: AsyncConnection, alert_id: int) -> int:
    """Deliveries still queued or being sent."""
    return int(
        (
            await conn.execute(
                select(func.count()).where(
                    OUTBOX.c.alert_id == alert_id,
                    OUTBOX.c.status.in_([DeliveryStatus.QUEUED.value, DeliveryStatus.SENDING.value]),
                )
            )
        ).scalar_one()
    )


async def deliveries(
    conn: AsyncConnection, alert_id: int, *, after_id: int = 0, limit: int | None = None
) -> list[AnyRow]:
    """Per-recipient detail, in outbox id order."""
    query = (
        select(
            OUTBOX.c.id,
            OUTBOX.c.channel,
            OUTBOX.c.to_address,
            OUTBOX.c.language,
            OUTBOX.c.status,
            OUTBOX.c.attempts,
            OUTBOX.c.error_code,
            OUTBOX.c.last_error,
            OUTBOX.c.fallback_of_id,
            OUTBOX.c.next_attempt_at,
            OUTBOX.c.sent_at,
            OUTBOX.c.updated_at,
        )
        .where(OUTBOX.c.alert_id == alert_id, OUTBOX.c.id > after_id)
        .order_by(OUTBOX.c.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return list(await conn.execute(query))


async def due_to_start(conn: AsyncConnection, now: datetime) -> list[int]:
    rows = await conn.execute(
        select(ALERTS.c.id).where(ALERTS.c.status == AlertStatus.SCHEDULED.value, ALERTS.c.scheduled_for <= now)
    )
    return [int(r.id) for r in rows]


async def sending(conn: AsyncConnection) -> list[AnyRow]:
    rows = await conn.execute(
        select(ALERTS.c.id, ALERTS.c.staged_at, ALERTS.c.updated_at).where(ALERTS.c.status == AlertStatus.SENDING.value)
    )
    return list(rows)


async def topic_names(conn: AsyncConnection, subscription_ids: Sequence[int]) -> dict[int, dict[str, str]]:
    """Subscription id -> its topic's name per language (the alert mail says which subscription it came by)."""
    rows = await conn.execute(
        select(SUBSCRIPTIONS.c.id, TOPICS.c.name_en, TOPICS.c.name_fr)
        .join(TOPICS, TOPICS.c.id == SUBSCRIPTIONS.c.topic_id)
        .where(SUBSCRIPTIONS.c.id.in_(list(subscription_ids)))
    )
    return {r.id: {"en": r.name_en, "fr": r.name_fr} for r in rows}


async def email_for_fallback(conn: AsyncConnection, sms_address: str) -> tuple[str, str] | None:
    """(email address, language) of the same resident as this phone number, if mail can reach them."""
    phone = ADDRESSES.alias("phone")
    row = (
        await conn.execute(
            select(ADDRESSES.c.address, CONTACTS.c.language)
            .join(phone, phone.c.contact_id == ADDRESSES.c.contact_id)
            .join(CONTACTS, CONTACTS.c.id == ADDRESSES.c.contact_id)
            .where(
                phone.c.channel == ChannelKind.SMS.value,
                phone.c.address == sms_address,
                ADDRESSES.c.channel == ChannelKind.EMAIL.value,
                ADDRESSES.c.opted_out_at.is_(None),
                ADDRESSES.c.undeliverable_at.is_(None),
            )
            .order_by(ADDRESSES.c.id)
            .limit(1)
        )
    ).one_or_none()
    return None if row is None else (row.address, row.language)


async def recent_alert_to(conn: AsyncConnection, address_id: int, since: datetime) -> int | None:
    """The latest alert that reached this address since `since`: a message from it now is likely a reply."""
    return (
        await conn.execute(
            select(OUTBOX.c.alert_id)
            .join(ADDRESSES, (ADDRESSES.c.address == OUTBOX.c.to_address) & (ADDRESSES.c.channel == OUTBOX.c.channel))
            .where(
                ADDRESSES.c.id == address_id,
                OUTBOX.c.alert_id.is_not(None),
                OUTBOX.c.status.in_(REACHED),
                OUTBOX.c.sent_at >= since,
            )
            .order_by(OUTBOX.c.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


def _templates_query() -> Any:
    return select(TEMPLATES, TOPICS.c.slug.label("topic")).outerjoin(TOPICS, TOPICS.c.id == TEMPLATES.c.topic_id)


async def templates(conn: AsyncConnection) -> list[AnyRow]:
    """Every alert template, by name, with its topic's slug."""
    return list(await conn.execute(_templates_query().order_by(TEMPLATES.c.name)))


async def template(conn: AsyncConnection, template_id: int) -> AnyRow | None:
    return (await conn.execute(_templates_query().where(TEMPLATES.c.id == template_id))).one_or_none()


async def save_template(conn: AsyncConnection, template_id: int | None, values: dict[str, Any]) -> int:
    """Insert (template_id None) or update a template; returns its id (0 if there was no such template)."""
    if template_id is None:
        return int((await conn.execute(insert(TEMPLATES).values(**values).returning(TEMPLATES.c.id))).scalar_one())
    values = {k: v for k, v in values.items() if k not in ("created_by", "created_at")}
    changed = await conn.execute(update(TEMPLATES).where(TEMPLATES.c.id == template_id).values(**values))
    return template_id if changed.rowcount == 1 else 0


async def delete_template(conn: AsyncConnection, template_id: int) -> bool:
    return (await conn.execute(delete(TEMPLATES).where(TEMPLATES.c.id == template_id))).rowcount == 1


PUBLISHED = (AlertStatus.SENDING.value, AlertStatus.SENT.value, AlertStatus.CANCELLED.value)


async def published(conn: AsyncConnection, *, limit: int, alert_id: int | None = None) -> list[AnyRow]:
    """Alerts the public feed shows, newest message first: those whose deliveries started (sending, sent, or
    cancelled part-way; a cancelled one is newest as of its cancellation). Drafts and never-started alerts are not."""
    latest = func.coalesce(ALERTS.c.cancelled_at, ALERTS.c.started_at)
    query = (
        select(ALERTS)
        .where(ALERTS.c.status.in_(PUBLISHED), ALERTS.c.started_at.is_not(None))
        .order_by(latest.desc(), ALERTS.c.id.desc())
        .limit(limit)
    )
    if alert_id is not None:
        query = query.where(ALERTS.c.id == alert_id)
    return list(await conn.execute(query))


async def started_at(conn: AsyncConnection, alert_ids: Sequence[int]) -> dict[int, datetime | None]:
    rows = await conn.execute(select(ALERTS.c.id, ALERTS.c.started_at).where(ALERTS.c.id.in_(list(alert_ids))))
    return {int(r.id): r.started_at for r in rows}


async def topics_by_id(conn: AsyncConnection, topic_ids: Sequence[int]) -> dict[int, AnyRow]:
    return {int(r.id): r for r in await conn.execute(select(TOPICS).where(TOPICS.c.id.in_(list(topic_ids))))}


async def areas_by_id(conn: AsyncConnection, area_ids: Sequence[int]) -> dict[int, AnyRow]:
    return {int(r.id): r for r in await conn.execute(select(AREAS).where(AREAS.c.id.in_(list(area_ids))))}
