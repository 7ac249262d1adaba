"""SLA timers, kept by a periodic job (an arq cron in workers; a timer in the hub process in embedded mode), never
by page loads: due times for each active ticket, a warning to supervisors shortly before a target is missed, and
the breach when it is. Both go out on the agents' live stream (`sla.warning`, `sla.breached`).

Clocks start when the ticket was created and count business minutes (carehub.business_hours). A pending ticket's
resolution clock keeps running: the city owes an answer whoever is waiting, and the schema keeps no record of time
spent pending to subtract. A ticket has two targets in turn: first response (until an agent answers), then
resolution. sla_warned_at and sla_breached_at record the latest warning and breach; one stamped before the first
response belonged to the first-response target, so the resolution target can be warned and breached once more.

Every run does bounded batches, and every change is a conditional UPDATE (... WHERE sla_warned_at IS NULL) whose
RETURNING rows alone are announced, so two workers running at once announce each warning and breach once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.business_hours import BusinessCalendar, business_calendar
from carehub.clock import utcnow
from carehub.db import AnyRow, Tx
from carehub.models import ACTIVE_TICKET_STATUSES, SlaPolicy, Ticket
from carehub.outbox.embedded import EmbeddedSweeper
from carehub.realtime.events import AGENTS_TOPIC, agent_event
from carehub.tickets.reference import format_reference

if TYPE_CHECKING:
    from carehub.runtime import Runtime

log = logging.getLogger("carehub.sla")
TICKETS = Ticket.__table__  # type: ignore[attr-defined]
POLICIES = SlaPolicy.__table__  # type: ignore[attr-defined]
BATCH_SIZE = 100
MAX_BATCHES = 10  # per step and run: a backlog is worked off over several runs, none of them huge
FIRST_RESPONSE = "first_response"
RESOLUTION = "resolution"
ACTIVE = [s.value for s in ACTIVE_TICKET_STATUSES]

# (team, priority) -> (first_response_minutes, resolution_minutes); team None: teams without their own policy.
Targets = Mapping[tuple[str | None, str], tuple[int, int]]


@dataclass
class SlaRun:
    """What one check did: tickets whose due times were (re)computed, warnings and breaches announced."""

    computed: int = 0
    warned: int = 0
    breached: int = 0


def recompute_values() -> dict[str, Any]:
    """Column values that make the next check recompute a ticket's due times (and warn again for the new ones):
    merge them into the UPDATE that changes a ticket's team or priority."""
    return {"sla_computed_at": None, "sla_warned_at": None}


def changes_targets(row: AnyRow, values: Mapping[str, Any]) -> bool:
    """Whether these new column values change the team or priority the ticket's SLA targets come from."""
    return ("team" in values and values["team"] != row.team) or (
        "priority" in values and values["priority"] != row.priority
    )


async def recompute(conn: AsyncConnection, ticket_id: int) -> None:
    """For code that changed a ticket's team or priority in its own UPDATE (routing rules): recompute its SLA."""
    await conn.execute(update(TICKETS).where(TICKETS.c.id == ticket_id).values(**recompute_values()))


async def recompute_policy_tickets(conn: AsyncConnection, team: str | None, priority: str) -> int:
    """A policy was created, changed or removed: recompute the active tickets it may apply to (team None: every
    team's, since those without their own policy fall back to it). Warnings are re-armed only where due times move."""
    query = update(TICKETS).where(
        TICKETS.c.status.in_(ACTIVE), TICKETS.c.priority == priority, TICKETS.c.sla_computed_at.is_not(None)
    )
    if team is not None:
        query = query.where(TICKETS.c.team == team)
    return int((await conn.execute(query.values(sla_computed_at=None))).rowcount)


async def load_targets(conn: AsyncConnection) -> Targets:
    rows = await conn.execute(select(POLICIES).order_by(POLICIES.c.id))
    targets: dict[tuple[str | None, str], tuple[int, int]] = {}
    for r in rows:
        targets.setdefault((r.team, r.priority), (r.first_response_minutes, r.resolution_minutes))
    return targets


def targets_for(targets: Targets, team: str | None, priority: str) -> tuple[int, int] | None:
    """The team's own targets for this priority, else the default policy's, else none."""
    return targets.get((team, priority)) or targets.get((None, priority))


async def check_sla(rt: Runtime, now: datetime) -> SlaRun:
    """One pass: compute due times where missing, then announce breaches, then warnings (within
    CAREHUB_SLA_WARNING_MINUTES business minutes of a due time). Safe to run twice at once, and again."""
    calendar = business_calendar(rt.settings)
    run = SlaRun()
    for _ in range(MAX_BATCHES):
        async with rt.transaction() as tx:
            seen, computed = await _compute_batch(tx.conn, calendar, now)
        run.computed += computed
        if seen < BATCH_SIZE:
            break
    horizon = calendar.add_business_minutes(now, rt.settings.sla_warning_minutes)
    for target in (FIRST_RESPONSE, RESOLUTION):
        run.breached += await _announce(rt, now, "sla.breached", target, _breach_condition(target, now))
        run.warned += await _announce(rt, now, "sla.warning", target, _warning_condition(target, now, horizon))
    if run.computed or run.warned or run.breached:
        log.info("SLA check: %s", run)
    return run


