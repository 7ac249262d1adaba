"""The event feed: change capture for webhooks, with no work on the paths that write tickets, messages and alerts.

A periodic tick (an arq cron job in workers/webhooks.py; a timer in the embedded hub) reads what changed since
each source's cursor, turns it into events, and stages one outbox row per subscribed endpoint and event with
INSERT ... ON CONFLICT DO NOTHING, in the transaction that moves the cursor; the rows are enqueued after commit
like every delivery. Each read starts CAREHUB_EVENT_FEED_OVERLAP_SECONDS behind the cursor, so a transaction that
committed late is still seen; event ids are deterministic, so what is read twice is staged once.

- tickets: by updated_at (ix_tickets_updated_at). ticket.created for tickets created in the window read,
  ticket.updated for any change after creation; changes between two ticks coalesce into one ticket.updated with
  the latest state (its id names the ticket and that updated_at).
- messages: by id (the primary key), from a low-water mark that moves only past rows older than the overlap.
- alerts: alert.sent when an alert starts going out (started_at), alert.completed when it finishes (finished_at).

An endpoint gets only events that happened after it was registered.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from carehub.clock import utcnow
from carehub.db import Tx
from carehub.outbox.embedded import EmbeddedSweeper
from carehub.runtime import Runtime
from carehub.webhooks import repository as webhooks
from carehub.webhooks.events import Event, alert_events, message_event, ticket_events
from carehub.webhooks.repository import Cursor

log = logging.getLogger("carehub.webhooks")

TICKETS = "tickets"
MESSAGES = "messages"
ALERTS = "alerts"
PAGE = 500
TO_ADDRESS_CHARS = 320  # outbox.to_address shows the URL; the send reads the endpoint's own


@dataclass(frozen=True)
class Subscriber:
    id: int
    url: str
    events: frozenset[str]
    created_at: datetime


@dataclass(frozen=True)
class FeedResult:
    tickets: int
    messages: int
    alerts: int


async def tick(rt: Runtime, now: datetime | None = None) -> FeedResult:
    """Stage the deliveries of everything that happened since the last tick; returns how many were staged."""
    now = now or utcnow()
    overlap = timedelta(seconds=rt.settings.event_feed_overlap_seconds)
    async with rt.transaction() as tx:
        newest_message = await webhooks.last_message_id(tx.conn)  # read before the endpoints: see _idle
        subscribers = [
            Subscriber(r.id, r.url, frozenset(r.events), r.created_at) for r in await webhooks.active_endpoints(tx.conn)
        ]
    if not subscribers:
        await _idle(rt, now, newest_message)
        return FeedResult(tickets=0, messages=0, alerts=0)
    return FeedResult(
        tickets=await _tickets(rt, subscribers, now, overlap),
        messages=await _messages(rt, subscribers, now, overlap),
        alerts=await _alerts(rt, subscribers, now, overlap),
    )


async def _idle(rt: Runtime, now: datetime, newest_message: int) -> None:
    """Nobody is subscribed (webhooks unused, the default): read nothing, only keep the cursors at the present, so
    the hub pays nothing for the feed and a first endpoint does not start a scan of the whole history. Tickets and
    alerts are re-read an overlap behind their cursor anyway; messages restart after the newest one that existed
    before the endpoints were read, so one committed after an endpoint was registered is never skipped."""
    async with rt.transaction() as tx:
        await webhooks.save_cursor(tx.conn, TICKETS, Cursor(now, 0))
        await webhooks.save_cursor(tx.conn, MESSAGES, Cursor(now, newest_message))
        await webhooks.save_cursor(tx.conn, ALERTS, Cursor(now, 0))


async def _tickets(rt: Runtime, subscribers: Sequence[Subscriber], now: datetime, overlap: timedelta) -> int:
    prefix = rt.settings.ticket_prefix
    async with rt.transaction() as tx:
        position = (await webhooks.cursor(tx.conn, TICKETS) or Cursor(now, 0)).position
    since = position - overlap  # fixed for the whole tick: it decides which tickets count as created
    staged = 0
    after: tuple[datetime, int] | None = None
    while True:
        async with rt.transaction() as tx:
            rows = await webhooks.tickets_changed(tx.conn, since, after, PAGE)
            events = [event for row in rows for event in ticket_events(row, prefix, since)]
            staged += await _stage(tx, subscribers, events, now)
            if rows:
                after = (rows[-1].updated_at, rows[-1].id)
                position = max(position, rows[-1].updated_at)
            await webhooks.save_cursor(tx.conn, TICKETS, Cursor(position, 0))
        if len(rows) < PAGE:
            return staged


async def _messages(rt: Runtime, subscribers: Sequence[Subscriber], now: datetime, overlap: timedelta) -> int:
    prefix = rt.settings.ticket_prefix
    settled = now - overlap  # a message older than this has committed (or never will): the low-water mark may pass
    async with rt.transaction() as tx:
        found = await webhooks.cursor(tx.conn, MESSAGES) or Cursor(now, 0)
    low_water = after = found.last_id
    advancing = True
    staged = 0
    while True:
        async with rt.transaction() as tx:
            rows = await webhooks.messages_after(tx.conn, after, PAGE)
            staged += await _stage(tx, subscribers, [message_event(row, prefix) for row in rows], now)
            for row in rows:
                advancing = advancing and row.created_at < settled
                if advancing:
                    low_water = row.id
            if rows:
                after = rows[-1].id
            await webhooks.save_cursor(tx.conn, MESSAGES, Cursor(now, low_water))
        if len(rows) < PAGE:
            return staged


async def _alerts(rt: Runtime, subscribers: Sequence[Subscriber], now: datetime, overlap: timedelta) -> int:
    async with rt.transaction() as tx:
        position = (await webhooks.cursor(tx.conn, ALERTS) or Cursor(now, 0)).position
        since = position - overlap
        rows = await webhooks.alerts_changed(tx.conn, since)
        staged = await _stage(tx, subscribers, [e for row in rows for e in alert_events(row, since)], now)
        seen = [at for row in rows for at in (row.started_at, row.finished_at) if at is not None]
        await webhooks.save_cursor(tx.conn, ALERTS, Cursor(max([position, *seen]), 0))
    return staged


async def _stage(tx: Tx, subscribers: Sequence[Subscriber], events: Sequence[Event], now: datetime) -> int:
    """One outbox row per event and endpoint that subscribed to its type before it happened."""
    if not subscribers or not events:
        return 0
    staged_before = await webhooks.already_staged(tx.conn, [s.id for s in subscribers], [e.id for e in events])
    rows: list[dict[str, Any]] = []
    for event in events:
        wanting = [
            s
            for s in subscribers
            if event.type.value in s.events and s.created_at <= event.at and (s.id, event.id) not in staged_before
        ]
        if not wanting:
            continue
        body = event.body()
        rows.extend(
            {"webhook_id": s.id, "event_id": event.id, "to_address": s.url[:TO_ADDRESS_CHARS], "body": body}
            for s in wanting
        )
    if not rows:
        return 0
    staged = await webhooks.stage_deliveries(tx.conn, rows, now)
    tx.staged_outbox.extend(staged)  # enqueued once this transaction commits
    return len(staged)


def start_embedded(rt: Runtime) -> EmbeddedSweeper | None:
    """Embedded mode: tick in this process every CAREHUB_EVENT_FEED_INTERVAL_SECONDS (workers do it with Redis)."""
    if rt.settings.redis_url is not None:
        return None
    timer = EmbeddedSweeper(lambda: tick(rt), rt.settings.event_feed_interval_seconds, name="event-feed")
    timer.start()
    return timer
