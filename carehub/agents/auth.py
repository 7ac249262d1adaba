"""Bearer-token authentication and role checks for the agent API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from carehub.agents import repository
from carehub.clock import utcnow
from carehub.models import Role
from carehub.problems import Problem
from carehub.runtime import Runtime

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="carehub"'}


@dataclass(frozen=True)
class CurrentAgent:
    id: int
    email: str
    name: str
    role: Role


async def get_runtime(request: Request) -> Runtime:  # async: FastAPI runs sync dependencies in a thread pool
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def current_agent(request: Request, rt: RuntimeDep) -> CurrentAgent:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            401,
            "Send an API token as 'Authorization: Bearer <token>'. Operators create tokens with "
            "'carehub create-agent' or 'carehub create-token'.",
            headers=_CHALLENGE,
        )
    async with rt.transaction() as tx:
        row = await repository.agent_for_token(tx.conn, token.strip(), utcnow())
    if row is None:
        raise Problem(401, "This API token is unknown, revoked, or belongs to a disabled agent.", headers=_CHALLENGE)
    return CurrentAgent(id=row.id, email=row.email, name=row.name, role=Role(row.role))


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
