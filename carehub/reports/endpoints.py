"""Supervisor reports over the agent API (/api/v1/reports): the overview, and CSV exports, each one audited.
Supervisors and admins only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, TypeVar
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub import audit
from carehub.agents.auth import CurrentAgent, RuntimeDep, require_role
from carehub.clock import utcnow
from carehub.models import Role
from carehub.reports import service
from carehub.reports.export import csv_response, one_batch
from carehub.reports.repository import Period
from carehub.reports.shapes import Overview
from carehub.runtime import Runtime

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
REPORT_ROLES = (Role.SUPERVISOR, Role.ADMIN)
Supervisor = Annotated[CurrentAgent, Depends(require_role(*REPORT_ROLES))]
T = TypeVar("T")


async def online_agents(rt: Runtime) -> set[int] | None:
    """The agents holding the live stream open now, across replicas."""
    return await rt.presence.online_ids()


async def overview_for(rt: Runtime, since: str | None, until: str | None) -> Overview:
    """The overview as the supervisor page shows it (the same numbers as GET /api/v1/reports/overview)."""
    now = utcnow()
    the_period = service.period(rt.settings, since, until, now)
    online = await online_agents(rt)
    async with rt.transaction() as tx:
        return await service.overview(tx.conn, the_period, now, online)


@router.get("/overview")
async def overview(rt: RuntimeDep, agent: Supervisor, since: str | None = None, until: str | None = None) -> Overview:
    """The queue now (by team and status, by channel, unassigned), waiting times, SLA attainment per team and
    priority, agents' workload now, and satisfaction per team. since/until: dates (the city's local days; until
    is included) or date-times; by default the last 7 days."""
    return await overview_for(rt, since, until)


def _filename(rt: Runtime, name: str, the_period: Period) -> str:
    zone = ZoneInfo(rt.settings.business_timezone)
    first = the_period.since.astimezone(zone).date()
    last = (the_period.until - timedelta(microseconds=1)).astimezone(zone).date()  # until is exclusive
    return f"{name}_{first.isoformat()}_{last.isoformat()}.csv"


async def _audited(rt: Runtime, agent: CurrentAgent, report: str, the_period: Period, now: datetime) -> None:
    async with rt.transaction() as tx:
        await audit.by_agent(
            tx.conn,
            agent.id,
            "export",
            "report",
            0,
            now,
            {"report": report, "since": the_period.since.isoformat(), "until": the_period.until.isoformat()},
        )


def _reader(rt: Runtime) -> Callable[[Callable[[AsyncConnection], Awaitable[T]]], Awaitable[T]]:
    """Each batch in its own short transaction: a slow download never holds a connection between batches."""

    async def read(fn: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        async with rt.transaction() as tx:
            return await fn(tx.conn)

    return read


@router.get("/tickets.csv", response_class=StreamingResponse)
async def tickets_csv(
    rt: RuntimeDep, agent: Supervisor, since: str | None = None, until: str | None = None
) -> StreamingResponse:
    """One row per ticket created in the period: times, team, priority, status, assignee, SLA and satisfaction.
    No message text and no resident addresses."""
    now = utcnow()
    the_period = service.period(rt.settings, since, until, now)
    await _audited(rt, agent, "tickets.csv", the_period, now)
    return csv_response(
        _filename(rt, "tickets", the_period),
        service.TICKET_COLUMNS,
        service.ticket_batches(_reader(rt), rt.settings, the_period),
    )


@router.get("/agents.csv", response_class=StreamingResponse)
async def agents_csv(
    rt: RuntimeDep, agent: Supervisor, since: str | None = None, until: str | None = None
) -> StreamingResponse:
    """One row per active agent: capacity and tickets now, online now, tickets resolved in the period."""
    now = utcnow()
    the_period = service.period(rt.settings, since, until, now)
    await _audited(rt, agent, "agents.csv", the_period, now)
    online = await online_agents(rt)
    async with rt.transaction() as tx:
        rows = await service.agent_rows(tx.conn, the_period, online)
    return csv_response(_filename(rt, "agents", the_period), service.AGENT_COLUMNS, one_batch(rows))


@router.get("/sla.csv", response_class=StreamingResponse)
async def sla_csv(
    rt: RuntimeDep, agent: Supervisor, since: str | None = None, until: str | None = None
) -> StreamingResponse:
    """SLA attainment per team and priority for tickets created in the period."""
    now = utcnow()
    the_period = service.period(rt.settings, since, until, now)
    await _audited(rt, agent, "sla.csv", the_period, now)
    async with rt.transaction() as tx:
        rows = await service.sla_rows(tx.conn, the_period, now)
    return csv_response(_filename(rt, "sla", the_period), service.SLA_COLUMNS, one_batch(service.sla_csv_rows(rows)))
