"""What the console's pages share: who is signed in (or a redirect to sign in), rendering with the console's
filters, and the plain-language wording of times, channels and SLA timers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.agents import repository as agents
from carehub.agents.auth import SESSION_COOKIE, CurrentAgent, current_agent
from carehub.models import Role, TicketSummary
from carehub.problems import Problem
from carehub.runtime import Runtime

CHANNEL_NAMES = {"sms": "Text (SMS)", "email": "Email", "chat": "Web chat", "open311": "Open311 app"}
SIGN_IN = "/console/login"
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
NOT_QUEUE_WORK = "Communications accounts send alerts; they do not work the customer care queue."


class SignInRequired(Exception):
    """Raised by page handlers: the browser is sent to the sign-in page (see redirect_to_sign_in)."""


def redirect_to_sign_in() -> Response:
    return RedirectResponse(SIGN_IN, status_code=status.HTTP_303_SEE_OTHER)


async def signed_in(request: Request, rt: Runtime) -> CurrentAgent | None:
    """The agent whose session cookie this browser holds, or None (no cookie, or the session has ended)."""
    if not request.cookies.get(SESSION_COOKIE):
        return None
    try:
        return await current_agent(request, rt)
    except Problem:
        return None


ALERTS_HOME = "/console/alerts"


def home_for(role: Role) -> str:
    """Where the console opens for this role: the queue, or for communications staff (who work no tickets) alerts."""
    return ALERTS_HOME if role is Role.COMMUNICATIONS else "/console"


async def page_agent(request: Request, rt: Runtime, *, ticket_work: bool = False) -> CurrentAgent:
    """The signed-in agent for a page; SignInRequired if none. ticket_work: communications staff get a 403."""
    agent = await signed_in(request, rt)
    if agent is None:
        raise SignInRequired
    if ticket_work and agent.role is Role.COMMUNICATIONS:
        raise Problem(403, NOT_QUEUE_WORK)
    return agent


async def form_agent(request: Request, rt: Runtime, *, ticket_work: bool = True) -> CurrentAgent:
    """The agent posting a console form: a live session and the page's CSRF token (403 without it);
    ticket_work: communications staff get a 403."""
    if not request.cookies.get(SESSION_COOKIE):
        raise SignInRequired
    try:
        agent = await current_agent(request, rt)
    except Problem as problem:
        if problem.status == 401:
            raise SignInRequired from problem
        raise
    if ticket_work and agent.role is Role.COMMUNICATIONS:
        raise Problem(403, NOT_QUEUE_WORK)
    return agent


def render(rt: Runtime, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = rt.templates.env.get_template(f"console/{template}").render(
        city_name=rt.settings.city_name,
        channel_names=CHANNEL_NAMES,
        ago=ago,
        sla_text=sla_text,
        duration=duration,
        **{"error": None, "done": None, **context},
    )
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)


async def agent_names(conn: AsyncConnection) -> dict[int, str]:
    """Every agent's name by id, disabled ones too (they wrote earlier replies and notes)."""
    return {r.id: r.name for r in await conn.execute(select(agents.AGENTS.c.id, agents.AGENTS.c.name))}


def duration(seconds: float | None) -> str:
    """'—' for none, else '45 s', '12 min', '3 h 5 min', '2 d 4 h' (the sign is dropped: callers say late or left)."""
    if seconds is None:
        return "—"
    seconds = abs(seconds)
    if seconds < 60:
        return f"{int(seconds)} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def ago(at: datetime | None, now: datetime) -> str:
    if at is None:
        return ""
    return "just now" if (now - at).total_seconds() < 30 else f"{duration((now - at).total_seconds())} ago"


def sla_text(ticket: TicketSummary, now: datetime) -> str:
    """The next SLA target this ticket has to meet, in words."""
    if ticket.status in ("resolved", "closed"):
        return "Met" if ticket.sla_breached_at is None and ticket.resolution_due_at is not None else ""
    if ticket.first_response_at is None and ticket.first_response_due_at is not None:
        due, what = ticket.first_response_due_at, "first answer"
    elif ticket.resolution_due_at is not None:
        due, what = ticket.resolution_due_at, "resolution"
    else:
        return "No target"
    left = (due - now).total_seconds()
    if left < 0:
        return f"Overdue: {what} {duration(left)} late"
    return f"{what.capitalize()} due in {duration(left)}"
