"""Private notes: on the ticket for agents, never sent to the resident; @mentions reach colleagues who can see the
ticket (and say which names reached nobody); the live stream tells the mentioned."""

from __future__ import annotations

from sqlalchemy import func, select

from carehub.models import Outbox, Role
from carehub.settings import Settings
from tests.conftest import Hub
from tests.support.chat import agent_stream
from tests.support.live import live_hub
from tests.support.mail import post_email, resident_mail

OUTBOX = Outbox.__table__  # type: ignore[attr-defined]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def outbox_rows(hub: Hub) -> int:
    async with hub.runtime.transaction() as tx:
        return int((await tx.conn.execute(select(func.count()).select_from(OUTBOX))).scalar_one())


async def test_a_note_stays_with_the_agents_and_mentions_reach_who_can_see_the_ticket(hub: Hub) -> None:
    ana = await hub.agent_token(email="ana@city.test")
    bo = await hub.agent_token(email="bo@city.test")
    await hub.agent_token(role=Role.COMMUNICATIONS, email="cam@city.test")
    await post_email(hub.client, resident_mail("jo@example.org", "Noise", "Every night.\n"))
    sent_before = await outbox_rows(hub)  # the acknowledgement

    response = await hub.client.post(
        "/api/v1/tickets/PKR-000001/notes",
        json={"body": "@bo can you check the bylaw? cc @cam @nobody (jo@example.org wrote twice)"},
        headers=bearer(ana),
    )
    assert response.status_code == 201, response.text
    note = response.json()
    bo_id = (await hub.client.get("/api/v1/me", headers=bearer(bo))).json()["id"]
    assert note["mentions"] == [bo_id]
    # cam does not work tickets; "nobody" is nobody; an email address in the text is not a mention.
    assert note["unknown_mentions"] == ["cam", "nobody"]

    detail = (await hub.client.get("/api/v1/tickets/PKR-000001", headers=bearer(ana))).json()
    assert [n["body"] for n in detail["notes"]] == [note["body"]]
    assert all(m["body"] != note["body"] for m in detail["messages"])
    assert await outbox_rows(hub) == sent_before  # nothing goes to the resident


async def test_mentioned_agents_are_told_on_the_live_stream(settings: Settings) -> None:
    async with live_hub(settings) as live:
        ana = await live.agent_token(email="ana@city.test")
        bo = await live.agent_token(email="bo@city.test")
        bo_id = (await live.client.get("/api/v1/me", headers=bearer(bo))).json()["id"]
        await post_email(live.client, resident_mail("jo@example.org", "Noise", "Every night.\n"))
        async with agent_stream(live.url, bo) as stream:
            response = await live.client.post(
                "/api/v1/tickets/PKR-000001/notes", json={"body": "@bo over to you"}, headers=bearer(ana)
            )
            assert response.status_code == 201
            event = await stream.wait_for("note.created", reference="PKR-000001")
        assert event["mentions"] == [bo_id]
        assert "body" not in event  # the note itself is read on the ticket, where reading is audited
