"""Subscription rules: ask (double opt-in), confirm, unsubscribe, opt out of everything (STOP) and back in (START).
Every change of consent is recorded as CASL expects. Functions take the caller's transaction and never commit.

Opt-out is immediate: the address is marked and its subscriptions end in the caller's transaction, and an alert
delivery is claimed only while its subscription is active (outbox.repository.claim_many), so nothing is sent to
an address after its STOP has been committed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.contacts import repository as contacts
from carehub.models import ConsentAction, SubscriptionStatus
from carehub.settings import Settings
from carehub.subscriptions import repository as subs
from carehub.subscriptions.repository import SubscriptionRow
from channels.base import ChannelKind

MAX_CONFIRM_ATTEMPTS = 5
OPT_OUT = "opt_out"  # why a subscription ended: STOP (START restores these)
UNSUBSCRIBED = "unsubscribed"  # the resident ended this one subscription
EXPIRED = "expired"


class Method:
    """How consent was given or withdrawn, as recorded."""

    WEB_FORM = "web_form"
    SMS_KEYWORD = "sms_keyword"
    EMAIL_LINK = "email_link"
    ONE_CLICK = "one_click"
    PROVIDER_OPT_OUT = "provider_opt_out"  # Twilio error 21610: the carrier says this number opted out
    STAFF = "staff"


@dataclass(frozen=True)
class Requested:
    address_id: int
    subscriptions: list[SubscriptionRow]
    code: str | None  # the confirmation code or link token to send; None if every one was already active


def confirm_hash(address_id: int, code: str) -> str:
    """What is stored of a confirmation code: never the code itself."""
    return hashlib.sha256(f"{address_id}:{code.strip().upper()}".encode()).hexdigest()


def new_code(channel: ChannelKind) -> str:
    """Six digits to type back (SMS, web form), or a long token for a link in mail."""
    if channel is ChannelKind.SMS:
        return f"{secrets.randbelow(1_000_000):06d}"
    return secrets.token_urlsafe(24)


async def request(
    conn: AsyncConnection,
    settings: Settings,
    *,
    channel: ChannelKind,
    address: str,
    topic_ids: Sequence[int],
    area_id: int | None,
    language: str,
    method: str,
    wording: str,
    now: datetime,
    provider_id: str | None = None,
    code: str | None = None,
    contact_id: int | None = None,
) -> Requested:
    """Ask for subscriptions to these topics: pending until confirmed with the returned code (double opt-in).
    A code may be given (the SMS keyword flow confirms by replying YES, so possession of the phone is the proof).
    `contact_id`: the resident's other address asked in the same form (see repository.address_id_for)."""
    address_id = await subs.address_id_for(conn, channel, address, now, language=language, contact_id=contact_id)
    code = code or new_code(channel)
    expires = now + timedelta(minutes=settings.subscription_confirm_minutes)
    rows = [
        await subs.request(
            conn,
            address_id=address_id,
            topic_id=topic_id,
            area_id=area_id,
            language=language,
            confirm_hash=confirm_hash(address_id, code),
            confirm_expires_at=expires,
            now=now,
        )
        for topic_id in topic_ids
    ]
    asked = [r for r in rows if r.status is SubscriptionStatus.PENDING]
    if asked:
        await subs.record_consent(
            conn,
            address_id=address_id,
            channel=channel,
            action=ConsentAction.REQUESTED,
            method=method,
            wording=wording,
            now=now,
            topic_ids=[r.topic_id for r in asked],
            area_id=area_id,
            provider_id=provider_id,
            language=language,
        )
    return Requested(address_id, rows, code if asked else None)


