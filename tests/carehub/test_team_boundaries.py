"""Role and team boundaries on the agent API: an agent works their teams' tickets and those not yet given a team;
another team's ticket is as absent as one that does not exist, everywhere (list, read, reply, claim, chat, live
stream); supervisors and admins see all; communications staff do not work tickets."""

from __future__ import annotations

import pytest

from carehub.models import Role
from carehub.settings import Settings
from tests.conftest import Hub
from tests.support.chat import agent_stream
from tests.support.live import live_hub
from tests.support.mail import post_email, resident_mail


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def agent_in(hub: Hub, admin: str, email: str, teams: list[str]) -> str:
    token = await hub.agent_token(email=email)
    me = (await hub.client.get("/api/v1/me", headers=bearer(token))).json()
    response = await hub.client.patch(f"/api/v1/agents/{me['id']}", json={"teams": teams}, headers=bearer(admin))
    assert response.status_code == 200, response.text
    assert response.json()["teams"] == sorted(teams)
    return token


async def ticket_for(hub: Hub, supervisor: str, sender: str, team: str | None) -> str:
    await post_email(hub.client, resident_mail(sender, f"Question from {sender}", "Hello.\n"))
    listing = (await hub.client.get("/api/v1/tickets", headers=bearer(supervisor))).json()["items"]
    reference = str(listing[0]["reference"])
    if team is not None:
        response = await hub.client.patch(
            f"/api/v1/tickets/{reference}", json={"team": team}, headers=bearer(supervisor)
        )
        assert response.status_code == 200, response.text
    return reference


@pytest.fixture
async def setup(hub: Hub) -> dict[str, str]:
    return await setup_teams(hub)


async def setup_teams(hub: Hub) -> dict[str, str]:
    admin = await hub.agent_token(role=Role.ADMIN, email="admin@city.test")
    supervisor = await hub.agent_token(role=Role.SUPERVISOR, email="sup@city.test")
    return {
        "admin": admin,
        "supervisor": supervisor,
        "roads_agent": await agent_in(hub, admin, "rita@city.test", ["roads"]),
        "roads": await ticket_for(hub, supervisor, "a@example.org", "Roads"),
        "parks": await ticket_for(hub, supervisor, "b@example.org", "parks"),
        "none": await ticket_for(hub, supervisor, "c@example.org", None),
    }


async def test_an_agent_lists_only_their_teams_tickets_and_unrouted_ones(hub: Hub, setup: dict[str, str]) -> None:
    mine = (await hub.client.get("/api/v1/tickets", headers=bearer(setup["roads_agent"]))).json()["items"]
    assert {t["reference"] for t in mine} == {setup["roads"], setup["none"]}
    everything = (await hub.client.get("/api/v1/tickets", headers=bearer(setup["supervisor"]))).json()["items"]
    assert {t["reference"] for t in everything} == {setup["roads"], setup["parks"], setup["none"]}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "", None),
        ("POST", "/replies", {"body": "Hello"}),
        ("POST", "/claim", None),
        ("PATCH", "", {"status": "pending"}),
        ("POST", "/typing", {"on": True}),
    ],
)
async def test_another_teams_ticket_is_not_found_for_any_action(
    hub: Hub, setup: dict[str, str], method: str, path: str, body: object
) -> None:
    response = await hub.client.request(
        method, f"/api/v1/tickets/{setup['parks']}{path}", json=body, headers=bearer(setup["roads_agent"])
    )
    assert response.status_code == 404
    assert "your teams' queues" in response.json()["detail"]
    own = await hub.client.get(f"/api/v1/tickets/{setup['roads']}", headers=bearer(setup["roads_agent"]))
    assert own.status_code == 200
    assert own.json()["team"] == "roads"  # team names are kept in lower case


async def test_communications_staff_cannot_read_or_reply_to_tickets(hub: Hub, setup: dict[str, str]) -> None:
    comms = await hub.agent_token(role=Role.COMMUNICATIONS, email="comms@city.test")
    read = await hub.client.get(f"/api/v1/tickets/{setup['none']}", headers=bearer(comms))
    reply = await hub.client.post(
        f"/api/v1/tickets/{setup['none']}/replies", json={"body": "Hi"}, headers=bearer(comms)
    )
    assert (read.status_code, reply.status_code) == (403, 403)


async def test_a_ticket_goes_only_to_an_agent_of_its_team(hub: Hub, setup: dict[str, str]) -> None:
    parks_agent = await agent_in(hub, setup["admin"], "pat@city.test", ["parks"])
    pat = (await hub.client.get("/api/v1/me", headers=bearer(parks_agent))).json()
    refused = await hub.client.patch(
        f"/api/v1/tickets/{setup['roads']}", json={"assignee_id": pat["id"]}, headers=bearer(setup["supervisor"])
    )
    assert refused.status_code == 422
    assert "not in team 'roads'" in refused.json()["detail"]
    given = await hub.client.patch(
        f"/api/v1/tickets/{setup['parks']}", json={"assignee_id": pat["id"]}, headers=bearer(setup["supervisor"])
    )
    assert given.status_code == 200


async def test_the_live_stream_shows_an_agent_only_their_teams_tickets(settings: Settings) -> None:
    async with live_hub(settings) as live:  # a real server: the stream must flow while the test reads it
        hub_setup = await setup_teams(live)
        async with agent_stream(live.url, hub_setup["roads_agent"]) as stream:
            for sender, topic in (("b@example.org", "parks"), ("a@example.org", "roads"), ("c@example.org", "none")):
                subject = f"Re: Question [{hub_setup[topic]}]"  # the reference threads it onto that ticket
                await post_email(live.client, resident_mail(sender, subject, f"On {topic}.\n"))
            await stream.wait_for("message.created", body="On none.")
            # The roads ticket moves to parks: from then on its news is not this agent's to see.
            moved = await live.client.patch(
                f"/api/v1/tickets/{hub_setup['roads']}", json={"team": "parks"}, headers=bearer(hub_setup["supervisor"])
            )
            assert moved.status_code == 200
            for sender, topic, body in (
                ("a@example.org", "roads", "After the move."),
                ("c@example.org", "none", "End."),
            ):
                subject = f"Re: Question [{hub_setup[topic]}]"
                await post_email(live.client, resident_mail(sender, subject, body + "\n"))
            await stream.wait_for("message.created", body="End.")
        shown = [data["body"] for name, data in stream.events if name == "message.created"]
        assert shown == ["On roads.", "On none.", "End."]  # the parks follow-ups never came
