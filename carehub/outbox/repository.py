"""Outbox queries. Every status change is one conditional UPDATE, so racing workers and callbacks cannot go back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, bindparam, case, exists, func, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.db import UTCDateTime
from carehub.models import Alert, AlertStatus, ContactAddress, Message, Outbox, Subscription, SubscriptionStatus
from carehub.settings import ALERT_LOOKAHEAD_SECONDS
from channels.base import ChannelKind, DeliveryStatus, StatusUpdate

OUTBOX = Outbox.__table__  # type: ignore[attr-defined]
MESSAGES = Message.__table__  # type: ignore[attr-defined]
SUBSCRIPTIONS = Subscription.__table__  # type: ignore[attr-defined]
ALERTS = Alert.__table__  # type: ignore[attr-defined]
ADDRESSES = ContactAddress.__table__  # type: ignore[attr-defined]

ALERT_LOOKAHEAD = timedelta(seconds=ALERT_LOOKAHEAD_SECONDS)  # see carehub.settings

_RANK = {
    DeliveryStatus.QUEUED: 0,
    DeliveryStatus.SENDING: 1,
    DeliveryStatus.SENT: 2,
    DeliveryStatus.DELIVERED: 3,
    DeliveryStatus.UNDELIVERED: 3,
    DeliveryStatus.FAILED: 3,
    DeliveryStatus.SUPPRESSED: 3,
    DeliveryStatus.CANCELLED: 3,
}


def statuses_below(status: DeliveryStatus) -> list[str]:
    """The statuses a row may move to `status` from: strictly lower rank, so final states never change."""
    return [s.value for s, rank in _RANK.items() if rank < _RANK[status]]


@dataclass(frozen=True)
class ClaimedDelivery:
    id: int
    channel: ChannelKind
    to_address: str
    attempts: int
    body: str  # empty for an alert delivery: its text is the alert's, in `language`
    message_id: int | None = None  # the ticket message it delivers; None for a notice or an alert
    alert_id: int | None = None
    subscription_id: int | None = None
    language: str | None = None
    send_at: datetime | None = None  # an alert delivery's slot at the sender's rate: not sent before it
    subject: str | None = None  # a mailed notice's subject
    created_at: datetime | None = None
    webhook_id: int | None = None  # a webhook delivery: to which endpoint, of which event (body: the event JSON)
    event_id: str | None = None


async def stage(
    conn: AsyncConnection,
    *,
    message_id: int | None,
    channel: ChannelKind,
    to_address: str,
    now: datetime,
    body: str | None = None,
    subject: str | None = None,
) -> int:
    """A delivery of a ticket's message, or (message_id None) of its own text."""
    result = await conn.execute(
        insert(OUTBOX)
        .values(
            message_id=message_id,
            body=body,
            subject=subject,
            channel=channel.value,
            to_address=to_address,
            status=DeliveryStatus.QUEUED.value,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
        .returning(OUTBOX.c.id)
    )
    return int(result.scalar_one())


def _claimable(now: datetime, lookahead: timedelta) -> ColumnElement[bool]:
    """Due (an alert delivery's slot may be up to `lookahead` ahead: the sender waits for it), or held by a lease
    that has run out."""
    return or_(
        and_(
            OUTBOX.c.status == DeliveryStatus.QUEUED.value,
            OUTBOX.c.next_attempt_at
            <= case(
                (OUTBOX.c.alert_id.is_(None), literal(now, UTCDateTime)), else_=literal(now + lookahead, UTCDateTime)
            ),
        ),
        and_(OUTBOX.c.status == DeliveryStatus.SENDING.value, OUTBOX.c.lease_until < now),
    )


def _still_wanted() -> ColumnElement[bool]:
    """An alert delivery whose subscription is still active and whose address has not opted out since staging."""
    return exists(
        select(1)
        .select_from(SUBSCRIPTIONS.join(ADDRESSES, ADDRESSES.c.id == SUBSCRIPTIONS.c.address_id))
        .where(
            SUBSCRIPTIONS.c.id == OUTBOX.c.subscription_id,
            SUBSCRIPTIONS.c.status == SubscriptionStatus.ACTIVE.value,
            ADDRESSES.c.opted_out_at.is_(None),
        )
    )


def _alert_cancelled() -> ColumnElement[bool]:
    return exists(select(1).where(ALERTS.c.id == OUTBOX.c.alert_id, ALERTS.c.status == AlertStatus.CANCELLED.value))


def _withdrawal() -> dict[str, object]:
    """What an alert delivery that must not go out becomes: cancelled with its alert, else suppressed."""
    cancelled = _alert_cancelled()
    return {
        "status": case((cancelled, DeliveryStatus.CANCELLED.value), else_=DeliveryStatus.SUPPRESSED.value),
        "last_error": case(
            (cancelled, "the alert was cancelled"),
            else_="the resident opted out or unsubscribed before this was sent",
        ),
        "lease_until": None,
    }


async def withdraw_unwanted(conn: AsyncConnection, outbox_ids: Sequence[int], now: datetime) -> set[int]:
    """Of these claimed alert deliveries, take back those whose alert was cancelled or whose resident opted out
    since they were claimed (right before sending: a claim may be up to ALERT_LOOKAHEAD ahead of its slot)."""
    result = await conn.execute(
        update(OUTBOX)
        .where(
            OUTBOX.c.id.in_(outbox_ids),
            OUTBOX.c.status == DeliveryStatus.SENDING.value,
            OUTBOX.c.alert_id.is_not(None),
            or_(_alert_cancelled(), ~_still_wanted()),
        )
        .values(**_withdrawal(), updated_at=now)
        .returning(OUTBOX.c.id)
    )
    return {int(r.id) for r in result}


async def claim_many(
    conn: AsyncConnection,
    outbox_ids: Sequence[int],
    now: datetime,
    lease: timedelta,
    lookahead: timedelta = timedelta(0),
) -> list[ClaimedDelivery]:
    """Take the rows among outbox_ids that are due and that nobody holds a live lease on, in one statement. Alert
    deliveries whose resident has opted out or unsubscribed since are marked suppressed instead (cancelled, if
    their alert was), never claimed: a STOP committed before this statement is always honoured."""
    claimable = _claimable(now, lookahead)
    await conn.execute(
        update(OUTBOX)
        .where(
            OUTBOX.c.id.in_(outbox_ids),
            OUTBOX.c.alert_id.is_not(None),
            claimable,
            or_(_alert_cancelled(), ~_still_wanted()),
        )
        .values(**_withdrawal(), updated_at=now)
    )
    result = await conn.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id.in_(outbox_ids), claimable)
        .values(
            status=DeliveryStatus.SENDING.value,
            lease_until=now + lease,
            attempts=OUTBOX.c.attempts + 1,
            updated_at=now,
        )
        .returning(
            OUTBOX.c.id,
            OUTBOX.c.channel,
            OUTBOX.c.to_address,
            OUTBOX.c.attempts,
            OUTBOX.c.message_id,
            OUTBOX.c.body,
            OUTBOX.c.alert_id,
            OUTBOX.c.subscription_id,
            OUTBOX.c.language,
            OUTBOX.c.next_attempt_at,
            OUTBOX.c.subject,
            OUTBOX.c.created_at,
            OUTBOX.c.webhook_id,
            OUTBOX.c.event_id,
        )
    )
    rows = sorted(result.all(), key=lambda r: r.id)
    if not rows:
        return []
    message_ids = [r.message_id for r in rows if r.message_id is not None]
    bodies: dict[int, str] = {}
    if message_ids:
        found = await conn.execute(select(MESSAGES.c.id, MESSAGES.c.body).where(MESSAGES.c.id.in_(message_ids)))
        bodies = {row.id: row.body for row in found}
    return [
        ClaimedDelivery(
            id=r.id,
            channel=ChannelKind(r.channel),
            to_address=r.to_address,
            attempts=r.attempts,
            body=bodies[r.message_id] if r.message_id is not None else (r.body or ""),
            message_id=r.message_id,
            alert_id=r.alert_id,
            subscription_id=r.subscription_id,
            language=r.language,
            send_at=r.next_attempt_at if r.alert_id is not None else None,
            subject=r.subject,
            created_at=r.created_at,
            webhook_id=r.webhook_id,
            event_id=r.event_id,
        )
        for r in rows
    ]


