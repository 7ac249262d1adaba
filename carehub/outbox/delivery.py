"""The one delivery path: claim outbox rows, send them through their channel adapters, record the outcomes.

Run by arq workers (production; a job carries one row, or a batch of rows that were due together) and by the
in-process runner (embedded). Safe to run more than once per row: the claim is a conditional UPDATE, so a second
run finds nothing due and sends nothing.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from enum import StrEnum

from carehub.alerts.compose import compose_alerts
from carehub.alerts.fallback import stage_fallback
from carehub.alerts.fanout import enqueue_paced
from carehub.clock import utcnow
from carehub.mail import repository as mail
from carehub.mail.compose import compose_many, compose_notice
from carehub.mail.ingest import reprocess_stale
from carehub.outbox import repository as outbox
from carehub.outbox.dispatch import Job
from carehub.outbox.repository import ALERT_LOOKAHEAD, ClaimedDelivery
from carehub.runtime import Runtime
from carehub.settings import Settings
from carehub.subscriptions import service as subscriptions
from carehub.webhooks.outbound import webhook_targets
from channels.base import (
    AmbiguousSendError,
    ChannelKind,
    OutboundEmail,
    OutboundEnvelope,
    OutboundWebhook,
    PermanentSendError,
    SendResult,
    TransientSendError,
)

log = logging.getLogger("carehub.delivery")


class Outcome(StrEnum):
    NOT_DUE = "not-due"
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    HELD = "held"
    WITHDRAWN = "withdrawn"  # an alert delivery cancelled or suppressed between its claim and its slot


def backoff_seconds(settings: Settings, attempts: int, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter (so a provider outage does not end in a synchronised stampede)."""
    base = min(settings.delivery_backoff_max_seconds, settings.delivery_backoff_seconds * 2.0 ** max(0, attempts - 1))
    delay = base * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security
    return max(delay, retry_after or 0.0)


async def deliver(rt: Runtime, outbox_id: int) -> Outcome:
    return (await deliver_many(rt, [outbox_id])).get(outbox_id, Outcome.NOT_DUE)


async def deliver_many(rt: Runtime, outbox_ids: Sequence[int]) -> dict[int, Outcome]:
    """Deliver these rows: claim the due ones and compose their messages together (a few statements for any
    number), send them concurrently, and record the sends together. Rows not due are left alone (NOT_DUE)."""
    settings = rt.settings
    now = utcnow()
    outcomes: dict[int, Outcome] = {}
    ready: list[tuple[ClaimedDelivery, OutboundEnvelope]] = []
    async with rt.transaction() as tx:
        lease = timedelta(seconds=settings.delivery_lease_for(len(outbox_ids), paced=True))
        claimed = await outbox.claim_many(tx.conn, outbox_ids, now, lease, ALERT_LOOKAHEAD)
        live = []
        for c in claimed:
            if c.attempts > settings.delivery_max_attempts:
                error = f"gave up after {c.attempts - 1} attempts"
                await outbox.mark_failed(tx.conn, c.id, code="attempts", error=error, now=now)
                outcomes[c.id] = Outcome.FAILED
            else:
                live.append(c)
        alert_texts = await compose_alerts(rt, tx.conn, live)
        mailed = [c for c in live if c.channel is ChannelKind.EMAIL and c.alert_id is None]
        emails: dict[int, OutboundEmail | PermanentSendError] = {
            c.id: compose_notice(rt, c) for c in mailed if c.message_id is None
        }
        emails.update(await compose_many(rt, tx.conn, [c.id for c in mailed if c.message_id is not None]))
        hooks = await webhook_targets(tx.conn, [c for c in live if c.channel is ChannelKind.WEBHOOK])
        for c in live:
            if c.id in alert_texts:
                body, email = alert_texts[c.id]
                ready.append((replace(c, body=body), _envelope(rt, replace(c, body=body), email)))
                continue
            hook = hooks.get(c.id)  # a webhook whose endpoint was deactivated fails like mail that cannot be composed
            composed = hook if isinstance(hook, PermanentSendError) else emails.get(c.id)
            if isinstance(composed, PermanentSendError):
                await outbox.mark_failed(tx.conn, c.id, code=composed.code, error=composed.message, now=now)
                outcomes[c.id] = Outcome.FAILED
            else:
                ready.append((c, _envelope(rt, c, composed, hook)))
    if ready:
        outcomes.update(await _send_and_record(rt, ready))
    return outcomes


def _envelope(
    rt: Runtime,
    claimed: ClaimedDelivery,
    email: OutboundEmail | None,
    webhook: OutboundWebhook | PermanentSendError | None = None,
) -> OutboundEnvelope:
    return OutboundEnvelope(
        outbox_id=claimed.id,
        channel=claimed.channel,
        to=claimed.to_address,
        body=claimed.body,
        status_callback_url=rt.status_callback_url(claimed.channel, claimed.id),
        email=email,
        webhook=webhook if isinstance(webhook, OutboundWebhook) else None,
    )


