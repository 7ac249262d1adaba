"""The agent API: bearer auth and roles, listing and reading tickets, replying on the resident's channel, claiming."""

from __future__ import annotations

import asyncio

import pytest

from carehub.models import Message, Role
from carehub.settings import Settings
from tests.conftest import Hub, running_hub
from tests.fakes.twilio_api import FakeTwilioApi
from tests.support.store_queries import count_rows
from tests.support.twilio import text_hub

RESIDENT = "+19055550123"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def open_ticket(hub: Hub, fake: FakeTwilioApi, body: str = "Pothole on Brock Rd", sender: str = RESIDENT) -> str:
    assert (await text_hub(hub.client, sender, body)).status_code == 200
    await fake.wait_for(len(fake.accepted) + 1)  # the acknowledgement
    token = await hub.agent_token(Role.SUPERVISOR, email="lister@city.test")
    page = (await hub.client.get("/api/v1/tickets", headers=auth(token))).json()
    return str(page["items"][0]["reference"])


async def test_request_without_token_is_401_problem_with_challenge(hub: Hub) -> None:
    response = await hub.client.get("/api/v1/tickets")

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in response.json()["detail"]


async def test_unknown_token_is_401(hub: Hub) -> None:
    response = await hub.client.get("/api/v1/tickets", headers=auth("chub_not-a-real-token"))

    assert response.status_code == 401
    assert "unknown" in response.json()["detail"]


async def test_communications_staff_cannot_work_tickets(hub: Hub) -> None:
    token = await hub.agent_token(Role.COMMUNICATIONS)

    response = await hub.client.get("/api/v1/tickets", headers=auth(token))

    assert response.status_code == 403
    assert "communications" in response.json()["detail"]


