"""Report queries: aggregates computed by the database (GROUP BY, counts and sums; ratios are made in Python so
SQLite and PostgreSQL give identical numbers). Period filters name every status before created_at so both
databases can range-scan ix_tickets_status_created instead of reading the whole table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import ColumnElement, and_, case, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.db import AnyRow
from carehub.models import ACTIVE_TICKET_STATUSES, Agent, CsatSurvey, Role, Ticket, TicketStatus

TICKETS = Ticket.__table__  # type: ignore[attr-defined]
AGENTS = Agent.__table__  # type: ignore[attr-defined]
SURVEYS = CsatSurvey.__table__  # type: ignore[attr-defined]
ACTIVE = [s.value for s in ACTIVE_TICKET_STATUSES]
EVERY_STATUS = [s.value for s in TicketStatus]
TICKET_ROLES = [Role.AGENT.value, Role.SUPERVISOR.value, Role.ADMIN.value]


@dataclass(frozen=True)
class Period:
    since: datetime
    until: datetime  # exclusive


def created_in(period: Period) -> ColumnElement[bool]:
    """Tickets created in the period, in a form the (status, created_at) index serves."""
    return and_(
        TICKETS.c.status.in_(EVERY_STATUS),
        TICKETS.c.created_at >= period.since,
        TICKETS.c.created_at < period.until,
    )


def _live() -> ColumnElement[bool]:
    return and_(TICKETS.c.status.in_(ACTIVE), TICKETS.c.merged_into_id.is_(None))


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


async def queue_by_team_status(conn: AsyncConnection) -> list[AnyRow]:
    query = (
        select(TICKETS.c.team, TICKETS.c.status, func.count().label("n"))
        .where(_live())
        .group_by(TICKETS.c.team, TICKETS.c.status)
    )
    return list(await conn.execute(query))


async def queue_by_channel(conn: AsyncConnection) -> list[AnyRow]:
    query = select(TICKETS.c.channel, func.count().label("n")).where(_live()).group_by(TICKETS.c.channel)
    return list(await conn.execute(query))


async def queue_totals(conn: AsyncConnection) -> AnyRow:
    """Active tickets, those nobody has, and the oldest still waiting for a first answer."""
    query = select(
        func.count().label("active"),
        _count_if(TICKETS.c.assignee_id.is_(None)).label("unassigned"),
        func.min(case((TICKETS.c.first_response_at.is_(None), TICKETS.c.created_at))).label("oldest_unanswered"),
    ).where(_live())
    row: AnyRow = (await conn.execute(query)).one()
    return row


def seconds_between(
    conn: AsyncConnection, start: ColumnElement[datetime], end: ColumnElement[datetime]
) -> ColumnElement[float]:
    """end - start in seconds; SQLite stores timestamps as text, PostgreSQL as timestamptz."""
    if conn.dialect.name == "postgresql":
        return cast(ColumnElement[float], func.extract("epoch", end - start))
    return (func.julianday(end) - func.julianday(start)) * literal_column("86400.0")


async def first_response_percentiles(
    conn: AsyncConnection, period: Period, fractions: Sequence[float]
) -> tuple[int, list[float | None]]:
    """(tickets answered, [nearest-rank percentile of seconds to the first answer for each fraction]) for tickets
    created in the period. Nearest rank (the value at rank ceil(p * n)) is the same on both databases, where
    interpolating functions are not (SQLite has none)."""
    answered = and_(created_in(period), TICKETS.c.first_response_at.is_not(None))
    n = int((await conn.execute(select(func.count()).where(answered))).scalar_one())
    if n == 0:
        return 0, [None for _ in fractions]
    waited = seconds_between(conn, TICKETS.c.created_at, TICKETS.c.first_response_at)
    values: list[float | None] = []
    for p in fractions:
        rank = max(1, -(-int(p * 1000) * n // 1000))  # ceil(p * n) without float surprises
        value = (
            await conn.execute(select(waited).where(answered).order_by(waited, TICKETS.c.id).offset(rank - 1).limit(1))
        ).scalar_one()
        values.append(round(float(value)))
    return n, values


async def sla_by_team_priority(conn: AsyncConnection, period: Period, now: datetime) -> list[AnyRow]:
    """Per team and priority, for tickets created in the period that have due times: how many targets fell due
    (met, or passed unmet: one not yet due and not yet met is still open, so not counted) and how many were met."""
    fr_due, res_due = TICKETS.c.first_response_due_at, TICKETS.c.resolution_due_at
    fr_at, res_at = TICKETS.c.first_response_at, TICKETS.c.resolved_at
    query = (
        select(
            TICKETS.c.team,
            TICKETS.c.priority,
            func.count().label("tickets"),
            _count_if(and_(fr_due.is_not(None), or_(fr_at.is_not(None), fr_due <= now))).label("fr_due"),
            _count_if(and_(fr_due.is_not(None), fr_at.is_not(None), fr_at <= fr_due)).label("fr_met"),
            _count_if(and_(res_due.is_not(None), or_(res_at.is_not(None), res_due <= now))).label("res_due"),
            _count_if(and_(res_due.is_not(None), res_at.is_not(None), res_at <= res_due)).label("res_met"),
            _count_if(TICKETS.c.sla_breached_at.is_not(None)).label("breached"),
        )
        .where(created_in(period), or_(fr_due.is_not(None), res_due.is_not(None)))
        .group_by(TICKETS.c.team, TICKETS.c.priority)
    )
    return list(await conn.execute(query))


async def agent_workload(conn: AsyncConnection) -> list[AnyRow]:
    """Every active agent who works tickets, with the active tickets assigned to them now."""
    assigned = (
        select(TICKETS.c.assignee_id, func.count().label("n"))
        .where(_live(), TICKETS.c.assignee_id.is_not(None))
        .group_by(TICKETS.c.assignee_id)
        .subquery()
    )
    query = (
        select(
            AGENTS.c.id,
            AGENTS.c.name,
            AGENTS.c.email,
            AGENTS.c.role,
            AGENTS.c.capacity,
            func.coalesce(assigned.c.n, 0).label("active_assigned"),
        )
        .outerjoin(assigned, assigned.c.assignee_id == AGENTS.c.id)
        .where(AGENTS.c.is_active.is_(True), AGENTS.c.role.in_(TICKET_ROLES))
        .order_by(AGENTS.c.name, AGENTS.c.id)
    )
    return list(await conn.execute(query))


async def resolved_by_agent(conn: AsyncConnection, period: Period) -> dict[int, int]:
    """Tickets each agent had when they were resolved in the period (resolved or closed since)."""
    query = (
        select(TICKETS.c.assignee_id, func.count().label("n"))
        .where(
            TICKETS.c.status.in_([TicketStatus.RESOLVED.value, TicketStatus.CLOSED.value]),
            TICKETS.c.resolved_at >= period.since,
            TICKETS.c.resolved_at < period.until,
            TICKETS.c.assignee_id.is_not(None),
        )
        .group_by(TICKETS.c.assignee_id)
    )
    return {r.assignee_id: int(r.n) for r in await conn.execute(query)}


async def csat_by_team(conn: AsyncConnection, period: Period) -> list[AnyRow]:
    """Surveys sent in the period, per team (as it was when sent): sent, answered, sum of ratings, 4s and 5s."""
    rating = SURVEYS.c.rating
    query = (
        select(
            SURVEYS.c.team,
            func.count().label("sent"),
            func.count(rating).label("answered"),
            func.coalesce(func.sum(rating), 0).label("rating_sum"),
            _count_if(rating >= 4).label("satisfied"),
        )
        .where(SURVEYS.c.sent_at >= period.since, SURVEYS.c.sent_at < period.until)
        .group_by(SURVEYS.c.team)
    )
    return list(await conn.execute(query))


async def ticket_id_range(conn: AsyncConnection, period: Period) -> tuple[int, int] | None:
    """The lowest and highest id of tickets created in the period (from the index): exports then walk ids."""
    row = (await conn.execute(select(func.min(TICKETS.c.id), func.max(TICKETS.c.id)).where(created_in(period)))).one()
    return None if row[0] is None else (int(row[0]), int(row[1]))


async def ticket_rows(
    conn: AsyncConnection, period: Period, *, after_id: int, last_id: int, limit: int
) -> list[AnyRow]:
    """One batch of the ticket export, in id order: no message bodies, no resident addresses."""
    query = (
        select(
            TICKETS.c.id,
            TICKETS.c.created_at,
            TICKETS.c.channel,
            TICKETS.c.team,
            TICKETS.c.priority,
            TICKETS.c.status,
            TICKETS.c.assignee_id,
            AGENTS.c.name.label("assignee_name"),
            TICKETS.c.first_response_at,
            TICKETS.c.resolved_at,
            TICKETS.c.first_response_due_at,
            TICKETS.c.resolution_due_at,
            TICKETS.c.sla_breached_at,
            SURVEYS.c.rating.label("csat_rating"),
        )
        .outerjoin(AGENTS, AGENTS.c.id == TICKETS.c.assignee_id)
        .outerjoin(SURVEYS, SURVEYS.c.ticket_id == TICKETS.c.id)
        .where(
            TICKETS.c.id > after_id,
            TICKETS.c.id <= last_id,
            TICKETS.c.created_at >= period.since,
            TICKETS.c.created_at < period.until,
        )
        .order_by(TICKETS.c.id)
        .limit(limit)
    )
    return list(await conn.execute(query))