async def _compute_batch(conn: AsyncConnection, calendar: BusinessCalendar, now: datetime) -> tuple[int, int]:
    rows = (
        await conn.execute(
            select(
                TICKETS.c.id,
                TICKETS.c.team,
                TICKETS.c.priority,
                TICKETS.c.created_at,
                TICKETS.c.first_response_at,
                TICKETS.c.first_response_due_at,
                TICKETS.c.resolution_due_at,
            )
            .where(TICKETS.c.status.in_(ACTIVE), TICKETS.c.sla_computed_at.is_(None))
            .order_by(TICKETS.c.id)
            .limit(BATCH_SIZE)
        )
    ).all()
    if not rows:
        return 0, 0
    targets = await load_targets(conn)
    computed = 0
    for row in rows:
        values: dict[str, Any] = {"sla_computed_at": now, "first_response_due_at": None, "resolution_due_at": None}
        found = targets_for(targets, row.team, row.priority)
        if found is not None:
            first_response, resolution = found
            if row.first_response_at is None:
                values["first_response_due_at"] = calendar.add_business_minutes(row.created_at, first_response)
            values["resolution_due_at"] = calendar.add_business_minutes(row.created_at, resolution)
        if (values["first_response_due_at"], values["resolution_due_at"]) != (
            row.first_response_due_at,
            row.resolution_due_at,
        ):
            values["sla_warned_at"] = None  # new due times: warn again before them
        # Only if nobody changed team or priority meanwhile (they set sla_computed_at to NULL again).
        result = await conn.execute(
            update(TICKETS)
            .where(
                TICKETS.c.id == row.id,
                TICKETS.c.sla_computed_at.is_(None),
                TICKETS.c.priority == row.priority,
                TICKETS.c.team.is_(None) if row.team is None else TICKETS.c.team == row.team,
            )
            .values(**values)
        )
        computed += result.rowcount
    return len(rows), computed


def _pending(target: str) -> tuple[ColumnElement[Any], ColumnElement[bool]]:
    """The target's due column, and when the ticket is waiting on that target."""
    if target == FIRST_RESPONSE:
        due = TICKETS.c.first_response_due_at
        waiting = and_(TICKETS.c.first_response_at.is_(None), due.is_not(None))
    else:
        due = TICKETS.c.resolution_due_at
        waiting = and_(
            due.is_not(None),
            or_(TICKETS.c.first_response_at.is_not(None), TICKETS.c.first_response_due_at.is_(None)),
        )
    return due, and_(TICKETS.c.status.in_(ACTIVE), TICKETS.c.sla_computed_at.is_not(None), waiting)


def _not_yet(target: str, stamp: Any) -> ColumnElement[bool]:
    """Not announced for this target: never, or only for the first response (stamped before it was given)."""
    if target == FIRST_RESPONSE:
        return stamp.is_(None)  # type: ignore[no-any-return]
    return or_(stamp.is_(None), and_(TICKETS.c.first_response_at.is_not(None), stamp < TICKETS.c.first_response_at))


def _breach_condition(target: str, now: datetime) -> tuple[ColumnElement[Any], ColumnElement[bool], str]:
    due, waiting = _pending(target)
    return due, and_(waiting, due < now, _not_yet(target, TICKETS.c.sla_breached_at)), "sla_breached_at"


def _warning_condition(
    target: str, now: datetime, horizon: datetime
) -> tuple[ColumnElement[Any], ColumnElement[bool], str]:
    due, waiting = _pending(target)
    return due, and_(waiting, due >= now, due <= horizon, _not_yet(target, TICKETS.c.sla_warned_at)), "sla_warned_at"


async def _announce(
    rt: Runtime, now: datetime, kind: str, target: str, condition: tuple[ColumnElement[Any], ColumnElement[bool], str]
) -> int:
    """Stamp the tickets meeting the condition, a batch at a time, and announce exactly the rows this UPDATE
    changed: the condition is checked again on each row as it is updated, so a concurrent run changes none twice."""
    due, where, stamp = condition
    total = 0
    for _ in range(MAX_BATCHES):
        async with rt.transaction() as tx:
            batch = select(TICKETS.c.id).where(where).order_by(due, TICKETS.c.id).limit(BATCH_SIZE)
            rows = (
                await tx.conn.execute(
                    update(TICKETS)
                    .where(TICKETS.c.id.in_(batch), where)
                    .values({stamp: now})
                    .returning(TICKETS.c.id, TICKETS.c.team, due.label("due_at"))
                )
            ).all()
            _stage(rt, tx, kind, target, rows)
        total += len(rows)
        if len(rows) < BATCH_SIZE:
            break
    return total


def _stage(rt: Runtime, tx: Tx, kind: str, target: str, rows: Sequence[AnyRow]) -> None:
    for row in rows:
        event = agent_event(
            kind,
            ticket_id=row.id,
            reference=format_reference(rt.settings.ticket_prefix, row.id),
            team=row.team,
            target=target,
            due_at=row.due_at.isoformat(),
        )
        tx.staged_events.append((AGENTS_TOPIC, event))


def start_embedded(rt: Runtime) -> EmbeddedSweeper | None:
    """Embedded mode (no Redis: `carehub dev`): check the timers in this process every CAREHUB_SLA_INTERVAL_SECONDS.
    With Redis, the workers' cron job does it (workers/sla.py)."""
    if rt.settings.redis_url is not None:
        return None
    timer = EmbeddedSweeper(lambda: check_sla(rt, utcnow()), rt.settings.sla_interval_seconds, name="sla-timers")
    timer.start()
    return timer
