"""Subscription queries: topics and areas, subscriptions per address, the consent record, keyword receipts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.contacts import repository as contacts
from carehub.db import insert_or_ignore
from carehub.models import (
    Consent,
    ConsentAction,
    ContactAddress,
    KeywordReceipt,
    Subscription,
    SubscriptionStatus,
    Topic,
)
from channels.base import ChannelKind

TOPICS = Topic.__table__  # type: ignore[attr-defined]
SUBSCRIPTIONS = Subscription.__table__  # type: ignore[attr-defined]
CONSENTS = Consent.__table__  # type: ignore[attr-defined]
RECEIPTS = KeywordReceipt.__table__  # type: ignore[attr-defined]
ADDRESSES = ContactAddress.__table__  # type: ignore[attr-defined]

LIVE = (SubscriptionStatus.PENDING.value, SubscriptionStatus.ACTIVE.value)


@dataclass(frozen=True)
class TopicRow:
    id: int
    slug: str
    keyword: str
    name_en: str
    name_fr: str
    active: bool

    def name(self, language: str) -> str:
        return self.name_fr if language == "fr" else self.name_en


@dataclass(frozen=True)
class SubscriptionRow:
    id: int
    address_id: int
    topic_id: int
    area_id: int | None
    status: SubscriptionStatus
    language: str


def _topic(row: Any) -> TopicRow:
    return TopicRow(row.id, row.slug, row.keyword, row.name_en, row.name_fr, row.active)


def _subscription(row: Any) -> SubscriptionRow:
    return SubscriptionRow(
        row.id, row.address_id, row.topic_id, row.area_id, SubscriptionStatus(row.status), row.language
    )


async def topics(conn: AsyncConnection, *, active_only: bool = True) -> list[TopicRow]:
    query = select(TOPICS).order_by(TOPICS.c.sort_order, TOPICS.c.id)
    if active_only:
        query = query.where(TOPICS.c.active.is_(True))
    return [_topic(r) for r in await conn.execute(query)]


async def topic_by(conn: AsyncConnection, *, slug: str | None = None, keyword: str | None = None) -> TopicRow | None:
    condition = TOPICS.c.slug == slug if slug is not None else TOPICS.c.keyword == (keyword or "").upper()
    row = (await conn.execute(select(TOPICS).where(condition))).one_or_none()
    return None if row is None else _topic(row)


async def address_id_for(
    conn: AsyncConnection,
    channel: ChannelKind,
    address: str,
    now: datetime,
    *,
    language: str = "en",
    contact_id: int | None = None,
) -> int:
    """The address's id. A new address is added to `contact_id` (the same resident gave a phone and an email in
    one form: an alert whose SMS fails can then go by email), or gets a contact of its own. An address we know
    stays with its contact: contacts are merged only by an agent, never by guess."""
    found = (
        await conn.execute(
            select(ADDRESSES.c.id).where(ADDRESSES.c.channel == channel.value, ADDRESSES.c.address == address)
        )
    ).scalar_one_or_none()
    if found is not None:
        return int(found)
    if contact_id is not None:
        added = await conn.execute(
            insert(ADDRESSES)
            .values(contact_id=contact_id, channel=channel.value, address=address, created_at=now)
            .returning(ADDRESSES.c.id)
        )
        return int(added.scalar_one())
    return (await contacts.create_sender(conn, channel, address, now, language=language)).address_id


async def contact_of(conn: AsyncConnection, address_id: int) -> int:
    return int((await conn.execute(select(ADDRESSES.c.contact_id).where(ADDRESSES.c.id == address_id))).scalar_one())


async def subscriptions_of(
    conn: AsyncConnection, address_id: int, *, statuses: Sequence[SubscriptionStatus] = ()
) -> list[SubscriptionRow]:
    query = select(SUBSCRIPTIONS).where(SUBSCRIPTIONS.c.address_id == address_id).order_by(SUBSCRIPTIONS.c.id)
    if statuses:
        query = query.where(SUBSCRIPTIONS.c.status.in_([s.value for s in statuses]))
    return [_subscription(r) for r in await conn.execute(query)]


async def subscription_by_id(conn: AsyncConnection, subscription_id: int) -> SubscriptionRow | None:
    row = (await conn.execute(select(SUBSCRIPTIONS).where(SUBSCRIPTIONS.c.id == subscription_id))).one_or_none()
    return None if row is None else _subscription(row)


async def request(
    conn: AsyncConnection,
    *,
    address_id: int,
    topic_id: int,
    area_id: int | None,
    language: str,
    confirm_hash: str | None,
    confirm_expires_at: datetime | None,
    now: datetime,
) -> SubscriptionRow:
    """Ask for a subscription: an active one stays active; an ended or pending one becomes pending again with the
    new confirmation; otherwise a new pending one."""
    same_area = SUBSCRIPTIONS.c.area_id.is_(None) if area_id is None else SUBSCRIPTIONS.c.area_id == area_id
    existing = (
        await conn.execute(
            select(SUBSCRIPTIONS).where(
                SUBSCRIPTIONS.c.address_id == address_id, SUBSCRIPTIONS.c.topic_id == topic_id, same_area
            )
        )
    ).one_or_none()
    pending = {
        "status": SubscriptionStatus.PENDING.value,
        "language": language,
        "confirm_hash": confirm_hash,
        "confirm_expires_at": confirm_expires_at,
        "confirm_attempts": 0,
        "ended_at": None,
        "ended_reason": None,
    }
    if existing is None:
        new_id = (
            await conn.execute(
                insert(SUBSCRIPTIONS)
                .values(address_id=address_id, topic_id=topic_id, area_id=area_id, created_at=now, **pending)
                .returning(SUBSCRIPTIONS.c.id)
            )
        ).scalar_one()
        return SubscriptionRow(new_id, address_id, topic_id, area_id, SubscriptionStatus.PENDING, language)
    if existing.status == SubscriptionStatus.ACTIVE.value:
        return _subscription(existing)
    await conn.execute(update(SUBSCRIPTIONS).where(SUBSCRIPTIONS.c.id == existing.id).values(**pending))
    return SubscriptionRow(existing.id, address_id, topic_id, area_id, SubscriptionStatus.PENDING, language)


async def activate(conn: AsyncConnection, subscription_ids: Sequence[int], now: datetime) -> None:
    await conn.execute(
        update(SUBSCRIPTIONS)
        .where(SUBSCRIPTIONS.c.id.in_(subscription_ids))
        .values(
            status=SubscriptionStatus.ACTIVE.value,
            confirmed_at=now,
            confirm_hash=None,
            confirm_expires_at=None,
            ended_at=None,
            ended_reason=None,
        )
    )


async def count_failed_attempt(conn: AsyncConnection, subscription_ids: Sequence[int]) -> None:
    await conn.execute(
        update(SUBSCRIPTIONS)
        .where(SUBSCRIPTIONS.c.id.in_(subscription_ids))
        .values(confirm_attempts=SUBSCRIPTIONS.c.confirm_attempts + 1)
    )


async def pending_confirmations(
    conn: AsyncConnection, address_id: int
) -> list[tuple[int, str | None, datetime | None, int]]:
    """(subscription id, confirm hash, expiry, failed attempts) of the address's pending subscriptions."""
    rows = await conn.execute(
        select(
            SUBSCRIPTIONS.c.id,
            SUBSCRIPTIONS.c.confirm_hash,
            SUBSCRIPTIONS.c.confirm_expires_at,
            SUBSCRIPTIONS.c.confirm_attempts,
        ).where(SUBSCRIPTIONS.c.address_id == address_id, SUBSCRIPTIONS.c.status == SubscriptionStatus.PENDING.value)
    )
    return [(r.id, r.confirm_hash, r.confirm_expires_at, r.confirm_attempts) for r in rows]


