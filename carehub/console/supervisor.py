"""The supervisor page (GET /console/supervisor): the overview report as tables, a date range, CSV downloads.
Supervisors and admins only; anyone else signed in gets a 403 page."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response

from carehub.agents.auth import RuntimeDep
from carehub.console.views import page_agent, render
from carehub.models import ACTIVE_TICKET_STATUSES
from carehub.problems import Problem
from carehub.reports.endpoints import REPORT_ROLES, overview_for
from carehub.reports.shapes import Overview

router = APIRouter(prefix="/console", include_in_schema=False)
NO_TEAM = "No team"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:g}%"


def _queue_table(overview: Overview) -> tuple[list[str], list[tuple[str, list[int], int]]]:
    """(statuses, [(team, counts per status, total)]) for the team by status table."""
    statuses = [s.value for s in ACTIVE_TICKET_STATUSES]
    teams: dict[str, list[int]] = {}
    for cell in overview.queue.by_team_status:
        counts = teams.setdefault(cell.team or NO_TEAM, [0] * len(statuses))
        counts[statuses.index(cell.status.value)] += cell.count
    return statuses, [(team, counts, sum(counts)) for team, counts in sorted(teams.items())]


@router.get("/supervisor")
async def supervisor_page(
    request: Request, rt: RuntimeDep, since: str | None = None, until: str | None = None
) -> Response:
    agent = await page_agent(request, rt)
    context: dict[str, Any] = {"agent": agent, "page_kind": "supervisor", "ticket_ref": None}
    if agent.role not in REPORT_ROLES:
        return render(rt, "supervisor.html.j2", status_code=403, title="Not allowed", forbidden=True, **context)
    try:
        overview = await overview_for(rt, since or None, until or None)
    except Problem as problem:
        return render(
            rt,
            "supervisor.html.j2",
            status_code=422,
            title="Supervisor: error",
            forbidden=False,
            error=problem.detail,
            overview=None,
            since=since or "",
            until=until or "",
            **context,
        )
    zone = ZoneInfo(rt.settings.business_timezone)
    first = overview.since.astimezone(zone).date().isoformat()
    last = (overview.until - timedelta(microseconds=1)).astimezone(zone).date().isoformat()
    query = urlencode({"since": first, "until": last})
    statuses, queue_rows = _queue_table(overview)

    def local(moment: datetime) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    return render(
        rt,
        "supervisor.html.j2",
        title="Supervisor",
        forbidden=False,
        error=None,
        overview=overview,
        since=first,
        until=last,
        statuses=statuses,
        queue_rows=queue_rows,
        no_team=NO_TEAM,
        percent=percent,
        local=local,
        downloads=[
            (f"/api/v1/reports/{name}.csv?{query}", label)
            for name, label in (
                ("tickets", "Tickets (one row per ticket)"),
                ("agents", "Agents (workload and tickets resolved)"),
                ("sla", "SLA attainment by team and priority"),
            )
        ],
        **context,
    )
