"""What happens to a ticket once it has arrived (after the ingest committed): the first matching routing rule
sets its team and priority and adds labels, then it is auto-assigned; tickets.routed_at records that this ran.

route_soon() runs it in the background for a ticket just opened (SMS, email, chat); the sweep runs it for
any ticket a crash left unrouted. Running it twice changes nothing the second time (routed_at is claimed first)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from carehub import audit
from carehub.alerts import repository as alerts
from carehub.clock import utcnow
from carehub.db import AnyRow, Tx
from carehub.models import Priority
from carehub.outbox.embedded import EmbeddedSweeper
from carehub.realtime.events import AGENTS_TOPIC, agent_event, team_changed
from carehub.realtime.presence import Presence
from carehub.routing import repository as routing
from carehub.routing.assignment import SYSTEM_ACTOR, assign_ticket, rebalance
from carehub.routing.rules import first_match
from carehub.runtime import Runtime
from carehub.settings import Settings
from carehub.sla import timers as sla
from carehub.tickets import repository as tickets
from carehub.tickets.reference import format_reference

log = logging.getLogger("carehub.routing")

# A ticket is routed in the background right after its ingest commits; one still unrouted this long after it was
# created was lost (the process died in between) and the sweep routes it.
SWEEP_GRACE = timedelta(seconds=10)
# Tickets from before routing existed (migration 0011 left routed_at empty) are left as they are.
SWEEP_LOOKBACK = timedelta(days=2)
SWEEP_BATCH = 200


@dataclass(frozen=True)
class Routed:
    ticket_id: int
    rule_id: int | None
    team: str | None
    priority: str
    labels: tuple[str, ...]
    assignee_id: int | None


async def route_ticket(tx: Tx, settings: Settings, ticket_id: int, now: datetime, presence: Presence) -> Routed | None:
    """Apply the routing rules to a ticket and auto-assign it, once: None if it was routed before.

    A rule never undoes what an agent did first (the sweep can be late): it sets the team only on a ticket that
    has none, and the priority only on one still at normal."""
    conn = tx.conn
    if not await routing.take_unrouted(conn, ticket_id, now):
        return None
    ticket, arrival = await routing.arrival_of(conn, ticket_id)
    rule = first_match(await routing.list_rules(conn, active_only=True), arrival)
    team, priority, labels = ticket.team, str(ticket.priority), tuple[str, ...]()
    if rule is not None:
        changes: dict[str, Any] = {}
        if rule.set_team and ticket.team is None:
            changes["team"] = team = rule.set_team
            tx.staged_events.append(team_changed(ticket_id))
        if rule.set_priority and ticket.priority == Priority.NORMAL.value:
            changes["priority"] = priority = rule.set_priority
        if changes:
            await tickets.update_ticket(conn, ticket_id, {**changes, **sla.recompute_values(), "updated_at": now})
        labels = tuple(rule.add_labels or ())
        await routing.add_labels(conn, ticket_id, labels)
        await audit.record(
            conn,
            actor=SYSTEM_ACTOR,
            action="route",
            entity_type="ticket",
            entity_id=ticket_id,
            now=now,
            detail={"rule_id": rule.id, **changes, "labels": list(labels)},
        )
        tx.staged_events.append(
            (
                AGENTS_TOPIC,
                agent_event(
                    "ticket.routed",
                    ticket_id=ticket_id,
                    reference=format_reference(settings.ticket_prefix, ticket_id),
                    rule_id=rule.id,
                    team=team,
                    priority=priority,
                    labels=list(labels),
                ),
            )
        )
    labels += await _label_alert_reply(conn, settings, ticket, now)
    assignee = ticket.assignee_id
    if settings.auto_assign and assignee is None:
        assignee = await assign_ticket(tx, settings, ticket_id, await presence.online_ids(), now)
    return Routed(ticket_id, None if rule is None else rule.id, team, priority, labels, assignee)


async def _label_alert_reply(
    conn: AsyncConnection, settings: Settings, ticket: AnyRow, now: datetime
) -> tuple[str, ...]:
    """A resident writing soon after an alert reached them is most likely answering it: the ticket is labelled
    `alert-<id>`, so staff see the replies to an alert together (one conversation per resident, as always)."""
    if ticket.address_id is None or settings.alert_reply_window_hours == 0:
        return ()
    since = now - timedelta(hours=settings.alert_reply_window_hours)
    alert_id = await alerts.recent_alert_to(conn, ticket.address_id, since)
    if alert_id is None:
        return ()
    label = f"alert-{alert_id}"
    await routing.add_labels(conn, ticket.id, [label])
    return (label,)


def route_soon(rt: Runtime, ticket_id: int) -> None:
    """Route a new ticket after the caller has answered (its ingest must have committed).

    One drainer per process routes what is pending, one ticket at a time: a task per ticket let a burst of texts start
    hundreds of routing transactions at once, which starved the webhooks of connections (measured: 1,200 -> 99
    webhooks/s, with 500s). Tickets wait here a moment under load; a crash loses nothing (the sweep routes them)."""
    if rt.routing_pending is not None:  # a drainer is running and takes this one too
        rt.routing_pending.add(ticket_id)
        return
    rt.routing_pending = {ticket_id}
    rt.in_background(_drain(rt, rt.routing_pending))


async def _drain(rt: Runtime, pending: set[int]) -> None:
    try:
        while pending:
            ticket_id = pending.pop()
            try:  # one short transaction each: a ticket's row lock must not hold up its resident's next text
                async with rt.transaction() as tx:
                    await route_ticket(tx, rt.settings, ticket_id, utcnow(), rt.presence)
            except Exception:
                log.exception("routing ticket %d failed; the sweep routes it later", ticket_id)
    finally:
        rt.routing_pending = None


async def route_unrouted(rt: Runtime, now: datetime) -> int:
    """Route tickets a crash left unrouted (created more than SWEEP_GRACE ago); how many were routed."""
    async with rt.transaction() as tx:
        found = await routing.unrouted(
            tx.conn, created_before=now - SWEEP_GRACE, created_after=now - SWEEP_LOOKBACK, limit=SWEEP_BATCH
        )
    routed = 0
    for ticket_id in found:
        async with rt.transaction() as tx:
            routed += await route_ticket(tx, rt.settings, ticket_id, now, rt.presence) is not None
    if routed:
        log.info("routed %d tickets left unrouted", routed)
    return routed


async def sweep_arrivals(rt: Runtime) -> int:
    """The routing sweep (arq cron, or the embedded timer): unrouted tickets, then rebalance()."""
    now = utcnow()
    return await route_unrouted(rt, now) + await rebalance(rt, now)


def embedded_routing_timer(rt: Runtime) -> EmbeddedSweeper | None:
    """Embedded mode (no Redis, `carehub dev`): the routing sweep on an in-process timer, started. With Redis the
    workers' cron runs it (workers/routing.py)."""
    if rt.settings.redis_url is not None:
        return None
    timer = EmbeddedSweeper(lambda: sweep_arrivals(rt), rt.settings.routing_interval_seconds)
    timer.start()
    return timer
