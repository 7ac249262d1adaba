"""Contacts: a resident's history across channels beside a ticket (only tickets the agent may see; reading it is
audited), and an agent's explicit merge of two contacts that are one resident. New messages find their contact by
address, so while merged a text from the moved number reaches the kept contact, and after an undo its own again."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from carehub.models import AuditEvent, Role
from tests.carehub.test_team_boundaries import agent_in
from tests.conftest import Hub
from tests.support.mail import post_email, resident_mail
from tests.support.twilio import text_hub

AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]
JO_MOBILE = "+14165550101"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def get(hub: Hub, token: str, path: str) -> Any:
    response = await hub.client.get(path, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


async def contact_of(hub: Hub, token: str, reference: str) -> int:
    return int((await get(hub, token, f"/api/v1/tickets/{reference}"))["contact_id"])


async def reads_of_contact(hub: Hub, contact_id: int) -> int:
    async with hub.runtime.transaction() as tx:
        query = select(func.count()).where(
            AUDIT.c.entity_type == "contact", AUDIT.c.entity_id == contact_id, AUDIT.c.action == "read"
        )
        return int((await tx.conn.execute(query)).scalar_one())


def summary(contact: dict[str, Any]) -> tuple[list[str], list[str]]:
    return (
        sorted(f"{a['channel']}:{a['address']}" for a in contact["addresses"]),
        sorted(t["reference"] for t in contact["tickets"]),
    )


async def test_merge_shows_one_history_new_texts_reach_the_kept_contact_and_undo_restores(hub: Hub) -> None:
    token = await hub.agent_token()
    assert (await text_hub(hub.client, JO_MOBILE, "Garbage was not picked up")).status_code == 200
    await post_email(hub.client, resident_mail("jo@example.org", "Garbage", "Still not picked up.\n"))
    texter, writer = await contact_of(hub, token, "PKR-000001"), await contact_of(hub, token, "PKR-000002")
    assert texter != writer

    jo = await get(hub, token, f"/api/v1/contacts/{writer}")
    assert summary(jo) == (["email:jo@example.org"], ["PKR-000002"])
    assert jo["addresses"][0]["opted_out"] is False
    assert await reads_of_contact(hub, writer) == 1

    merged = await hub.client.post(f"/api/v1/contacts/{texter}/merge", json={"into": writer}, headers=bearer(token))
    assert merged.status_code == 201, merged.text
    merge_id = merged.json()["id"]
    assert merged.json()["ticket_ids"] == [1]
    assert summary(await get(hub, token, f"/api/v1/contacts/{writer}")) == (
        ["email:jo@example.org", f"sms:{JO_MOBILE}"],
        ["PKR-000001", "PKR-000002"],
    )
    gone = await get(hub, token, f"/api/v1/contacts/{texter}")
    assert (gone["merged_into_id"], gone["addresses"], gone["tickets"]) == (writer, [], [])
    assert [t["channel"] for t in (await get(hub, token, f"/api/v1/contacts/{writer}"))["tickets"]] == ["email", "sms"]

    # The SMS ticket is closed; Jo texts again: a new ticket, on the kept contact.
    closed = await hub.client.patch("/api/v1/tickets/PKR-000001", json={"status": "closed"}, headers=bearer(token))
    assert closed.status_code == 200
    await text_hub(hub.client, JO_MOBILE, "And this week too")
    assert await contact_of(hub, token, "PKR-000003") == writer

    undone = await hub.client.post(f"/api/v1/contact-merges/{merge_id}/undo", headers=bearer(token))
    assert undone.status_code == 200, undone.text
    # The ticket opened meanwhile from the moved number goes back with it: its replies go to that number.
    assert summary(await get(hub, token, f"/api/v1/contacts/{texter}")) == (
        [f"sms:{JO_MOBILE}"],
        ["PKR-000001", "PKR-000003"],
    )
    assert summary(await get(hub, token, f"/api/v1/contacts/{writer}")) == (["email:jo@example.org"], ["PKR-000002"])
    assert (await get(hub, token, f"/api/v1/contacts/{texter}"))["merged_into_id"] is None
    await text_hub(hub.client, JO_MOBILE, "Hello?")
    assert await contact_of(hub, token, "PKR-000003") == texter
    detail = await get(hub, token, "/api/v1/tickets/PKR-000003")
    assert [m["body"] for m in detail["messages"] if m["direction"] == "in"] == ["And this week too", "Hello?"]
    again = await hub.client.post(f"/api/v1/contact-merges/{merge_id}/undo", headers=bearer(token))
    assert again.status_code == 409


async def test_merge_refusals(hub: Hub) -> None:
    token = await hub.agent_token()
    for sender in ("a@example.org", "b@example.org", "c@example.org"):
        await post_email(hub.client, resident_mail(sender, "Noise", f"From {sender}.\n"))
    a, b, c = [await contact_of(hub, token, f"PKR-00000{i}") for i in (1, 2, 3)]

    async def merge(merged: int, into: int) -> Any:
        return await hub.client.post(f"/api/v1/contacts/{merged}/merge", json={"into": into}, headers=bearer(token))

    assert (await merge(a, a)).status_code == 422
    assert (await merge(a, 999)).status_code == 404
    assert (await merge(a, b)).status_code == 201
    assert (await merge(c, a)).status_code == 409  # a is merged: use b
    assert (await merge(a, c)).status_code == 409
    assert (await merge(b, c)).status_code == 201
    first = (await hub.client.get("/api/v1/contacts/999", headers=bearer(token))).status_code
    assert first == 404
    # b was merged into c since: undo that first.
    earlier = await hub.client.post("/api/v1/contact-merges/1/undo", headers=bearer(token))
    assert earlier.status_code == 409
    assert "undo that first" in earlier.json()["detail"]
    assert (await hub.client.post("/api/v1/contact-merges/2/undo", headers=bearer(token))).status_code == 200
    assert (await hub.client.post("/api/v1/contact-merges/1/undo", headers=bearer(token))).status_code == 200
    for contact, reference in ((a, "PKR-000001"), (b, "PKR-000002"), (c, "PKR-000003")):
        assert summary(await get(hub, token, f"/api/v1/contacts/{contact}"))[1] == [reference]


async def test_an_agent_sees_only_contacts_and_tickets_of_their_teams(hub: Hub) -> None:
    admin = await hub.agent_token(role=Role.ADMIN, email="admin@city.test")
    rita = await agent_in(hub, admin, "rita@city.test", ["roads"])
    await post_email(hub.client, resident_mail("jo@example.org", "Pothole", "Main St.\n"))
    await hub.client.patch("/api/v1/tickets/PKR-000001", json={"status": "closed"}, headers=bearer(admin))
    await post_email(hub.client, resident_mail("jo@example.org", "Tree down", "In the park.\n"))
    await post_email(hub.client, resident_mail("sam@example.org", "Bench", "Broken.\n"))
    for reference, team in (("PKR-000001", "roads"), ("PKR-000002", "parks"), ("PKR-000003", "parks")):
        assert (
            await hub.client.patch(f"/api/v1/tickets/{reference}", json={"team": team}, headers=bearer(admin))
        ).status_code == 200
    jo, sam = await contact_of(hub, admin, "PKR-000001"), await contact_of(hub, admin, "PKR-000003")

    assert summary(await get(hub, rita, f"/api/v1/contacts/{jo}"))[1] == ["PKR-000001"]
    assert summary(await get(hub, admin, f"/api/v1/contacts/{jo}"))[1] == ["PKR-000001", "PKR-000002"]
    hidden = await hub.client.get(f"/api/v1/contacts/{sam}", headers=bearer(rita))
    assert hidden.status_code == 404
    refused = await hub.client.post(f"/api/v1/contacts/{sam}/merge", json={"into": jo}, headers=bearer(rita))
    assert refused.status_code == 404
    comms = await hub.agent_token(role=Role.COMMUNICATIONS, email="comms@city.test")
    assert (await hub.client.get(f"/api/v1/contacts/{jo}", headers=bearer(comms))).status_code == 403
