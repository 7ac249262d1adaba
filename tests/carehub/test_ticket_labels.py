"""Ticket labels: stored in lower case, replaced as a set or one at a time, at most 20, audited, told to agents on
the live stream, shown on the ticket; the labels in use (for autocomplete) only from tickets the agent may see."""

from __future__ import annotations

from sqlalchemy import select

from carehub.models import AuditEvent, Role
from carehub.settings import Settings
from tests.carehub.test_team_boundaries import setup_teams
from tests.conftest import Hub
from tests.support.chat import agent_stream
from tests.support.live import live_hub
from tests.support.mail import post_email, resident_mail

AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def label_audits(hub: Hub, ticket_id: int) -> list[dict[str, object]]:
    async with hub.runtime.transaction() as tx:
        rows = await tx.conn.execute(
            select(AUDIT.c.detail).where(
                AUDIT.c.action == "labels", AUDIT.c.entity_type == "ticket", AUDIT.c.entity_id == ticket_id
            )
        )
        return [r.detail for r in rows]


async def test_labels_are_replaced_as_a_set_in_lower_case_and_shown_on_the_ticket(hub: Hub) -> None:
    token = await hub.agent_token()
    await post_email(hub.client, resident_mail("jo@example.org", "Pothole", "On Main St.\n"))

    put = await hub.client.put(
        "/api/v1/tickets/PKR-000001/labels",
        json={"labels": ["Roads", "  Pot   holes ", "roads"]},
        headers=bearer(token),
    )
    assert put.status_code == 200, put.text
    assert put.json() == {"labels": ["pot holes", "roads"]}
    added = await hub.client.post("/api/v1/tickets/PKR-000001/labels/Urgent_fix", headers=bearer(token))
    assert added.json() == {"labels": ["pot holes", "roads", "urgent_fix"]}
    removed = await hub.client.delete("/api/v1/tickets/PKR-000001/labels/roads", headers=bearer(token))
    assert removed.json() == {"labels": ["pot holes", "urgent_fix"]}
    again = await hub.client.put(
        "/api/v1/tickets/PKR-000001/labels", json={"labels": ["urgent_fix", "pot holes"]}, headers=bearer(token)
    )
    assert again.json() == {"labels": ["pot holes", "urgent_fix"]}

    detail = (await hub.client.get("/api/v1/tickets/PKR-000001", headers=bearer(token))).json()
    assert detail["labels"] == ["pot holes", "urgent_fix"]
    # Each change is audited with what it did; setting the same labels again changed nothing, so left no row.
    assert await label_audits(hub, 1) == [
        {"added": ["pot holes", "roads"], "removed": []},
        {"added": ["urgent_fix"], "removed": []},
        {"added": [], "removed": ["roads"]},
    ]


async def test_bad_labels_and_more_than_twenty_are_refused(hub: Hub) -> None:
    token = await hub.agent_token()
    await post_email(hub.client, resident_mail("jo@example.org", "Pothole", "On Main St.\n"))
    for bad in (["no/slash"], ["x" * 65], ["   "], ["semi;colon"]):
        response = await hub.client.put(
            "/api/v1/tickets/PKR-000001/labels", json={"labels": bad}, headers=bearer(token)
        )
        assert response.status_code == 422, bad
    twenty = [f"label-{i}" for i in range(20)]
    ok = await hub.client.put("/api/v1/tickets/PKR-000001/labels", json={"labels": twenty}, headers=bearer(token))
    assert ok.status_code == 200
    one_more = await hub.client.post("/api/v1/tickets/PKR-000001/labels/label-20", headers=bearer(token))
    assert one_more.status_code == 422
    assert "at most 20 labels" in one_more.json()["detail"]
    detail = (await hub.client.get("/api/v1/tickets/PKR-000001", headers=bearer(token))).json()
    assert detail["labels"] == sorted(twenty)  # the refused change left nothing behind
    accented = await hub.client.post("/api/v1/tickets/PKR-000001/labels/D%C3%89NEIGEMENT", headers=bearer(token))
    assert accented.status_code == 422  # 21st label; the name itself is fine (letters in any language)
    assert "at most 20" in accented.json()["detail"]


async def test_labels_in_use_come_only_from_tickets_the_agent_may_see(hub: Hub) -> None:
    teams = await setup_teams(hub)
    supervisor, rita = teams["supervisor"], teams["roads_agent"]
    for reference, names in ((teams["roads"], ["snow", "salt"]), (teams["parks"], ["snow", "trees"])):
        response = await hub.client.put(
            f"/api/v1/tickets/{reference}/labels", json={"labels": names}, headers=bearer(supervisor)
        )
        assert response.status_code == 200
    everything = (await hub.client.get("/api/v1/labels", headers=bearer(supervisor))).json()
    assert everything == [
        {"label": "snow", "tickets": 2},
        {"label": "salt", "tickets": 1},
        {"label": "trees", "tickets": 1},
    ]
    mine = (await hub.client.get("/api/v1/labels", headers=bearer(rita))).json()
    assert mine == [{"label": "salt", "tickets": 1}, {"label": "snow", "tickets": 1}]
    prefixed = (await hub.client.get("/api/v1/labels", params={"prefix": "S"}, headers=bearer(supervisor))).json()
    assert [u["label"] for u in prefixed] == ["snow", "salt"]
    # Another team's ticket cannot be labelled (it is as absent as one that does not exist).
    refused = await hub.client.post(f"/api/v1/tickets/{teams['parks']}/labels/mine", headers=bearer(rita))
    assert refused.status_code == 404
    comms = await hub.agent_token(role=Role.COMMUNICATIONS, email="comms@city.test")
    assert (await hub.client.get("/api/v1/labels", headers=bearer(comms))).status_code == 403


async def test_a_label_change_is_told_on_the_live_stream(settings: Settings) -> None:
    async with live_hub(settings) as live:
        ana = await live.agent_token(email="ana@city.test")
        bo = await live.agent_token(email="bo@city.test")
        await post_email(live.client, resident_mail("jo@example.org", "Pothole", "On Main St.\n"))
        async with agent_stream(live.url, bo) as stream:
            response = await live.client.post("/api/v1/tickets/PKR-000001/labels/roads", headers=bearer(ana))
            assert response.status_code == 200
            event = await stream.wait_for("ticket.updated", reference="PKR-000001")
        assert event["labels"] == ["roads"]
