"""Report rules: the reporting period (dates are the city's local days), the overview, and the rows of each
CSV export. Runs inside the caller's transaction."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.db import AnyRow
from carehub.problems import Problem
from carehub.reports import repository as reports
from carehub.reports.repository import Period
from carehub.reports.shapes import (
    AgentLoad,
    ChannelCount,
    CsatRow,
    Overview,
    QueueCell,
    QueueNow,
    SlaRow,
    Waiting,
)
from carehub.settings import Settings
from carehub.tickets.reference import format_reference

DEFAULT_DAYS = 7
MAX_DAYS = 366
EXPORT_BATCH = 500
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _moment(value: str, zone: ZoneInfo, *, end: bool) -> datetime:
    """A date is a whole local day (an `until` date includes that day); a datetime without offset is local."""
    value = value.strip()
    try:
        if _DATE_ONLY.match(value):
            day = date.fromisoformat(value) + timedelta(days=1 if end else 0)
            return datetime.combine(day, time(), tzinfo=zone)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Problem(422, f"'{value}' is not a date (2026-05-01) or a date and time (2026-05-01T08:30).") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def period(settings: Settings, since: str | None, until: str | None, now: datetime) -> Period:
    """The period asked for; by default the last 7 days up to now."""
    zone = ZoneInfo(settings.business_timezone)
    end = now if not until else _moment(until, zone, end=True)
    start = end - timedelta(days=DEFAULT_DAYS) if not since else _moment(since, zone, end=False)
    if start >= end:
        raise Problem(422, "The period is empty: 'since' must come before 'until'.")
    if end - start > timedelta(days=MAX_DAYS):
        raise Problem(422, f"A report covers at most {MAX_DAYS} days; ask for a shorter period.")
    return Period(since=start, until=end)


def _pct(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100.0 * part / whole, 1)


def _team_key(team: str | None) -> str:
    return "" if team is None else team


async def overview(conn: AsyncConnection, the_period: Period, now: datetime, online: set[int] | None) -> Overview:
    """online: the ids of agents online now, or None when not known (then every agent's online is None)."""
    totals = await reports.queue_totals(conn)
    cells = sorted(
        (QueueCell(team=r.team, status=r.status, count=int(r.n)) for r in await reports.queue_by_team_status(conn)),
        key=lambda c: (_team_key(c.team), c.status),
    )
    channels = sorted(
        (ChannelCount(channel=r.channel, count=int(r.n)) for r in await reports.queue_by_channel(conn)),
        key=lambda c: c.channel,
    )
    answered, (median, p90) = await reports.first_response_percentiles(conn, the_period, (0.5, 0.9))
    oldest = totals.oldest_unanswered
    return Overview(
        since=the_period.since,
        until=the_period.until,
        generated_at=now,
        queue=QueueNow(
            active=int(totals.active), unassigned=int(totals.unassigned), by_team_status=cells, by_channel=channels
        ),
        waiting=Waiting(
            oldest_unanswered_seconds=None if oldest is None else max(0, round((now - oldest).total_seconds())),
            answered_in_period=answered,
            first_response_median_seconds=None if median is None else int(median),
            first_response_p90_seconds=None if p90 is None else int(p90),
        ),
        sla=await sla_rows(conn, the_period, now),
        agents=[
            AgentLoad(
                id=r.id,
                name=r.name,
                role=r.role,
                active_assigned=int(r.active_assigned),
                capacity=r.capacity,
                online=None if online is None else r.id in online,
            )
            for r in await reports.agent_workload(conn)
        ],
        csat=[
            CsatRow(
                team=r.team,
                sent=int(r.sent),
                answered=int(r.answered),
                average=None if int(r.answered) == 0 else round(int(r.rating_sum) / int(r.answered), 2),
                satisfied_pct=_pct(int(r.satisfied), int(r.answered)),
                response_rate_pct=_pct(int(r.answered), int(r.sent)),
            )
            for r in sorted(await reports.csat_by_team(conn, the_period), key=lambda r: _team_key(r.team))
        ],
    )


async def sla_rows(conn: AsyncConnection, the_period: Period, now: datetime) -> list[SlaRow]:
    rows = await reports.sla_by_team_priority(conn, the_period, now)
    return [
        SlaRow(
            team=r.team,
            priority=r.priority,
            tickets=int(r.tickets),
            first_response_due=int(r.fr_due),
            first_response_met=int(r.fr_met),
            first_response_met_pct=_pct(int(r.fr_met), int(r.fr_due)),
            resolution_due=int(r.res_due),
            resolution_met=int(r.res_met),
            resolution_met_pct=_pct(int(r.res_met), int(r.res_due)),
            breached=int(r.breached),
        )
        for r in sorted(rows, key=lambda r: (_team_key(r.team), r.priority))
    ]


# ---- CSV exports: a header row, then rows; each batch is read in its own short transaction by the caller.

TICKET_COLUMNS = [
    "reference",
    "created_at",
    "channel",
    "team",
    "priority",
    "status",
    "assignee_id",
    "assignee",
    "first_response_at",
    "resolved_at",
    "first_response_due_at",
    "resolution_due_at",
    "sla_breached",
    "csat_rating",
]
AGENT_COLUMNS = ["agent_id", "name", "role", "capacity", "active_assigned", "online", "resolved_in_period"]
SLA_COLUMNS = [
    "team",
    "priority",
    "tickets",
    "first_response_due",
    "first_response_met",
    "first_response_met_pct",
    "resolution_due",
    "resolution_met",
    "resolution_met_pct",
    "breached",
]


def _when(value: datetime | None) -> str:
    return "" if value is None else value.isoformat(timespec="seconds")


def ticket_csv_row(settings: Settings, r: AnyRow) -> list[object]:
    return [
        format_reference(settings.ticket_prefix, r.id),
        _when(r.created_at),
        r.channel,
        r.team or "",
        r.priority,
        r.status,
        "" if r.assignee_id is None else r.assignee_id,
        r.assignee_name or "",
        _when(r.first_response_at),
        _when(r.resolved_at),
        _when(r.first_response_due_at),
        _when(r.resolution_due_at),
        "yes" if r.sla_breached_at is not None else "no",
        "" if r.csat_rating is None else r.csat_rating,
    ]


async def ticket_batches(
    read: Callable[..., Any], settings: Settings, the_period: Period
) -> AsyncIterator[list[list[object]]]:
    """The ticket export in batches of EXPORT_BATCH rows; read(fn) runs fn(conn) in a fresh transaction."""
    bounds = await read(lambda conn: reports.ticket_id_range(conn, the_period))
    if bounds is None:
        return
    first, last = bounds
    after = first - 1
    while True:
        rows = await read(
            lambda conn, after=after: reports.ticket_rows(
                conn, the_period, after_id=after, last_id=last, limit=EXPORT_BATCH
            )
        )
        if not rows:
            return
        yield [ticket_csv_row(settings, r) for r in rows]
        if len(rows) < EXPORT_BATCH:
            return
        after = rows[-1].id


async def agent_rows(conn: AsyncConnection, the_period: Period, online: set[int] | None) -> list[list[object]]:
    resolved = await reports.resolved_by_agent(conn, the_period)
    return [
        [
            r.id,
            r.name,
            r.role,
            r.capacity,
            int(r.active_assigned),
            "" if online is None else ("yes" if r.id in online else "no"),
            resolved.get(r.id, 0),
        ]
        for r in await reports.agent_workload(conn)
    ]


def sla_csv_rows(rows: list[SlaRow]) -> list[list[object]]:
    return [
        [
            r.team or "",
            r.priority.value,
            r.tickets,
            r.first_response_due,
            r.first_response_met,
            "" if r.first_response_met_pct is None else r.first_response_met_pct,
            r.resolution_due,
            r.resolution_met,
            "" if r.resolution_met_pct is None else r.resolution_met_pct,
            r.breached,
        ]
        for r in rows
    ]
