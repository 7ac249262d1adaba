"""The console's settings page (GET /console/settings): the agent's account, keyboard shortcuts, password; for
supervisors and admins, the SLA targets, routing rules and canned responses in force."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response, status
from fastapi.responses import RedirectResponse
from sqlalchemy import select, update

from carehub import audit
from carehub.agents import passwords, sessions
from carehub.agents import repository as agents
from carehub.agents.auth import CurrentAgent, RuntimeDep
from carehub.canned.endpoints import list_canned
from carehub.clock import utcnow
from carehub.console.views import form_agent, page_agent, render
from carehub.models import RoutingRule, SlaPolicy
from carehub.runtime import Runtime

router = APIRouter(prefix="/console/settings", include_in_schema=False)
SLA = SlaPolicy.__table__  # type: ignore[attr-defined]
RULES = RoutingRule.__table__  # type: ignore[attr-defined]


async def _context(rt: Runtime, agent: CurrentAgent) -> dict[str, Any]:
    async with rt.transaction() as tx:
        me = await agents.agent_by_id(tx.conn, agent.id)
        policies = (await tx.conn.execute(select(SLA).order_by(SLA.c.team, SLA.c.priority))).all()
        rules = (await tx.conn.execute(select(RULES).order_by(RULES.c.position, RULES.c.id))).all()
    return {
        "agent": agent,
        "title": "Settings",
        "page_kind": "settings",
        "capacity": 0 if me is None else me.capacity,
        "sla_policies": policies,
        "routing_rules": rules,
        "canned": await list_canned(rt, agent),
        "business_hours": rt.settings.business_hours,
        "business_timezone": rt.settings.business_timezone,
    }


@router.get("")
async def settings_page(request: Request, rt: RuntimeDep) -> Response:
    agent = await page_agent(request, rt)
    return render(rt, "settings.html.j2", **await _context(rt, agent))


@router.post("/password")
async def change_password(
    request: Request,
    rt: RuntimeDep,
    current_password: Annotated[str, Form(max_length=1024)],
    new_password: Annotated[str, Form(max_length=1024)],
) -> Response:
    """A new password ends every session of this agent (a stolen one included): they sign in again."""
    agent = await form_agent(request, rt, ticket_work=False)
    async with rt.transaction() as tx:
        row = await agents.agent_by_id(tx.conn, agent.id)
    error = None
    if row is None or not await passwords.verify(row.password_hash, current_password):
        error = "Your current password is not right."
    else:
        try:
            passwords.check_strength(new_password)
        except passwords.WeakPassword as weak:
            error = f"Choose another new password: {weak}."
    if error is not None:
        return render(rt, "settings.html.j2", status_code=422, error=error, **await _context(rt, agent))
    hashed = await passwords.hash_password(new_password)
    now = utcnow()
    async with rt.transaction() as tx:
        await tx.conn.execute(update(agents.AGENTS).where(agents.AGENTS.c.id == agent.id).values(password_hash=hashed))
        await sessions.end_all(tx.conn, agent.id, now)
        await audit.by_agent(tx.conn, agent.id, "password_changed", "agent", agent.id, now)
    response = RedirectResponse("/console/login", status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie("carehub_session", path="/")
    return response
