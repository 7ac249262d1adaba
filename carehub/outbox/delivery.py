"""The one delivery path: claim an outbox row, send it through its channel adapter, record the outcome.

Run by arq workers (production) and by the in-process runner (embedded). Safe to run more than once per row:
the claim is a conditional UPDATE, so a second run finds nothing due and sends nothing.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import timedelta
from enum import StrEnum

from carehub.clock import utcnow
from carehub.contacts import repository as contacts
from carehub.mail import repository as mail
from carehub.mail.compose import compose
from carehub.outbox import repository as outbox
from carehub.outbox.dispatch import Job
from carehub.runtime import Runtime
from carehub.settings import Settings
from channels.base import (
    AmbiguousSendError,
    ChannelKind,
    OutboundEnvelope,
    PermanentSendError,
    TransientSendError,
)

log = logging.getLogger("carehub.delivery")


class Outcome(StrEnum):
    NOT_DUE = "not-due"
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    HELD = "held"


def backoff_seconds(settings: Settings, attempts: int, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter (so a provider outage does not end in a synchronised stampede)."""
    base = min(settings.delivery_backoff_max_seconds, settings.delivery_backoff_seconds * 2.0 ** max(0, attempts - 1))
    delay = base * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security
    return max(delay, retry_after or 0.0)


async def deliver(rt: Runtime, outbox_id: int) -> Outcome:
    settings = rt.settings
    now = utcnow()
    async with rt.transaction() as tx:
        claimed = await outbox.claim(tx.conn, outbox_id, now, timedelta(seconds=settings.delivery_lease_seconds))
        if claimed is not None and claimed.attempts > settings.delivery_max_attempts:
            await outbox.mark_failed(
                tx.conn,
                outbox_id,
                code="attempts",
                error=f"gave up after {claimed.attempts - 1} attempts",
                now=now,
            )
            return Outcome.FAILED
        if claimed is None:
            return Outcome.NOT_DUE
        try:
            email = await compose(rt, tx.conn, claimed.id) if claimed.channel is ChannelKind.EMAIL else None
        except PermanentSendError as exc:
            await outbox.mark_failed(tx.conn, claimed.id, code=exc.code, error=exc.message, now=now)
            return Outcome.FAILED

    envelope = OutboundEnvelope(
        outbox_id=claimed.id,
        channel=claimed.channel,
        to=claimed.to_address,
        body=claimed.body,
        status_callback_url=rt.status_callback_url(claimed.channel, claimed.id),
        email=email,
    )
    try:
        result = await rt.adapters[claimed.channel].send(envelope)
    except TransientSendError as exc:
        return await _retry_or_fail(rt, claimed.id, claimed.attempts, exc)
    except PermanentSendError as exc:
        async with rt.transaction() as tx:
            now = utcnow()
            await outbox.mark_failed(tx.conn, claimed.id, code=exc.code, error=exc.message, now=now)
            if exc.opted_out:
                await contacts.mark_opted_out(tx.conn, claimed.channel, claimed.to_address, now)
            if claimed.channel is ChannelKind.EMAIL and exc.bad_address:
                # The receiving server refused the mailbox itself: a bounce, only sooner.
                await mail.mark_undeliverable(tx.conn, claimed.to_address, exc.message, now)
        log.warning("outbox %d failed permanently: %s (%s)", claimed.id, exc.message, exc.code)
        return Outcome.FAILED
    except AmbiguousSendError as exc:
        return await _hold(
            rt,
            claimed.id,
            f"{exc.message}: may have been sent; waiting for the provider's status callback before trying again",
        )
    except Exception as exc:
        # Our own bug, before or after the provider call: we cannot tell which, so treat it like a timeout.
        log.exception("outbox %d: unexpected error while sending", claimed.id)
        return await _hold(rt, claimed.id, f"unexpected error while sending: {exc!r}")

    # The provider has it now: finish recording that even if this job is being cancelled.
    await asyncio.shield(_record_sent(rt, claimed.id, result.provider_id))
    return Outcome.SENT


async def _record_sent(rt: Runtime, outbox_id: int, provider_id: str) -> None:
    async with rt.transaction() as tx:
        await outbox.mark_sent(tx.conn, outbox_id, provider_id, utcnow())


async def _retry_or_fail(rt: Runtime, outbox_id: int, attempts: int, exc: TransientSendError) -> Outcome:
    now = utcnow()
    if attempts >= rt.settings.delivery_max_attempts:
        async with rt.transaction() as tx:
            await outbox.mark_failed(
                tx.conn,
                outbox_id,
                code=exc.code,
                error=f"gave up after {attempts} attempts: {exc.message}",
                now=now,
            )
        return Outcome.FAILED
    at = now + timedelta(seconds=backoff_seconds(rt.settings, attempts, exc.retry_after))
    async with rt.transaction() as tx:
        moved = await outbox.mark_retry(tx.conn, outbox_id, at=at, code=exc.code, error=exc.message, now=now)
    if moved and rt.dispatcher is not None:
        await rt.dispatcher.enqueue([Job(outbox_id, attempts, not_before=at)])
    return Outcome.RETRY


async def _hold(rt: Runtime, outbox_id: int, reason: str) -> Outcome:
    now = utcnow()
    async with rt.transaction() as tx:
        await outbox.hold(
            tx.conn,
            outbox_id,
            until=now + timedelta(seconds=rt.settings.ambiguous_send_hold_seconds),
            error=reason,
            now=now,
        )
    return Outcome.HELD


async def sweep(rt: Runtime, limit: int = 1000) -> int:
    """Re-enqueue rows whose job was lost (Redis flushed or restarted, worker killed mid-send)."""
    now = utcnow()
    async with rt.transaction() as tx:
        due = await outbox.due_for_sweep(tx.conn, now, timedelta(seconds=rt.settings.sweep_grace_seconds), limit)
    if due and rt.dispatcher is not None:
        await rt.dispatcher.enqueue([Job(outbox_id, attempts) for outbox_id, attempts in due])
        log.info("sweeper re-enqueued %d deliveries", len(due))
    return len(due)
