"""Routing rules over the agent API (/api/v1/routing-rules): everyone working tickets reads them; supervisors and
admins write them. Every change is audited."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status

from carehub import audit
from carehub.agents.auth import CurrentAgent, RuntimeDep, TicketAgent, require_role
from carehub.clock import utcnow
from carehub.db import AnyRow
from carehub.models import Role
from carehub.problems import Problem
from carehub.routing import repository
from carehub.routing.rules import RoutingRuleCreate, RoutingRulePublic, RoutingRuleUpdate, has_action

router = APIRouter(prefix="/api/v1/routing-rules", tags=["routing rules"])
Writer = Annotated[CurrentAgent, Depends(require_role(Role.SUPERVISOR, Role.ADMIN))]
REQUIRED = ("name", "position", "is_active")
NO_ACTION = "A rule must do something: give set_team, set_priority and/or add_labels."


def _public(row: AnyRow) -> RoutingRulePublic:
    return RoutingRulePublic.model_validate(row._mapping)


@router.get("")
async def list_rules(rt: RuntimeDep, agent: TicketAgent) -> list[RoutingRulePublic]:
    """Every rule in the order they are tried (position, then id); the first active match routes a ticket."""
    async with rt.transaction() as tx:
        return [_public(r) for r in await repository.list_rules(tx.conn)]


@router.get("/{rule_id}")
async def get_rule(rule_id: int, rt: RuntimeDep, agent: TicketAgent) -> RoutingRulePublic:
    async with rt.transaction() as tx:
        row = await repository.get_rule(tx.conn, rule_id)
    if row is None:
        raise Problem(404, f"There is no routing rule {rule_id}.")
    return _public(row)


async def _check_contact(rt: RuntimeDep, values: dict[str, Any]) -> None:
    contact_id = values.get("contact_id")
    if contact_id is not None:
        async with rt.transaction() as tx:
            if not await repository.contact_exists(tx.conn, contact_id):
                raise Problem(422, f"There is no contact {contact_id} for this rule to match.")


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_rule(payload: RoutingRuleCreate, rt: RuntimeDep, agent: Writer) -> RoutingRulePublic:
    """Conditions left out (or null) match anything; keywords match whole words in the subject or first message,
    whatever their case. Teams and labels are stored in lowercase."""
    values = payload.model_dump(mode="json")
    if not has_action(values):
        raise Problem(422, NO_ACTION)
    await _check_contact(rt, values)
    now = utcnow()
    async with rt.transaction() as tx:
        row = await repository.create_rule(tx.conn, values, agent.id, now)
        await audit.by_agent(tx.conn, agent.id, "create", "routing_rule", row.id, now, values)
    return _public(row)


@router.patch("/{rule_id}")
async def update_rule(rule_id: int, changes: RoutingRuleUpdate, rt: RuntimeDep, agent: Writer) -> RoutingRulePublic:
    """Send only what changes; null clears a condition or an action."""
    values = changes.model_dump(mode="json", exclude_unset=True)
    if not values:
        raise Problem(422, "Nothing to change: send one or more of the rule's fields.")
    cleared = [name for name in REQUIRED if name in values and values[name] is None]
    if cleared:
        raise Problem(422, f"{', '.join(cleared)} cannot be null.")
    await _check_contact(rt, values)
    now = utcnow()
    async with rt.transaction() as tx:
        row = await repository.get_rule(tx.conn, rule_id)
        if row is None:
            raise Problem(404, f"There is no routing rule {rule_id}.")
        if not has_action({**row._mapping, **values}):
            raise Problem(422, NO_ACTION)
        row = await repository.update_rule(tx.conn, rule_id, values)
        await audit.by_agent(tx.conn, agent.id, "update", "routing_rule", rule_id, now, values)
    return _public(row)


@router.delete("/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_rule(rule_id: int, rt: RuntimeDep, agent: Writer) -> Response:
    async with rt.transaction() as tx:
        if await repository.get_rule(tx.conn, rule_id) is None:
            raise Problem(404, f"There is no routing rule {rule_id}.")
        await repository.delete_rule(tx.conn, rule_id)
        await audit.by_agent(tx.conn, agent.id, "delete", "routing_rule", rule_id, utcnow())
    return Response(status_code=status.HTTP_204_NO_CONTENT)
