"""Round-robin auto-assignment: a ticket goes to the online agent of its team (any agent, for a ticket without a
team) who has room under their capacity and has waited longest since their last assignment. Supervisors and
admins are never auto-assigned. rebalance() (run by the sweep) gives waiting tickets to agents who have room, and
takes new, unanswered tickets back from agents who went offline."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from weakref import WeakKeyDictionary

from carehub import audit
from carehub.clock import utcnow
from carehub.db import Tx
from carehub.models import ACTIVE_TICKET_STATUSES
from carehub.realtime.broker import Event
from carehub.realtime.events import AGENTS_TOPIC, agent_event
from carehub.realtime.presence import Presence
from carehub.routing import repository as routing
from carehub.runtime import Runtime
from carehub.settings import Settings
from carehub.tickets import repository as tickets
from carehub.tickets.reference import format_reference

log = logging.getLogger("carehub.routing")

SYSTEM_ACTOR = "system:routing"
BATCH = 200  # tickets looked at per rebalance pass; the next pass (seconds later) takes the rest
OFFLINE_GRACE = timedelta(seconds=60)


def assigned_event(settings: Settings, ticket_id: int, assignee_id: int | None, reason: str) -> tuple[str, Event]:
    """`ticket.assigned`: the console moves the ticket to its new owner's queue (None: back to the pool)."""
    reference = format_reference(settings.ticket_prefix, ticket_id)
    event = agent_event(
        "ticket.assigned", ticket_id=ticket_id, reference=reference, assignee_id=assignee_id, reason=reason
    )
    return AGENTS_TOPIC, event


async def assign_ticket(tx: Tx, settings: Settings, ticket_id: int, online: set[int], now: datetime) -> int | None:
    """Give the ticket to the next agent in rotation with room for it; the agent's id, or None if nobody can
    take it now (it waits for rebalance) or it is no longer unassigned and active."""
    conn = tx.conn
    ticket = await tickets.get_ticket(conn, ticket_id)
    if (
        ticket is None
        or ticket.assignee_id is not None
        or ticket.status not in ACTIVE_TICKET_STATUSES
        or ticket.merged_into_id is not None
    ):
        return None
    for agent_id in await routing.candidates(conn, ticket.team, online):
        load, capacity = await routing.lock_agent_load(conn, agent_id)
        if load >= capacity:  # another replica filled them since the candidates were listed
            continue
        stamp = routing.next_stamp(now, await routing.latest_assignment(conn))
        if not await routing.assign(conn, ticket_id, agent_id, stamp, now):
            return None
        await audit.record(
            conn,
            actor=SYSTEM_ACTOR,
            action="assign",
            entity_type="ticket",
            entity_id=ticket_id,
            now=now,
            detail={"assignee_id": agent_id},
        )
        tx.staged_events.append(assigned_event(settings, ticket_id, agent_id, "round_robin"))
        return agent_id
    return None


async def assign_waiting(rt: Runtime, now: datetime, online: set[int] | None = None) -> int:
    """Give routed, unassigned, active tickets (oldest first) to online agents with room; how many were given."""
    if not rt.settings.auto_assign:
        return 0
    online = await rt.presence.online_ids() if online is None else online
    if not online:
        return 0
    async with rt.transaction() as tx:
        waiting = await routing.waiting(tx.conn, BATCH)
    assigned, full_teams = 0, set[str | None]()
    for ticket in waiting:
        if ticket.team in full_teams or None in full_teams:  # nobody had room for this team: skip its tickets
            continue
        async with rt.transaction() as tx:
            agent_id = await assign_ticket(tx, rt.settings, ticket.id, online, now)
        if agent_id is None:
            full_teams.add(ticket.team)
        else:
            assigned += 1
    return assigned


# Agents seen offline while holding unanswered tickets, and since when (per process: a new one starts counting).
_OFFLINE_SINCE: WeakKeyDictionary[Presence, dict[int, datetime]] = WeakKeyDictionary()


def _offline_long_enough(presence: Presence, online: set[int], holders: set[int], now: datetime) -> set[int]:
    """The holders offline for OFFLINE_GRACE by this process's count: a console reloading, or an agent moving to
    another replica, keeps their tickets."""
    since = _OFFLINE_SINCE.setdefault(presence, {})
    for agent_id in set(since) - holders | online:
        since.pop(agent_id, None)
    for agent_id in holders:
        since.setdefault(agent_id, now)
    return {agent_id for agent_id in holders if now - since[agent_id] >= OFFLINE_GRACE}


async def rebalance(rt: Runtime, now: datetime) -> int:
    """Take back new, unanswered tickets from agents offline for OFFLINE_GRACE (by this process's count), then
    give every waiting ticket to an online agent with room. Returns how many tickets moved (released + assigned)."""
    if not rt.settings.auto_assign:
        return 0
    online = await rt.presence.online_ids()
    released = []
    async with rt.transaction() as tx:
        held = await routing.unanswered_held_offline(tx.conn, online, BATCH)
        gone = _offline_long_enough(rt.presence, online, {row.assignee_id for row in held}, now)
        for ticket_id, agent_id in ((row.id, row.assignee_id) for row in held if row.assignee_id in gone):
            if not await routing.release(tx.conn, ticket_id, agent_id, now):
                continue
            released.append(ticket_id)
            await audit.record(
                tx.conn,
                actor=SYSTEM_ACTOR,
                action="unassign",
                entity_type="ticket",
                entity_id=ticket_id,
                now=now,
                detail={"from_assignee_id": agent_id, "reason": "agent offline"},
            )
            tx.staged_events.append(assigned_event(rt.settings, ticket_id, None, "agent_offline"))
    if released:
        log.info("took %d unanswered tickets back from agents who went offline", len(released))
    return len(released) + await assign_waiting(rt, now, online)


async def _assign_waiting_logged(rt: Runtime) -> None:
    try:
        await assign_waiting(rt, utcnow())
    except Exception:
        log.exception("assigning waiting tickets failed; the next sweep tries again")


def assign_waiting_soon(rt: Runtime) -> None:
    """An agent may have room now (a ticket resolved or moved, an agent came online, capacity raised): give them
    waiting tickets without making the caller wait. Losing this only delays it until the next sweep."""
    if rt.settings.auto_assign:
        rt.in_background(_assign_waiting_logged(rt))
