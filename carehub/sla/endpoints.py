"""SLA policies over the agent API (/api/v1/sla-policies): everyone working tickets reads them; supervisors and
admins write them. Changing a policy makes the worker recompute the due times of the tickets it applies to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from sqlalchemy.exc import IntegrityError

from carehub.agents.auth import CurrentAgent, RuntimeDep, TicketAgent, require_role
from carehub.clock import utcnow
from carehub.db import Tx
from carehub.models import Role
from carehub.problems import Problem
from carehub.runtime import Runtime
from carehub.sla import policies
from carehub.sla.policies import SlaPolicyCreate, SlaPolicyPublic, SlaPolicyUpdate

router = APIRouter(prefix="/api/v1", tags=["sla policies"])
Writer = Annotated[CurrentAgent, Depends(require_role(Role.SUPERVISOR, Role.ADMIN))]


@asynccontextmanager
async def _writing(rt: Runtime) -> AsyncIterator[Tx]:
    """A transaction in which a policy for the same team and priority saved concurrently is a 409, not a 500."""
    try:
        async with rt.transaction() as tx:
            yield tx
    except IntegrityError:
        raise Problem(409, policies.DUPLICATE_RACE) from None


@router.get("/sla-policies")
async def list_sla_policies(rt: RuntimeDep, agent: TicketAgent) -> list[SlaPolicyPublic]:
    """Targets in business minutes per team and priority; team null is the default for teams without their own."""
    async with rt.transaction() as tx:
        return await policies.list_policies(tx.conn)


@router.post("/sla-policies", status_code=status.HTTP_201_CREATED)
async def create_sla_policy(payload: SlaPolicyCreate, rt: RuntimeDep, agent: Writer) -> SlaPolicyPublic:
    async with _writing(rt) as tx:
        return await policies.create(tx.conn, agent.id, payload, utcnow())


@router.patch("/sla-policies/{policy_id}")
async def update_sla_policy(policy_id: int, changes: SlaPolicyUpdate, rt: RuntimeDep, agent: Writer) -> SlaPolicyPublic:
    async with _writing(rt) as tx:
        return await policies.change(tx.conn, agent.id, policy_id, changes, utcnow())


@router.delete("/sla-policies/{policy_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_sla_policy(policy_id: int, rt: RuntimeDep, agent: Writer) -> Response:
    async with rt.transaction() as tx:
        await policies.remove(tx.conn, agent.id, policy_id, utcnow())
    return Response(status_code=status.HTTP_204_NO_CONTENT)