async def end(
    conn: AsyncConnection,
    *,
    reason: str,
    now: datetime,
    address_id: int | None = None,
    subscription_ids: Sequence[int] | None = None,
) -> list[SubscriptionRow]:
    """End the live (pending or active) subscriptions of an address, or these ones; returns those it ended."""
    conditions = [SUBSCRIPTIONS.c.status.in_(LIVE)]
    if address_id is not None:
        conditions.append(SUBSCRIPTIONS.c.address_id == address_id)
    if subscription_ids is not None:
        conditions.append(SUBSCRIPTIONS.c.id.in_(subscription_ids))
    rows = await conn.execute(
        update(SUBSCRIPTIONS)
        .where(and_(*conditions))
        .values(status=SubscriptionStatus.ENDED.value, ended_at=now, ended_reason=reason, confirm_hash=None)
        .returning(*SUBSCRIPTIONS.c)
    )
    return [_subscription(r) for r in rows]


async def ended_by(conn: AsyncConnection, address_id: int, reason: str) -> list[SubscriptionRow]:
    rows = await conn.execute(
        select(SUBSCRIPTIONS).where(
            SUBSCRIPTIONS.c.address_id == address_id,
            SUBSCRIPTIONS.c.status == SubscriptionStatus.ENDED.value,
            SUBSCRIPTIONS.c.ended_reason == reason,
            SUBSCRIPTIONS.c.confirmed_at.is_not(None),
        )
    )
    return [_subscription(r) for r in rows]