async def mark_sent(conn: AsyncConnection, sent: Sequence[tuple[int, str]], now: datetime) -> None:
    """Record (outbox id, provider id) pairs as sent, in one executemany."""
    # A status callback may have overtaken us (delivered before we committed "sent"): keep its status.
    await conn.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id == bindparam("sent_id"))
        .values(
            status=case(
                (OUTBOX.c.status == DeliveryStatus.SENDING.value, DeliveryStatus.SENT.value),
                else_=OUTBOX.c.status,
            ),
            provider_id=func.coalesce(OUTBOX.c.provider_id, bindparam("sent_provider_id")),
            sent_at=func.coalesce(OUTBOX.c.sent_at, now),
            lease_until=None,
            error_code=None,
            last_error=None,
            updated_at=now,
        ),
        [{"sent_id": outbox_id, "sent_provider_id": provider_id} for outbox_id, provider_id in sent],
    )


async def _settle_attempt(conn: AsyncConnection, outbox_id: int, **values: object) -> bool:
    """Record how the current attempt ended, only if the row is still in it (a callback may have settled it)."""
    result = await conn.execute(
        update(OUTBOX).where(OUTBOX.c.id == outbox_id, OUTBOX.c.status == DeliveryStatus.SENDING.value).values(**values)
    )
    return result.rowcount == 1