class _LastLook:
    """Alert deliveries are claimed up to ALERT_LOOKAHEAD before their slot; when a slot comes, the row is looked at
    once more (cancelled alert? STOP since?) before it goes. Rows waking within a few milliseconds of each other
    share one statement, so a fast alert costs a few checks per second, not one per message."""

    GATHER_SECONDS = 0.01

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._waiting: dict[int, asyncio.Future[bool]] = {}
        self._flush: asyncio.Task[None] | None = None

    async def still_wanted(self, outbox_id: int) -> bool:
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting[outbox_id] = answer
        if self._flush is None:
            self._flush = asyncio.create_task(self._check_soon())
        return await answer

    async def _check_soon(self) -> None:
        await asyncio.sleep(self.GATHER_SECONDS)
        waiting, self._waiting, self._flush = self._waiting, {}, None
        try:
            async with self._rt.transaction() as tx:
                withdrawn = await outbox.withdraw_unwanted(tx.conn, list(waiting), utcnow())
        except Exception as exc:  # the rows stay claimed: the lease runs out and the sweeper takes them again
            for answer in waiting.values():
                answer.set_exception(exc)
            return
        for outbox_id, answer in waiting.items():
            answer.set_result(outbox_id not in withdrawn)


async def _send_and_record(rt: Runtime, ready: list[tuple[ClaimedDelivery, OutboundEnvelope]]) -> dict[int, Outcome]:
    done: dict[int, SendResult | Outcome] = {}
    # A batch of a hundred must not be a hundred simultaneous calls to a provider with a concurrency limit.
    slots = asyncio.Semaphore(rt.settings.delivery_batch_concurrency)
    last_look = _LastLook(rt)

    async def one(claimed: ClaimedDelivery, envelope: OutboundEnvelope) -> None:
        if claimed.send_at is not None:  # an alert delivery claimed ahead of its slot waits for it, then looks again
            await asyncio.sleep(max(0.0, (claimed.send_at - utcnow()).total_seconds()))
            if not await last_look.still_wanted(claimed.id):
                done[claimed.id] = Outcome.WITHDRAWN
                return
        async with slots:
            done[claimed.id] = await _send(rt, claimed, envelope)

    try:
        await asyncio.gather(*(one(claimed, envelope) for claimed, envelope in ready))
    finally:
        # Even if this job is being cancelled: the providers have these, so record that (shielded) before leaving.
        sent = [(outbox_id, r.provider_id) for outbox_id, r in done.items() if isinstance(r, SendResult)]
        if sent:
            await asyncio.shield(_record_sent(rt, sent))
    return {outbox_id: Outcome.SENT if isinstance(r, SendResult) else r for outbox_id, r in done.items()}


async def _record_sent(rt: Runtime, sent: list[tuple[int, str]]) -> None:
    async with rt.transaction() as tx:
        await outbox.mark_sent(tx.conn, sent, utcnow())


async def _send(rt: Runtime, claimed: ClaimedDelivery, envelope: OutboundEnvelope) -> SendResult | Outcome:
    """One send; a failure is settled here (retry, fail, hold), a success is returned for recording."""
    try:
        return await rt.adapters[claimed.channel].send(envelope)
    except TransientSendError as exc:
        return await _retry_or_fail(rt, claimed.id, claimed.attempts, exc)
    except PermanentSendError as exc:
        async with rt.transaction() as tx:
            now = utcnow()
            await outbox.mark_failed(tx.conn, claimed.id, code=exc.code, error=exc.message, now=now)
            if exc.opted_out:  # the carrier's opt-out ends subscriptions too, and is recorded (CASL)
                await subscriptions.opt_out(
                    tx.conn,
                    channel=claimed.channel,
                    address=claimed.to_address,
                    method=subscriptions.Method.PROVIDER_OPT_OUT,
                    wording=f"Twilio error {exc.code}: the recipient has opted out",
                    now=now,
                )
            if claimed.channel is ChannelKind.EMAIL and exc.bad_address:
                # The receiving server refused the mailbox itself: a bounce, only sooner.
                await mail.mark_undeliverable(tx.conn, claimed.to_address, exc.message, now)
            fallback = [] if exc.opted_out else await stage_fallback(tx.conn, rt, claimed.id, now)
        await enqueue_paced(rt, fallback)
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


async def sweep_all(rt: Runtime) -> int:
    """What the sweeper (embedded loop or arq cron) finds again: outbox rows whose job was lost, and stored mail
    a crash left unprocessed."""
    return await sweep(rt) + await reprocess_stale(rt)


async def sweep(rt: Runtime, limit: int = 1000) -> int:
    """Re-enqueue rows whose job was lost (Redis flushed or restarted, worker killed mid-send)."""
    now = utcnow()
    async with rt.transaction() as tx:
        due = await outbox.due_for_sweep(tx.conn, now, timedelta(seconds=rt.settings.sweep_grace_seconds), limit)
    if due and rt.dispatcher is not None:
        await rt.dispatcher.enqueue([Job(outbox_id, attempts) for outbox_id, attempts in due])
        log.info("sweeper re-enqueued %d deliveries", len(due))
    return len(due)
