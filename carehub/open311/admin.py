"""Admins configure Open311: the services the city takes requests for (what apps list and ask, which team's queue
they join) and the API keys apps post with. /api/v1/open311/..., admins only, audited."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, Field
from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub import audit
from carehub.agents.auth import CurrentAgent, RuntimeDep, require_role
from carehub.clock import utcnow
from carehub.models import Role
from carehub.open311 import catalogue, keys
from carehub.open311.catalogue import SERVICES, ServiceCreate, ServiceFields, ServicePublic
from carehub.problems import Problem

router = APIRouter(prefix="/api/v1/open311", tags=["open311 admin"])
Admin = Annotated[CurrentAgent, Depends(require_role(Role.ADMIN))]


class KeyCreate(BaseModel):
    label: str = Field(min_length=1, max_length=100, description="Which app or partner the key is for.")


class KeyPublic(BaseModel):
    id: int
    label: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyIssued(KeyPublic):
    key: str = Field(description="The key itself: shown this once, never stored.")


@router.get("/services")
async def list_services(rt: RuntimeDep, agent: Admin) -> list[ServicePublic]:
    async with rt.transaction() as tx:
        return [catalogue.public(r) for r in await catalogue.all_services(tx.conn, active_only=False)]


@router.post("/services", status_code=status.HTTP_201_CREATED)
async def create_service(body: ServiceCreate, rt: RuntimeDep, agent: Admin) -> ServicePublic:
    now = utcnow()
    try:
        async with rt.transaction() as tx:
            await tx.conn.execute(
                insert(SERVICES).values(**body.model_dump(mode="json"), created_at=now, updated_at=now)
            )
            await _audit(tx.conn, agent, "create", body.code, now)
            row = await catalogue.service(tx.conn, body.code)
    except IntegrityError:
        raise Problem(409, f"There is already a service with code '{body.code}'; change it with PUT.") from None
    assert row is not None  # noqa: S101 - inserted just above
    return catalogue.public(row)


@router.put("/services/{code}")
async def replace_service(code: str, body: ServiceFields, rt: RuntimeDep, agent: Admin) -> ServicePublic:
    now = utcnow()
    async with rt.transaction() as tx:
        result = await tx.conn.execute(
            update(SERVICES).where(SERVICES.c.code == code).values(**body.model_dump(mode="json"), updated_at=now)
        )
        if not result.rowcount:
            raise Problem(404, f"There is no service with code '{code}'.")
        await _audit(tx.conn, agent, "update", code, now)
        row = await catalogue.service(tx.conn, code)
    assert row is not None  # noqa: S101 - updated just above
    return catalogue.public(row)


@router.get("/keys")
async def list_keys(rt: RuntimeDep, agent: Admin) -> list[KeyPublic]:
    async with rt.transaction() as tx:
        return [KeyPublic.model_validate(dict(r._mapping)) for r in await keys.all_keys(tx.conn)]


@router.post("/keys", status_code=status.HTTP_201_CREATED)
async def issue_key(body: KeyCreate, rt: RuntimeDep, agent: Admin) -> KeyIssued:
    now = utcnow()
    async with rt.transaction() as tx:
        key_id, key = await keys.issue(tx.conn, body.label, agent.id, now)
        await audit.by_agent(tx.conn, agent.id, "create", "open311_key", key_id, now, {"label": body.label})
    return KeyIssued(id=key_id, label=body.label, created_at=now, last_used_at=None, revoked_at=None, key=key)


@router.delete("/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_key(key_id: int, rt: RuntimeDep, agent: Admin) -> None:
    now = utcnow()
    async with rt.transaction() as tx:
        if not await keys.revoke(tx.conn, key_id, now):
            raise Problem(404, f"There is no live Open311 key {key_id}.")
        await audit.by_agent(tx.conn, agent.id, "revoke", "open311_key", key_id, now)


async def _audit(conn: AsyncConnection, agent: CurrentAgent, action: str, code: str, now: datetime) -> None:
    """Services are keyed by code, not id: the code is in the detail."""
    await audit.by_agent(conn, agent.id, action, "open311_service", 0, now, {"code": code})