async def confirm(
    conn: AsyncConnection,
    *,
    channel: ChannelKind,
    address_id: int,
    code: str | None,
    method: str,
    wording: str,
    now: datetime,
    provider_id: str | None = None,
    language: str = "en",
) -> list[SubscriptionRow] | None:
    """Confirm the address's pending subscriptions: with their code, or (code None) because the resident answered
    YES from the address itself. Returns the subscriptions now active, or None if the code is wrong, expired or
    tried too often (each wrong try counts)."""
    pending = await subs.pending_confirmations(conn, address_id)
    live = [p for p in pending if p[2] is not None and p[2] > now and p[3] < MAX_CONFIRM_ATTEMPTS]
    if code is None:
        matched = [p[0] for p in live]
    else:
        wanted = confirm_hash(address_id, code)
        matched = [p[0] for p in live if p[1] is not None and hmac.compare_digest(p[1], wanted)]
        if not matched:
            await subs.count_failed_attempt(conn, [p[0] for p in live])
            return None
    if not matched:
        return None
    await subs.activate(conn, matched, now)
    await subs.set_opted_out(conn, address_id, None)  # asking again lifts an earlier STOP
    active = [s for s in await subs.subscriptions_of(conn, address_id) if s.id in matched]
    await subs.record_consent(
        conn,
        address_id=address_id,
        channel=channel,
        action=ConsentAction.GIVEN,
        method=method,
        wording=wording,
        now=now,
        topic_ids=[s.topic_id for s in active],
        provider_id=provider_id,
        language=language,
    )
    return active


async def unsubscribe(
    conn: AsyncConnection,
    *,
    subscription_id: int,
    method: str,
    wording: str,
    now: datetime,
) -> SubscriptionRow | None:
    """End one subscription (an unsubscribe link, one-click); None if it had already ended or does not exist."""
    found = await subs.subscription_by_id(conn, subscription_id)
    if found is None:
        return None
    ended = await subs.end(conn, reason=UNSUBSCRIBED, now=now, subscription_ids=[subscription_id])
    if not ended:
        return None
    address = await contacts.address_by_id(conn, found.address_id)
    await subs.record_consent(
        conn,
        address_id=found.address_id,
        channel=address.channel,
        action=ConsentAction.WITHDRAWN,
        method=method,
        wording=wording,
        now=now,
        topic_ids=[found.topic_id],
        area_id=found.area_id,
        language=found.language,
    )
    return ended[0]


async def opt_out(
    conn: AsyncConnection,
    *,
    channel: ChannelKind,
    address: str,
    method: str,
    wording: str,
    now: datetime,
    provider_id: str | None = None,
    language: str = "en",
) -> list[SubscriptionRow]:
    """Everything stops for this address (STOP, a carrier's opt-out): it is marked opted out and every live
    subscription ends. Recorded even for an address we never wrote to. Returns the subscriptions it ended."""
    address_id = await subs.address_id_for(conn, channel, address, now, language=language)
    await subs.set_opted_out(conn, address_id, now)
    ended = await subs.end(conn, reason=OPT_OUT, now=now, address_id=address_id)
    await subs.record_consent(
        conn,
        address_id=address_id,
        channel=channel,
        action=ConsentAction.WITHDRAWN,
        method=method,
        wording=wording,
        now=now,
        provider_id=provider_id,
        language=language,
    )
    return ended


async def opt_in_again(
    conn: AsyncConnection,
    *,
    channel: ChannelKind,
    address: str,
    method: str,
    wording: str,
    now: datetime,
    provider_id: str | None = None,
    language: str = "en",
) -> list[SubscriptionRow]:
    """START: lift the opt-out and restore the confirmed subscriptions STOP ended. Returns those restored."""
    address_id = await subs.address_id_for(conn, channel, address, now, language=language)
    await subs.set_opted_out(conn, address_id, None)
    restored = await subs.ended_by(conn, address_id, OPT_OUT)
    if restored:
        await subs.activate(conn, [s.id for s in restored], now)
    await subs.record_consent(
        conn,
        address_id=address_id,
        channel=channel,
        action=ConsentAction.GIVEN,
        method=method,
        wording=wording,
        now=now,
        topic_ids=[s.topic_id for s in restored] or [None],
        provider_id=provider_id,
        language=language,
    )
    return restored
