"""The status table (carehub/tickets/status.py): closed is final for agents (the resident's next message opens a
new ticket); pending means waiting for the resident, so it needs a reply first, and the resident's next text
reopens it; nothing goes back to new. Every refusal is a 409 that says why."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Hub
from tests.support.twilio import text_hub

JO_MOBILE = "+14165550101"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def set_status(hub: Hub, token: str, status: str, reference: str = "PKR-000001") -> Any:
    return await hub.client.patch(f"/api/v1/tickets/{reference}", json={"status": status}, headers=bearer(token))


async def status_of(hub: Hub, token: str, reference: str = "PKR-000001") -> str:
    response = await hub.client.get(f"/api/v1/tickets/{reference}", headers=bearer(token))
    return str(response.json()["status"])


async def answered(hub: Hub, token: str) -> None:
    response = await hub.client.post(
        "/api/v1/tickets/PKR-000001/replies", json={"body": "Which address?"}, headers=bearer(token)
    )
    assert response.status_code == 201


async def test_a_closed_ticket_cannot_be_reopened_and_the_residents_next_text_opens_a_new_one(hub: Hub) -> None:
    token = await hub.agent_token()
    await text_hub(hub.client, JO_MOBILE, "Streetlight out")
    assert (await set_status(hub, token, "closed")).status_code == 200
    for wanted in ("open", "pending", "resolved", "new"):
        refused = await set_status(hub, token, wanted)
        assert refused.status_code == 409, wanted
        assert "a new message from the resident opens a new ticket" in refused.json()["detail"]
    assert (await set_status(hub, token, "closed")).status_code == 200  # no change asked: nothing refused
    await text_hub(hub.client, JO_MOBILE, "Still out")
    assert await status_of(hub, token) == "closed"
    assert await status_of(hub, token, "PKR-000002") == "new"


async def test_pending_needs_a_reply_first_and_the_residents_text_reopens_it(hub: Hub) -> None:
    token = await hub.agent_token()
    await text_hub(hub.client, JO_MOBILE, "Streetlight out")
    early = await set_status(hub, token, "pending")
    assert early.status_code == 409
    assert "reply first" in early.json()["detail"]
    assert await status_of(hub, token) == "new"

    await answered(hub, token)
    assert await status_of(hub, token) == "open"  # a reply takes a new ticket to open
    assert (await set_status(hub, token, "pending")).status_code == 200
    await text_hub(hub.client, JO_MOBILE, "It is the one at 12 Elm St")
    assert await status_of(hub, token) == "open"


@pytest.mark.parametrize(("path", "refused"), [(["open"], "new"), (["resolved"], "pending"), (["pending"], "new")])
async def test_moves_outside_the_table_are_refused(hub: Hub, path: list[str], refused: str) -> None:
    token = await hub.agent_token()
    await text_hub(hub.client, JO_MOBILE, "Streetlight out")
    await answered(hub, token)
    for step in path:
        assert (await set_status(hub, token, step)).status_code == 200
    response = await set_status(hub, token, refused)
    assert response.status_code == 409
    assert refused in response.json()["detail"]


async def test_resolved_can_be_reopened_by_the_agent_or_the_resident(hub: Hub) -> None:
    token = await hub.agent_token()
    await text_hub(hub.client, JO_MOBILE, "Streetlight out")
    assert (await set_status(hub, token, "resolved")).status_code == 200
    assert (await set_status(hub, token, "open")).status_code == 200
    assert (await set_status(hub, token, "resolved")).status_code == 200
    await text_hub(hub.client, JO_MOBILE, "Out again tonight")
    detail = (await hub.client.get("/api/v1/tickets/PKR-000001", headers=bearer(token))).json()
    assert (detail["status"], detail["resolved_at"]) == ("open", None)