async def mark_retry(
    conn: AsyncConnection, outbox_id: int, *, at: datetime, code: str | None, error: str, now: datetime
) -> bool:
    return await _settle_attempt(
        conn,
        outbox_id,
        status=DeliveryStatus.QUEUED.value,
        next_attempt_at=at,
        lease_until=None,
        error_code=code,
        last_error=error[:1000],
        updated_at=now,
    )


async def mark_failed(conn: AsyncConnection, outbox_id: int, *, code: str | None, error: str, now: datetime) -> bool:
    return await _settle_attempt(
        conn,
        outbox_id,
        status=DeliveryStatus.FAILED.value,
        lease_until=None,
        error_code=code,
        last_error=error[:1000],
        updated_at=now,
    )


async def hold(conn: AsyncConnection, outbox_id: int, *, until: datetime, error: str, now: datetime) -> None:
    """Keep the row 'sending' with a long lease: a status callback will settle it, or the sweeper retries later."""
    await _settle_attempt(conn, outbox_id, lease_until=until, last_error=error[:1000], updated_at=now)


async def apply_status(conn: AsyncConnection, channel: ChannelKind, update_: StatusUpdate, now: datetime) -> int | None:
    """Move a delivery forward to the provider's status; returns the row id, or None if nothing moved."""
    status = update_.status
    if status is None:
        return None
    if update_.outbox_id is not None:
        target = and_(
            OUTBOX.c.id == update_.outbox_id,
            OUTBOX.c.channel == channel.value,
            or_(OUTBOX.c.provider_id.is_(None), OUTBOX.c.provider_id == update_.provider_id),
        )
    else:
        target = and_(OUTBOX.c.channel == channel.value, OUTBOX.c.provider_id == update_.provider_id)
    values: dict[str, object] = {
        "status": status.value,
        "provider_id": update_.provider_id,
        "lease_until": None,
        "updated_at": now,
        "sent_at": func.coalesce(OUTBOX.c.sent_at, now),
    }
    if update_.error_code:
        values["error_code"] = update_.error_code[:32]
        values["last_error"] = (update_.error_message or f"provider error {update_.error_code}")[:1000]
    result = await conn.execute(
        update(OUTBOX)
        .where(target, OUTBOX.c.status.in_(statuses_below(status)))
        .values(**values)
        .returning(OUTBOX.c.id)
    )
    found = result.scalar_one_or_none()
    return None if found is None else int(found)


async def address_of(conn: AsyncConnection, outbox_id: int) -> tuple[ChannelKind, str] | None:
    row = (
        await conn.execute(select(OUTBOX.c.channel, OUTBOX.c.to_address).where(OUTBOX.c.id == outbox_id))
    ).one_or_none()
    return None if row is None else (ChannelKind(row.channel), row.to_address)


async def due_for_sweep(conn: AsyncConnection, now: datetime, grace: timedelta, limit: int) -> list[tuple[int, int]]:
    """Rows whose job should have run by now: queued past their time, or sending with a dead lease."""
    rows = await conn.execute(
        select(OUTBOX.c.id, OUTBOX.c.attempts)
        .where(
            or_(
                and_(OUTBOX.c.status == DeliveryStatus.QUEUED.value, OUTBOX.c.next_attempt_at <= now - grace),
                and_(OUTBOX.c.status == DeliveryStatus.SENDING.value, OUTBOX.c.lease_until < now),
            )
        )
        .order_by(OUTBOX.c.id)
        .limit(limit)
    )
    return [(int(r.id), int(r.attempts)) for r in rows]
