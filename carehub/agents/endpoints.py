"""Agent administration (/api/v1/agents, admins only): disable an account (which ends its sessions at once),
change its role, set its teams."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy import update
from sqlmodel import Field, SQLModel

from carehub import audit
from carehub.agents import repository, sessions
from carehub.agents.auth import CurrentAgent, RuntimeDep, require_role
from carehub.clock import utcnow
from carehub.models import Role
from carehub.problems import Problem
from carehub.routing.assignment import assign_waiting_soon

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])
Admin = Annotated[CurrentAgent, Depends(require_role(Role.ADMIN))]


class AgentUpdate(SQLModel):
    is_active: bool | None = None
    role: Role | None = None
    teams: list[str] | None = Field(default=None, max_length=50, description="Replaces the agent's teams.")
    capacity: int | None = Field(default=None, ge=0, le=50, description="Most active tickets auto-assigned at once.")


class AgentPublic(SQLModel):
    id: int
    email: str
    name: str
    role: Role
    is_active: bool
    teams: list[str]
    capacity: int
    sessions_ended: int = 0


@router.patch("/{agent_id}")
async def update_agent(agent_id: int, changes: AgentUpdate, rt: RuntimeDep, admin: Admin) -> AgentPublic:
    """Disabling an agent ends their console sessions and refuses their API tokens from the next request on."""
    values = changes.model_dump(exclude_unset=True, exclude_none=True)
    teams = values.pop("teams", None)
    if not values and teams is None:
        raise Problem(422, "Nothing to change: send is_active, role, teams and/or capacity.")
    if agent_id == admin.id and values.get("is_active") is False:
        raise Problem(409, "You cannot disable your own account; ask another administrator.")
    now = utcnow()
    async with rt.transaction() as tx:
        if await repository.agent_by_id(tx.conn, agent_id) is None:
            raise Problem(404, f"There is no agent {agent_id}.")
        if values:
            await tx.conn.execute(update(repository.AGENTS).where(repository.AGENTS.c.id == agent_id).values(**values))
        if teams is not None:
            await repository.set_teams(tx.conn, agent_id, frozenset(t.strip().lower() for t in teams if t.strip()))
        ended = await sessions.end_all(tx.conn, agent_id, now) if values.get("is_active") is False else 0
        await audit.by_agent(
            tx.conn, admin.id, "update", "agent", agent_id, now, changes.model_dump(exclude_unset=True, mode="json")
        )
        row = await repository.agent_by_id(tx.conn, agent_id)
        now_in = await repository.teams_of(tx.conn, agent_id)
    assert row is not None  # noqa: S101 - it was there a moment ago, in this transaction
    if "capacity" in values or teams is not None:
        assign_waiting_soon(rt)  # committed: they may have room (or a team) for waiting tickets now
    return AgentPublic(
        id=row.id,
        email=row.email,
        name=row.name,
        role=Role(row.role),
        is_active=row.is_active,
        teams=sorted(now_in),
        capacity=row.capacity,
        sessions_ended=ended,
    )