async def test_agent_reads_ticket_with_messages_and_ack_delivery_status(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    ref = await open_ticket(hub, fake_twilio, "Snow plow damaged my lawn")
    token = await hub.agent_token()

    response = await hub.client.get(f"/api/v1/tickets/{ref}", headers=auth(token))

    assert response.status_code == 200
    ticket = response.json()
    assert ticket["reference"] == ref
    assert ticket["contact_addresses"] == [f"sms:{RESIDENT}"]
    inbound, ack = ticket["messages"]
    assert (inbound["direction"], inbound["body"]) == ("in", "Snow plow damaged my lawn")
    assert ack["direction"] == "out"
    assert ack["delivery"]["status"] in {"sent", "sending", "queued"}


async def test_reply_is_delivered_through_twilio_and_status_callbacks_move_it_forward(
    hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    ref = await open_ticket(hub, fake_twilio)
    token = await hub.agent_token()

    response = await hub.client.post(
        f"/api/v1/tickets/{ref}/replies", json={"body": "Crews are on the way."}, headers=auth(token)
    )

    assert response.status_code == 201
    assert response.json()["delivery"]["status"] == "queued"
    _, reply = await fake_twilio.wait_for(2)
    assert (reply.to, reply.body) == (RESIDENT, "Crews are on the way.")
    for status in ("delivered", "sent"):  # out of order, as Twilio's callbacks often are
        webhook = fake_twilio.status_callback(reply.sid, status)
        assert (
            await hub.client.post(
                webhook.url.removeprefix("https://hub.test"), data=dict(webhook.fields), headers=webhook.headers
            )
        ).status_code == 204
    ticket = (await hub.client.get(f"/api/v1/tickets/{ref}", headers=auth(token))).json()
    assert ticket["status"] == "open"
    assert ticket["messages"][-1]["delivery"]["status"] == "delivered"


async def test_reply_with_same_idempotency_key_sends_once(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    ref = await open_ticket(hub, fake_twilio)
    token = await hub.agent_token()
    headers = {**auth(token), "Idempotency-Key": "reply-7f3a"}

    first = await hub.client.post(f"/api/v1/tickets/{ref}/replies", json={"body": "On it."}, headers=headers)
    second = await hub.client.post(f"/api/v1/tickets/{ref}/replies", json={"body": "On it."}, headers=headers)

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] == second.json()["id"]
    await fake_twilio.wait_for(2)
    assert await count_rows(hub.runtime.engine, Message) == 3


async def test_reply_too_long_for_sms_is_422_problem(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    ref = await open_ticket(hub, fake_twilio)
    token = await hub.agent_token()

    response = await hub.client.post(f"/api/v1/tickets/{ref}/replies", json={"body": "x" * 1601}, headers=auth(token))

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "1600" in response.json()["detail"]


async def test_unknown_ticket_is_404_problem(hub: Hub) -> None:
    token = await hub.agent_token()

    response = await hub.client.get("/api/v1/tickets/PKR-999999", headers=auth(token))

    assert response.status_code == 404
    assert "PKR-999999" in response.json()["detail"]


async def test_second_agent_cannot_claim_a_claimed_ticket(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    ref = await open_ticket(hub, fake_twilio)
    alice = await hub.agent_token(email="alice@city.test")
    bob = await hub.agent_token(email="bob@city.test")

    results = await asyncio.gather(
        hub.client.post(f"/api/v1/tickets/{ref}/claim", headers=auth(alice)),
        hub.client.post(f"/api/v1/tickets/{ref}/claim", headers=auth(bob)),
    )

    assert sorted(r.status_code for r in results) == [204, 409]


async def test_resolved_ticket_reopens_when_the_resident_writes_again(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    ref = await open_ticket(hub, fake_twilio)
    token = await hub.agent_token()
    resolved = await hub.client.patch(f"/api/v1/tickets/{ref}", json={"status": "resolved"}, headers=auth(token))
    assert resolved.json()["status"] == "resolved"

    await text_hub(hub.client, RESIDENT, "Still not fixed")

    ticket = (await hub.client.get(f"/api/v1/tickets/{ref}", headers=auth(token))).json()
    assert ticket["status"] == "open"
    assert ticket["messages"][-1]["body"] == "Still not fixed"


async def test_ticket_list_pages_by_cursor_and_filters(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    for i in range(3):
        await text_hub(hub.client, f"+1905555020{i}", f"question {i}")
    token = await hub.agent_token()

    first = (await hub.client.get("/api/v1/tickets?limit=2", headers=auth(token))).json()
    second = (
        await hub.client.get(f"/api/v1/tickets?limit=2&cursor={first['next_cursor']}", headers=auth(token))
    ).json()
    unassigned = (await hub.client.get("/api/v1/tickets?assignee=none&status=new", headers=auth(token))).json()

    assert [t["reference"] for t in first["items"]] == ["PKR-000003", "PKR-000002"]
    assert [t["reference"] for t in second["items"]] == ["PKR-000001"]
    assert second["next_cursor"] is None
    assert len(unassigned["items"]) == 3


@pytest.mark.parametrize("query", ["limit=0", "limit=abc", "status=bogus", "cursor=-1"])
async def test_bad_query_is_422_problem_naming_the_field(hub: Hub, query: str) -> None:
    token = await hub.agent_token()

    response = await hub.client.get(f"/api/v1/tickets?{query}", headers=auth(token))

    assert response.status_code == 422
    body = response.json()
    assert body["title"] == "Invalid request"
    assert query.split("=")[0] in body["detail"]


async def test_openapi_schema_is_served(hub: Hub) -> None:
    schema = (await hub.client.get("/openapi.json")).json()

    assert "/api/v1/tickets/{ref}/replies" in schema["paths"]
    assert "/webhooks/twilio/sms" in schema["paths"]


async def test_health_and_readiness(hub: Hub) -> None:
    assert (await hub.client.get("/healthz")).json() == {"status": "ok"}
    ready = (await hub.client.get("/readyz")).json()
    assert ready["checks"]["database"] == "ok"


async def test_readiness_is_503_problem_when_redis_is_unreachable(settings: Settings) -> None:
    unreachable = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    async with running_hub(unreachable) as hub:
        response = await hub.client.get("/readyz")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["checks"]["redis"].startswith("unreachable")
    assert response.json()["checks"]["database"] == "ok"
