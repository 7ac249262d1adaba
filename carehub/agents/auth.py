"""Who is calling: an API token (Authorization: Bearer, for integrations) or a console session cookie (with a
CSRF token on every state-changing request), and role checks for the agent API."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request

from carehub.agents import repository, sessions
from carehub.clock import utcnow
from carehub.models import Role
from carehub.problems import Problem
from carehub.runtime import Runtime

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="carehub"'}


SESSION_COOKIE = "carehub_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class CurrentAgent:
    id: int
    email: str
    name: str
    role: Role
    teams: frozenset[str] = frozenset()
    session_id: int | None = None  # signed in through the console (else an API token)
    csrf_token: str | None = None

    @property
    def sees_every_team(self) -> bool:
        return self.role in (Role.SUPERVISOR, Role.ADMIN)

    def can_see(self, team: str | None) -> bool:
        """An agent works their teams' tickets and those not yet given a team; supervisors and admins see all."""
        return self.sees_every_team or team is None or team in self.teams


async def get_runtime(request: Request) -> Runtime:  # async: FastAPI runs sync dependencies in a thread pool
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def current_agent(request: Request, rt: RuntimeDep) -> CurrentAgent:
    header = request.headers.get("authorization")
    cookie = request.cookies.get(SESSION_COOKIE)
    if header is None and cookie:
        return await _session_agent(request, rt, cookie)
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            401,
            "Sign in to the console, or send an API token as 'Authorization: Bearer <token>'. Operators create "
            "tokens with 'carehub create-agent' or 'carehub create-token'.",
            headers=_CHALLENGE,
        )
    async with rt.transaction() as tx:
        row = await repository.agent_for_token(tx.conn, token.strip(), utcnow())
        teams = frozenset() if row is None else await repository.teams_of(tx.conn, row.id)
    if row is None:
        raise Problem(401, "This API token is unknown, revoked, or belongs to a disabled agent.", headers=_CHALLENGE)
    return CurrentAgent(id=row.id, email=row.email, name=row.name, role=Role(row.role), teams=teams)


async def _session_agent(request: Request, rt: Runtime, cookie: str) -> CurrentAgent:
    ttl = timedelta(hours=rt.settings.session_idle_hours)
    async with rt.transaction() as tx:
        row = await sessions.agent_for_session(tx.conn, cookie, ttl=ttl, now=utcnow())
        teams = frozenset() if row is None else await repository.teams_of(tx.conn, row.id)
    if row is None:
        raise Problem(401, "Your session has ended (signed out, expired, or the account was disabled). Sign in again.")
    if request.method not in SAFE_METHODS and not await _csrf_ok(request, row.csrf_token):
        raise Problem(403, "This request did not carry the page's CSRF token; reload the page and try again.")
    return CurrentAgent(
        id=row.id,
        email=row.email,
        name=row.name,
        role=Role(row.role),
        teams=teams,
        session_id=row.session_id,
        csrf_token=row.csrf_token,
    )


async def _csrf_ok(request: Request, expected: str) -> bool:
    """The session's CSRF token, in the X-CSRF-Token header (scripts) or the csrf_token field (HTML forms)."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    return sent is not None and hmac.compare_digest(sent, expected)


def require_role(*roles: Role) -> Callable[[CurrentAgent], Awaitable[CurrentAgent]]:
    async def check(agent: Annotated[CurrentAgent, Depends(current_agent)]) -> CurrentAgent:
        if agent.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise Problem(403, f"Your role '{agent.role.value}' cannot do this; it needs one of: {allowed}.")
        return agent

    return check


TICKET_ROLES = (Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
TicketAgent = Annotated[CurrentAgent, Depends(require_role(*TICKET_ROLES))]
AnyAgent = Annotated[CurrentAgent, Depends(current_agent)]
