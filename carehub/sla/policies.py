"""SLA policies: first-response and resolution targets in business minutes, for one team and priority (team None:
every team without its own). Rules and queries; runs inside the caller's transaction, never commits; audited."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import Field, SQLModel

from carehub import audit
from carehub.db import AnyRow
from carehub.models import Priority, SlaPolicy
from carehub.problems import Problem
from carehub.sla.timers import recompute_policy_tickets

POLICIES = SlaPolicy.__table__  # type: ignore[attr-defined]
MAX_MINUTES = 525_600  # a year
PRIORITY_ORDER = list(Priority)


class SlaPolicyCreate(SQLModel):
    team: str | None = Field(default=None, min_length=1, max_length=64, description="None: the default policy.")
    priority: Priority
    first_response_minutes: int = Field(ge=1, le=MAX_MINUTES)
    resolution_minutes: int = Field(ge=1, le=MAX_MINUTES)


class SlaPolicyUpdate(SQLModel):
    team: str | None = Field(default=None, min_length=1, max_length=64, description="null: the default policy.")
    priority: Priority | None = None
    first_response_minutes: int | None = Field(default=None, ge=1, le=MAX_MINUTES)
    resolution_minutes: int | None = Field(default=None, ge=1, le=MAX_MINUTES)


class SlaPolicyPublic(SQLModel):
    id: int
    team: str | None
    priority: Priority
    first_response_minutes: int
    resolution_minutes: int
    created_at: datetime
    updated_at: datetime


def public(row: AnyRow) -> SlaPolicyPublic:
    return SlaPolicyPublic.model_validate(row._mapping)


async def list_policies(conn: AsyncConnection) -> list[SlaPolicyPublic]:
    """The default policies first, then by team; each team's by priority, lowest first."""
    rows = (await conn.execute(select(POLICIES))).all()
    ordered = sorted(rows, key=lambda r: (r.team is not None, r.team or "", PRIORITY_ORDER.index(r.priority)))
    return [public(r) for r in ordered]


async def get(conn: AsyncConnection, policy_id: int) -> AnyRow:
    row = (await conn.execute(select(POLICIES).where(POLICIES.c.id == policy_id))).one_or_none()
    if row is None:
        raise Problem(404, f"There is no SLA policy {policy_id}.")
    return row


async def create(conn: AsyncConnection, agent_id: int, payload: SlaPolicyCreate, now: datetime) -> SlaPolicyPublic:
    values: dict[str, Any] = {
        "team": _team(payload.team),
        "priority": payload.priority.value,
        "first_response_minutes": payload.first_response_minutes,
        "resolution_minutes": payload.resolution_minutes,
    }
    _check_targets(values)
    await _refuse_duplicate(conn, values["team"], values["priority"], policy_id=None)
    row = (
        await conn.execute(insert(POLICIES).values(**values, created_at=now, updated_at=now).returning(*POLICIES.c))
    ).one()
    await recompute_policy_tickets(conn, row.team, row.priority)
    await audit.by_agent(conn, agent_id, "create", "sla_policy", row.id, now, _detail(row))
    return public(row)


async def change(
    conn: AsyncConnection, agent_id: int, policy_id: int, changes: SlaPolicyUpdate, now: datetime
) -> SlaPolicyPublic:
    before = await get(conn, policy_id)
    given = changes.model_dump(exclude_unset=True)
    values: dict[str, Any] = {k: v for k, v in given.items() if v is not None or k == "team"}
    if not values:
        raise Problem(422, "Nothing to change: send team, priority, first_response_minutes or resolution_minutes.")
    if "team" in values:
        values["team"] = _team(values["team"])
    if "priority" in values:
        values["priority"] = Priority(values["priority"]).value
    merged = {**before._mapping, **values}
    _check_targets(merged)
    if (merged["team"], merged["priority"]) != (before.team, before.priority):
        await _refuse_duplicate(conn, merged["team"], merged["priority"], policy_id=policy_id)
    row = (
        await conn.execute(
            update(POLICIES).where(POLICIES.c.id == policy_id).values(**values, updated_at=now).returning(*POLICIES.c)
        )
    ).one()
    await recompute_policy_tickets(conn, before.team, before.priority)
    await recompute_policy_tickets(conn, row.team, row.priority)
    await audit.by_agent(
        conn, agent_id, "update", "sla_policy", policy_id, now, {"before": _detail(before), "after": _detail(row)}
    )
    return public(row)


async def remove(conn: AsyncConnection, agent_id: int, policy_id: int, now: datetime) -> None:
    before = await get(conn, policy_id)
    await conn.execute(delete(POLICIES).where(POLICIES.c.id == policy_id))
    await recompute_policy_tickets(conn, before.team, before.priority)
    await audit.by_agent(conn, agent_id, "delete", "sla_policy", policy_id, now, _detail(before))


def _team(team: str | None) -> str | None:
    if team is None:
        return None
    cleaned = team.strip().lower()
    if not cleaned:
        raise Problem(422, "team must not be blank; leave it out (null) for the default policy.")
    return cleaned


def _check_targets(values: dict[str, Any]) -> None:
    # Timers move from the first-response target to the resolution target: the first must not come after.
    if values["first_response_minutes"] > values["resolution_minutes"]:
        raise Problem(
            422,
            f"first_response_minutes ({values['first_response_minutes']}) cannot be longer than "
            f"resolution_minutes ({values['resolution_minutes']}).",
        )


DUPLICATE_RACE = "An SLA policy for that team and priority was saved at the same moment; reload the list."


async def _refuse_duplicate(conn: AsyncConnection, team: str | None, priority: str, *, policy_id: int | None) -> None:
    # Checked here too: the unique constraint does not catch two default policies (NULLs are distinct to it).
    query = select(POLICIES.c.id).where(
        POLICIES.c.priority == priority, POLICIES.c.team.is_(None) if team is None else POLICIES.c.team == team
    )
    if policy_id is not None:
        query = query.where(POLICIES.c.id != policy_id)
    if (await conn.execute(query)).first() is not None:
        raise Problem(409, _duplicate_message(team, priority))


def _duplicate_message(team: str | None, priority: str) -> str:
    whose = f"team '{team}'" if team is not None else "the default (teams without their own)"
    return f"There is already an SLA policy for {whose} at priority {priority}; change that one instead."


def _detail(row: AnyRow) -> dict[str, Any]:
    return {
        "team": row.team,
        "priority": row.priority,
        "first_response_minutes": row.first_response_minutes,
        "resolution_minutes": row.resolution_minutes,
    }
