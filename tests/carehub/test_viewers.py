"""Collision detection: agents who have a ticket open, and whether they are typing, shown to each other across
replicas (Redis) or in one process; entries expire when the heartbeats stop; agents are told when it changes."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from carehub.realtime.viewers import VIEWER_TTL_SECONDS, RedisViewers, Viewer, Viewers
from carehub.settings import Settings
from tests.carehub.test_team_boundaries import setup_teams
from tests.conftest import Hub, running_hub
from tests.support.chat import agent_stream
from tests.support.live import live_hub
from tests.support.mail import post_email, resident_mail
from tests.support.stores import RUN_ID


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def view(hub: Hub, token: str, typing: bool = False, reference: str = "PKR-000001") -> Any:
    response = await hub.client.post(
        f"/api/v1/tickets/{reference}/viewing", json={"typing": typing}, headers=bearer(token)
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_two_agents_see_each_other_and_who_is_typing(hub: Hub) -> None:
    ana = await hub.agent_token(email="ana@city.test")
    bo = await hub.agent_token(email="bo@city.test")
    ana_id = (await hub.client.get("/api/v1/me", headers=bearer(ana))).json()["id"]
    bo_id = (await hub.client.get("/api/v1/me", headers=bearer(bo))).json()["id"]
    await post_email(hub.client, resident_mail("jo@example.org", "Pothole", "Main St.\n"))

    assert await view(hub, ana) == []
    assert await view(hub, bo, typing=True) == [{"agent_id": ana_id, "name": "agent", "typing": False}]
    assert await view(hub, ana) == [{"agent_id": bo_id, "name": "agent", "typing": True}]
    left = await hub.client.delete("/api/v1/tickets/PKR-000001/viewing", headers=bearer(bo))
    assert left.status_code == 204
    assert await view(hub, ana) == []


async def test_another_teams_ticket_cannot_be_watched(hub: Hub) -> None:
    teams = await setup_teams(hub)
    response = await hub.client.post(
        f"/api/v1/tickets/{teams['parks']}/viewing", json={"typing": False}, headers=bearer(teams["roads_agent"])
    )
    assert response.status_code == 404


@pytest.fixture(params=["in-process", "redis"])
async def viewers(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[Viewers]:
    found = (
        Viewers()
        if request.param == "in-process"
        else RedisViewers(redis_url, f"carehub-test-{RUN_ID}-{secrets.token_hex(4)}")
    )
    try:
        yield found
    finally:
        await found.aclose()


async def test_a_viewer_whose_heartbeats_stop_expires(viewers: Viewers) -> None:
    ticket = 4242
    ana, bo = Viewer(1, "Ana", typing=False), Viewer(2, "Bo", typing=True)
    start = 1_000_000.0
    first = await viewers.heartbeat(ticket, ana, start)
    assert (first.viewers, first.changed) == ([ana], True)
    second = await viewers.heartbeat(ticket, bo, start + 10)
    assert (second.others(2), second.changed) == ([ana], True)
    same = await viewers.heartbeat(ticket, bo, start + 20)
    assert (same.viewers, same.changed) == ([ana, bo], False)  # nothing new: nobody is told
    # Ana's last heartbeat was 30 s ago: she is gone, which is a change.
    later = await viewers.heartbeat(ticket, bo, start + VIEWER_TTL_SECONDS)
    assert (later.viewers, later.changed) == ([bo], True)
    assert await viewers.on(ticket, start + VIEWER_TTL_SECONDS) == [bo]
    left = await viewers.leave(ticket, 2, start + VIEWER_TTL_SECONDS + 1)
    assert (left.viewers, left.changed) == ([], True)
    assert (await viewers.leave(ticket, 2, start + VIEWER_TTL_SECONDS + 2)).changed is False


async def test_agents_on_two_replicas_see_each_other(settings: Settings, redis_url: str) -> None:
    shared = settings.model_copy(
        update={"redis_url": redis_url, "realtime_prefix": f"carehub-test-{RUN_ID}-{secrets.token_hex(4)}"}
    )
    async with running_hub(shared) as first, running_hub(shared) as second:
        ana = await first.agent_token(email="ana@city.test")
        bo = await first.agent_token(email="bo@city.test")
        ana_id = (await first.client.get("/api/v1/me", headers=bearer(ana))).json()["id"]
        await post_email(first.client, resident_mail("jo@example.org", "Pothole", "Main St.\n"))
        assert await view(first, ana, typing=True) == []
        assert await view(second, bo) == [{"agent_id": ana_id, "name": "agent", "typing": True}]
        assert (
            await second.client.delete("/api/v1/tickets/PKR-000001/viewing", headers=bearer(ana))
        ).status_code == 204
        assert await view(second, bo) == []


async def test_agents_are_told_when_the_viewers_change(settings: Settings) -> None:
    async with live_hub(settings) as live:
        ana = await live.agent_token(email="ana@city.test")
        bo = await live.agent_token(email="bo@city.test")
        ana_id = (await live.client.get("/api/v1/me", headers=bearer(ana))).json()["id"]
        await post_email(live.client, resident_mail("jo@example.org", "Pothole", "Main St.\n"))
        async with agent_stream(live.url, bo) as stream:
            await view(live, ana)
            await view(live, ana)  # a heartbeat that changes nothing tells nobody
            await view(live, ana, typing=True)
            event = await stream.wait_for(
                "ticket.viewers",
                reference="PKR-000001",
                viewers=[{"agent_id": ana_id, "name": "agent", "typing": True}],
            )
        told = [data["viewers"] for name, data in stream.events if name == "ticket.viewers"]
        assert told == [[{"agent_id": ana_id, "name": "agent", "typing": False}], event["viewers"]]
