"""Round-robin auto-assignment: new tickets go in turn to online agents of the ticket's team who have room under
their capacity; a ticket nobody has room for waits and is given out when someone frees up; an agent who goes
offline hands their unanswered tickets back, to online colleagues only; supervisors are never auto-assigned."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from carehub.clock import utcnow
from carehub.db import AnyRow
from carehub.models import Agent, Role, Ticket
from carehub.realtime.broker import Event
from carehub.realtime.events import AGENTS_TOPIC
from carehub.routing.assignment import OFFLINE_GRACE, assign_ticket, assign_waiting, rebalance
from carehub.settings import Settings
from carehub.tickets.reference import format_reference
from tests.carehub.chat.conftest import chat_settings
from tests.conftest import Hub
from tests.support.chat import agent_stream
from tests.support.chat import resident as chat_resident
from tests.support.live import live_hub
from tests.support.twilio import text_hub
from tests.support.waiting import eventually

TICKETS = Ticket.__table__  # type: ignore[attr-defined]
AGENTS = Agent.__table__  # type: ignore[attr-defined]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def admin(hub: Hub) -> dict[str, str]:
    return bearer(await hub.agent_token(role=Role.ADMIN, email="admin@city.test"))


async def new_agent(
    hub: Hub,
    admin: dict[str, str],
    email: str,
    *,
    role: Role = Role.AGENT,
    online: bool = True,
    **changes: object,
) -> int:
    token = await hub.agent_token(role=role, email=email)
    agent_id = int((await hub.client.get("/api/v1/me", headers=bearer(token))).json()["id"])
    if changes:
        response = await hub.client.patch(f"/api/v1/agents/{agent_id}", json=changes, headers=admin)
        assert response.status_code == 200, response.text
    if online:
        await hub.runtime.presence.enter(agent_id)
    return agent_id


async def ticket_row(hub: Hub, ticket_id: int) -> AnyRow:
    async with hub.runtime.engine.connect() as conn:
        return (await conn.execute(select(TICKETS).where(TICKETS.c.id == ticket_id))).one()


async def arrive(hub: Hub, number: str, body: str = "Hello") -> int:
    """A resident texts in; returns the new ticket's id once its arrival automation has run."""
    response = await text_hub(hub.client, number, body)
    assert response.status_code == 200, response.text
    async with hub.runtime.engine.connect() as conn:
        ticket_id = int((await conn.execute(select(TICKETS.c.id).order_by(TICKETS.c.id.desc()).limit(1))).scalar_one())

    async def is_routed() -> bool:
        return (await ticket_row(hub, ticket_id)).routed_at is not None

    await eventually(is_routed, what=f"ticket {ticket_id} routed")
    return ticket_id


async def assignee(hub: Hub, ticket_id: int) -> int | None:
    value: int | None = (await ticket_row(hub, ticket_id)).assignee_id
    return value


def resident(n: int) -> str:
    return f"+1905555{n:04d}"


async def test_tickets_go_round_robin_to_online_agents_and_the_console_is_told(hub: Hub, admin: dict[str, str]) -> None:
    events: list[Event] = []
    await hub.runtime.broker.listen(AGENTS_TOPIC, events.append)
    agents = [await new_agent(hub, admin, f"agent{i}@city.test") for i in range(3)]
    await new_agent(hub, admin, "away@city.test", online=False)

    tickets = [await arrive(hub, resident(i)) for i in range(9)]

    assert [await assignee(hub, t) for t in tickets] == agents * 3
    assigned = [e.text for e in events if e.text.startswith("event: ticket.assigned")]
    assert len(assigned) == 9
    reference = format_reference(hub.settings.ticket_prefix, tickets[0])
    assert f'"reference":"{reference}","assignee_id":{agents[0]}' in assigned[0]


async def test_a_ticket_waits_when_everyone_is_full_and_goes_out_when_one_is_resolved(
    hub: Hub, admin: dict[str, str]
) -> None:
    agent = await new_agent(hub, admin, "cap@city.test", capacity=2)
    first, second, third = [await arrive(hub, resident(i)) for i in range(3)]
    assert [await assignee(hub, t) for t in (first, second, third)] == [agent, agent, None]

    reference = format_reference(hub.settings.ticket_prefix, first)
    resolved = await hub.client.patch(f"/api/v1/tickets/{reference}", json={"status": "resolved"}, headers=admin)
    assert resolved.status_code == 200, resolved.text

    async def third_assigned() -> bool:
        return await assignee(hub, third) == agent

    await eventually(third_assigned, what="the waiting ticket given to the agent who freed up")


async def test_capacity_is_set_by_admins_within_bounds(hub: Hub, admin: dict[str, str]) -> None:
    agent = await new_agent(hub, admin, "bounds@city.test", online=False)

    too_many = await hub.client.patch(f"/api/v1/agents/{agent}", json={"capacity": 51}, headers=admin)
    negative = await hub.client.patch(f"/api/v1/agents/{agent}", json={"capacity": -1}, headers=admin)
    fine = await hub.client.patch(f"/api/v1/agents/{agent}", json={"capacity": 0}, headers=admin)

    assert (too_many.status_code, negative.status_code) == (422, 422)
    assert fine.json()["capacity"] == 0