async def set_opted_out(conn: AsyncConnection, address_id: int, at: datetime | None) -> None:
    """Mark the address opted out (at a time) or lift the opt-out (None)."""
    await conn.execute(update(ADDRESSES).where(ADDRESSES.c.id == address_id).values(opted_out_at=at))


async def record_consent(
    conn: AsyncConnection,
    *,
    address_id: int,
    channel: ChannelKind,
    action: ConsentAction,
    method: str,
    wording: str,
    now: datetime,
    topic_ids: Sequence[int | None] = (None,),
    area_id: int | None = None,
    provider_id: str | None = None,
    language: str = "en",
) -> None:
    """One consent row per topic (None: every topic), in one statement: the CASL record, never updated."""
    await conn.execute(
        insert(CONSENTS),
        [
            {
                "address_id": address_id,
                "channel": channel.value,
                "topic_id": topic_id,
                "area_id": area_id,
                "action": action.value,
                "method": method,
                "wording": wording,
                "provider_id": provider_id,
                "language": language,
                "created_at": now,
            }
            for topic_id in topic_ids
        ],
    )


async def consents_of(conn: AsyncConnection, address_id: int) -> list[dict[str, Any]]:
    rows = await conn.execute(select(CONSENTS).where(CONSENTS.c.address_id == address_id).order_by(CONSENTS.c.id))
    return [dict(r._mapping) for r in rows]


async def take_receipt(
    conn: AsyncConnection, channel: ChannelKind, provider_id: str, keyword: str, now: datetime
) -> bool:
    """Record that this provider message is being handled as a keyword; False if it was handled before."""
    taken = await conn.execute(
        insert_or_ignore(conn, RECEIPTS)
        .values(channel=channel.value, provider_id=provider_id, keyword=keyword, created_at=now)
        .returning(RECEIPTS.c.id)
    )
    return taken.scalar_one_or_none() is not None


# --- the resident pages and the topics/areas API (carehub/subscriptions/endpoints.py) ---


async def existing_address_id(conn: AsyncConnection, channel: ChannelKind, address: str) -> int | None:
    """The address's id if we know it; unlike address_id_for, never creates one."""
    found = (
        await conn.execute(
            select(ADDRESSES.c.id).where(ADDRESSES.c.channel == channel.value, ADDRESSES.c.address == address)
        )
    ).scalar_one_or_none()
    return None if found is None else int(found)


async def upsert_topic(
    conn: AsyncConnection,
    *,
    slug: str,
    keyword: str,
    name_en: str,
    name_fr: str,
    active: bool,
    sort_order: int | None,
    now: datetime,
) -> tuple[TopicRow, bool]:
    """Create the topic or change it in place (its id, and so its subscriptions, stay); (topic, created)."""
    values: dict[str, Any] = {"keyword": keyword, "name_en": name_en, "name_fr": name_fr, "active": active}
    if sort_order is not None:
        values["sort_order"] = sort_order
    existing = await topic_by(conn, slug=slug)
    if existing is None:
        row = (
            await conn.execute(insert(TOPICS).values(slug=slug, created_at=now, **values).returning(*TOPICS.c))
        ).one()
        return _topic(row), True
    row = (
        await conn.execute(update(TOPICS).where(TOPICS.c.id == existing.id).values(**values).returning(*TOPICS.c))
    ).one()
    return _topic(row), False


async def address_by_id_or_none(conn: AsyncConnection, address_id: int) -> str | None:
    """The address itself (a number or an email address), or None if there is no such address."""
    found = (await conn.execute(select(ADDRESSES.c.address).where(ADDRESSES.c.id == address_id))).scalar_one_or_none()
    return None if found is None else str(found)


# --- address points (carehub/subscriptions/addresses.py, `carehub load-address-points`) ---
