"""The supervisor page (GET /console/supervisor): the overview report as tables, a date range, CSV downloads.
Supervisors and admins only; anyone else signed in gets a 403 page."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import RedirectResponse

from carehub.agents.auth import RuntimeDep
from carehub.console.endpoints import _page, _signed_in
from carehub.models import ACTIVE_TICKET_STATUSES
from carehub.problems import Problem
from carehub.reports.endpoints import REPORT_ROLES, overview_for
from carehub.reports.shapes import Overview

router = APIRouter(prefix="/console", include_in_schema=False)
CHANNEL_NAMES = {"sms": "Text (SMS)", "email": "Email", "chat": "Web chat"}
NO_TEAM = "No team"


def duration(seconds: int | None) -> str:
    """'—' for none, else '45 s', '12 min', '3 h 5 min', '2 d 4 h'."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


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
    agent = await _signed_in(request, rt)
    if agent is None:
        return RedirectResponse("/console/login", status_code=status.HTTP_303_SEE_OTHER)
    context = {"agent": agent, "page_kind": "supervisor", "ticket_ref": None}
    if agent.role not in REPORT_ROLES:
        return _page(rt, "supervisor.html.j2", 403, title="Not allowed", forbidden=True, **context)
    try:
        overview = await overview_for(rt, since or None, until or None)
    except Problem as problem:
        return _page(
            rt,
            "supervisor.html.j2",
            422,
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

    return _page(
        rt,
        "supervisor.html.j2",
        200,
        title="Supervisor",
        forbidden=False,
        error=None,
        overview=overview,
        since=first,
        until=last,
        statuses=statuses,
        queue_rows=queue_rows,
        channel_names=CHANNEL_NAMES,
        no_team=NO_TEAM,
        duration=duration,
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