async def test_an_agent_going_offline_hands_unanswered_tickets_to_online_colleagues(
    hub: Hub, admin: dict[str, str]
) -> None:
    leaving = await new_agent(hub, admin, "leaving@city.test")
    staying = await new_agent(hub, admin, "staying@city.test")
    await new_agent(hub, admin, "offline@city.test", online=False)
    unanswered, answered, other = [await arrive(hub, resident(i)) for i in range(3)]
    async with hub.runtime.transaction() as tx:
        # Both early tickets were the leaving agent's; one has been answered already, so it stays theirs.
        await tx.conn.execute(
            update(TICKETS).where(TICKETS.c.id.in_([unanswered, answered])).values(assignee_id=leaving)
        )
        await tx.conn.execute(update(TICKETS).where(TICKETS.c.id == answered).values(first_response_at=utcnow()))

    await hub.runtime.presence.leave(leaving)
    now = utcnow()
    await rebalance(hub.runtime, now)  # a console reloading is not leaving: nothing moves yet
    assert [await assignee(hub, t) for t in (unanswered, answered)] == [leaving, leaving]
    later = now + OFFLINE_GRACE + timedelta(seconds=10)
    await rebalance(hub.runtime, later)

    assert await assignee(hub, unanswered) == staying
    assert await assignee(hub, answered) == leaving
    assert await assignee(hub, other) == staying

    await hub.runtime.presence.leave(staying)  # nobody online: back to the pool, not to an offline agent
    await rebalance(hub.runtime, later)
    await rebalance(hub.runtime, later + OFFLINE_GRACE)
    assert [await assignee(hub, t) for t in (unanswered, answered, other)] == [None, leaving, None]


async def test_team_boundaries_hold_and_supervisors_and_disabled_agents_are_not_auto_assigned(
    hub: Hub, admin: dict[str, str]
) -> None:
    await new_agent(hub, admin, "super@city.test", role=Role.SUPERVISOR)
    await new_agent(hub, admin, "disabled@city.test", teams=["roads"], is_active=False)
    nobody = await arrive(hub, resident(1))
    assert await assignee(hub, nobody) is None  # only a supervisor and a disabled agent are online
    await assign_waiting(hub.runtime, utcnow())
    assert await assignee(hub, nobody) is None
    async with hub.runtime.transaction() as tx:  # out of the way of the rotation below
        await tx.conn.execute(update(TICKETS).where(TICKETS.c.id == nobody).values(status="closed"))

    roads = await new_agent(hub, admin, "roads@city.test", teams=["roads"])
    parks = await new_agent(hub, admin, "parks@city.test", teams=["parks"])
    rule = {"name": "Roads", "keywords": ["pothole"], "set_team": "roads"}
    assert (await hub.client.post("/api/v1/routing-rules", json=rule, headers=admin)).status_code == 201

    potholes = [await arrive(hub, resident(10 + i), "A pothole again") for i in range(2)]
    untagged = await arrive(hub, resident(20), "Something else")

    assert [await assignee(hub, t) for t in potholes] == [roads, roads]  # never the parks agent
    assert await assignee(hub, untagged) == parks  # no team: anyone, and parks has waited longest


async def test_replicas_assigning_different_tickets_at_once_do_not_exceed_capacity(
    hub: Hub, admin: dict[str, str]
) -> None:
    waiting = [await arrive(hub, resident(i)) for i in range(6)]  # nobody online: all wait
    assert [await assignee(hub, t) for t in waiting] == [None] * 6
    agent = await new_agent(hub, admin, "one@city.test", online=False)
    async with hub.runtime.transaction() as tx:
        await tx.conn.execute(update(AGENTS).where(AGENTS.c.id == agent).values(capacity=1))

    async def assign_in_own_transaction(ticket_id: int) -> int | None:
        async with hub.runtime.transaction() as tx:
            return await assign_ticket(tx, hub.settings, ticket_id, {agent}, utcnow())

    given = await asyncio.gather(*(assign_in_own_transaction(t) for t in waiting))

    assert given.count(agent) == 1
    assert [await assignee(hub, t) for t in waiting].count(agent) == 1


async def test_a_chat_opened_while_an_agent_holds_the_live_stream_is_routed_and_assigned_to_them(
    settings: Settings,
) -> None:
    async with live_hub(chat_settings(settings)) as live:
        admin = bearer(await live.agent_token(role=Role.ADMIN, email="admin@city.test"))
        token = await live.agent_token(email="parks@city.test")
        agent = int((await live.client.get("/api/v1/me", headers=bearer(token))).json()["id"])
        await live.client.patch(f"/api/v1/agents/{agent}", json={"teams": ["parks"]}, headers=admin)
        rule = {"name": "Parks", "keywords": ["park"], "set_team": "parks", "add_labels": ["outdoors"]}
        assert (await live.client.post("/api/v1/routing-rules", json=rule, headers=admin)).status_code == 201

        async with agent_stream(live.url, token) as stream, chat_resident(live.ws_url) as jo:  # the stream: online
            await jo.hello()
            await jo.say("Is the park open on Sunday?")
            routed = await stream.wait_for("ticket.routed", team="parks")
            assigned = await stream.wait_for("ticket.assigned", assignee_id=agent)

        assert routed["labels"] == ["outdoors"]
        assert assigned["reference"] == jo.reference
