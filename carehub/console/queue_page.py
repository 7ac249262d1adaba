"""The console's queue (GET /console): filters, full-text search, sort and cursor pages over the shared ticket
queue, rendered on the server. /console/queue/rows is the same table alone, which console.js swaps in (htmx) when
the live stream says a ticket arrived or changed, so new inquiries appear without a reload."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from carehub.agents.auth import CurrentAgent, RuntimeDep
from carehub.clock import utcnow
from carehub.console.views import CHANNEL_NAMES, agent_names, home_for, page_agent, render
from carehub.models import AgentTeam, Priority, Role, TicketStatus
from carehub.runtime import Runtime
from carehub.tickets.queue import QueueFilter, SlaFilter, Sort, queue_page

router = APIRouter(prefix="/console", include_in_schema=False)

TEAMS = AgentTeam.__table__  # type: ignore[attr-defined]
VIEWS = (("mine", "Assigned to me"), ("unassigned", "Unassigned"), ("all", "All tickets"))
STATUS_CHOICES = (
    ("active", "Waiting (new, open, pending)"),
    ("new", "New"),
    ("open", "Open"),
    ("pending", "Pending (waiting for the resident)"),
    ("resolved", "Resolved"),
    ("closed", "Closed"),
    ("any", "Any status"),
)
ACTIVE = [TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING]
SORTS = (
    ("newest", "Newest first"),
    ("oldest", "Oldest first"),
    ("updated", "Recently updated"),
    ("due", "SLA due soonest"),
    ("priority", "Priority"),
)
PAGE_SIZE = 50


class QueueParams(BaseModel):
    """The queue page's query string (all optional; a bad value is a 422 like the API's)."""

    view: str = Field(default="all", pattern=r"^(mine|unassigned|all)$")
    status: str = Field(default="active", pattern=r"^(active|any|new|open|pending|resolved|closed)$")
    channel: str | None = Field(default=None, pattern=r"^(sms|email|chat)?$")
    priority: Priority | None = None
    team: str | None = Field(default=None, max_length=64)
    label: str | None = Field(default=None, max_length=64)
    sla: SlaFilter | None = None
    q: str | None = Field(default=None, max_length=200)
    sort: Sort = "newest"
    cursor: str | None = Field(default=None, max_length=500)

    def to_filter(self) -> QueueFilter:
        statuses = ACTIVE if self.status == "active" else [] if self.status == "any" else [TicketStatus(self.status)]
        return QueueFilter(
            assignee={"mine": "me", "unassigned": "none"}.get(self.view),
            team=self.team or None,
            channel=self.channel or None,
            statuses=statuses,
            priority=self.priority,
            label=(self.label or "").strip().lower() or None,
            sla=self.sla,
            q=(self.q or "").strip() or None,
            sort=self.sort,
            cursor=self.cursor or None,
            limit=PAGE_SIZE,
        )

    def query(self, **changes: str | None) -> str:
        values = {**self.model_dump(exclude_defaults=True, mode="json"), **changes}
        return urlencode({k: v for k, v in values.items() if v})


QueueQuery = Annotated[QueueParams, Query()]


async def _context(rt: Runtime, agent: CurrentAgent, params: QueueParams) -> dict[str, Any]:
    now = utcnow()
    f = params.to_filter()
    async with rt.transaction() as tx:
        page = await queue_page(tx.conn, settings=rt.settings, agent=agent, f=f, now=now)
        names = await agent_names(tx.conn)
    view = dict(VIEWS)[params.view]
    status = dict(STATUS_CHOICES)[params.status]
    return {
        "agent": agent,
        "f": f,
        "view": params.view,
        "status_choice": params.status,
        "items": page.items,
        "next_url": None if page.next_cursor is None else f"/console?{params.query(cursor=page.next_cursor)}",
        "caption": f"{view}, {status.split(' (')[0].lower()}",
        "agent_names": names,
        "now": now,
        "query_string": params.query(),
    }


@router.get("")
async def queue(request: Request, rt: RuntimeDep, params: QueueQuery) -> Response:
    agent = await page_agent(request, rt)
    if agent.role is Role.COMMUNICATIONS:  # no queue for them: their console is alerts
        return RedirectResponse(home_for(agent.role), status_code=status.HTTP_303_SEE_OTHER)
    context = await _context(rt, agent, params)
    teams = sorted(agent.teams) if not agent.sees_every_team else await _all_teams(rt)
    return render(
        rt,
        "queue.html.j2",
        title="Queue",
        page_kind="queue",
        views=VIEWS,
        status_choices=STATUS_CHOICES,
        channels=list(CHANNEL_NAMES),
        priorities=[p.value for p in Priority],
        teams=teams,
        sorts=SORTS,
        **context,
    )


@router.get("/queue/rows")
async def queue_rows(request: Request, rt: RuntimeDep, params: QueueQuery) -> Response:
    agent = await page_agent(request, rt, ticket_work=True)
    return render(rt, "_queue_rows.html.j2", **await _context(rt, agent, params))


async def _all_teams(rt: Runtime) -> list[str]:
    async with rt.transaction() as tx:
        return [r[0] for r in await tx.conn.execute(select(TEAMS.c.team).distinct().order_by(TEAMS.c.team))]


@router.get("/next")
async def next_ticket(request: Request, rt: RuntimeDep) -> Response:
    """The oldest waiting ticket nobody has yet (or the agent's own oldest), for the 'n' shortcut."""
    agent = await page_agent(request, rt, ticket_work=True)
    now = utcnow()
    async with rt.transaction() as tx:
        for assignee in ("none", "me"):
            f = QueueFilter(assignee=assignee, statuses=ACTIVE, sort="oldest", limit=1)
            page = await queue_page(tx.conn, settings=rt.settings, agent=agent, f=f, now=now)
            if page.items:
                return RedirectResponse(
                    f"/console/tickets/{page.items[0].reference}", status_code=status.HTTP_303_SEE_OTHER
                )
    return RedirectResponse("/console?view=mine", status_code=status.HTTP_303_SEE_OTHER)
