"""Merging a duplicate ticket into another, and undoing it: the messages and notes move (in time order on the
target), the source is closed and says where it went, both are audited; an unmerge puts back exactly what moved
and the source's status. Both tickets must be the agent's to see; a chat the resident still has open cannot be
merged away."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from carehub.models import AuditEvent, Role
from carehub.settings import Settings
from tests.carehub.chat.conftest import chat_settings
from tests.carehub.test_team_boundaries import setup_teams
from tests.conftest import Hub
from tests.support.chat import agent_stream, resident
from tests.support.live import live_hub
from tests.support.mail import post_email, resident_mail

AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def detail(hub: Hub, token: str, reference: str) -> dict[str, Any]:
    response = await hub.client.get(f"/api/v1/tickets/{reference}", headers=bearer(token))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def kept(ticket: dict[str, Any]) -> tuple[object, ...]:
    """What a merge and its undo must leave as it was (updated_at moves on, so it is left out)."""
    return (
        ticket["status"],
        ticket["merged_into_id"],
        ticket["resolved_at"],
        [(m["id"], m["direction"], m["body"]) for m in ticket["messages"]],
        [(n["id"], n["body"]) for n in ticket["notes"]],
    )


async def merge_audits(hub: Hub, ticket_id: int) -> list[str]:
    async with hub.runtime.transaction() as tx:
        rows = await tx.conn.execute(
            select(AUDIT.c.action)
            .where(AUDIT.c.entity_type == "ticket", AUDIT.c.entity_id == ticket_id, AUDIT.c.action.like("%merge"))
            .order_by(AUDIT.c.id)
        )
        return [r.action for r in rows]


async def test_merge_then_unmerge_restores_both_tickets_exactly(hub: Hub) -> None:
    token = await hub.agent_token()
    await post_email(hub.client, resident_mail("jo@example.org", "Broken streetlight", "Dark since Monday.\n"))
    await post_email(hub.client, resident_mail("jo.work@example.org", "Streetlight", "Still dark on Elm St.\n"))
    target, source = "PKR-000001", "PKR-000002"
    note = await hub.client.post(f"/api/v1/tickets/{source}/notes", json={"body": "Same as 1?"}, headers=bearer(token))
    assert note.status_code == 201
    answered = await hub.client.post(
        f"/api/v1/tickets/{source}/replies", json={"body": "Which pole number?"}, headers=bearer(token)
    )
    assert answered.status_code == 201
    pending = await hub.client.patch(f"/api/v1/tickets/{source}", json={"status": "pending"}, headers=bearer(token))
    assert pending.status_code == 200, pending.text
    await hub.client.post(f"/api/v1/tickets/{target}/replies", json={"body": "We are on it."}, headers=bearer(token))
    before_source, before_target = await detail(hub, token, source), await detail(hub, token, target)

    merged = await hub.client.post(f"/api/v1/tickets/{source}/merge", json={"into": target}, headers=bearer(token))
    assert merged.status_code == 201, merged.text
    record = merged.json()
    assert (record["source"], record["target"], record["source_status"]) == (source, target, "pending")
    assert record["message_ids"] == [m["id"] for m in before_source["messages"]]
    assert record["note_ids"] == [n["id"] for n in before_source["notes"]]

    after_target = await detail(hub, token, target)
    moved = before_target["messages"] + before_source["messages"]
    assert sorted(m["id"] for m in after_target["messages"]) == sorted(m["id"] for m in moved)
    times = [(m["created_at"], m["id"]) for m in after_target["messages"]]
    assert times == sorted(times)  # one conversation, in the order things happened
    assert [n["body"] for n in after_target["notes"]] == ["Same as 1?"]
    assert after_target["status"] == before_target["status"]
    after_source = await detail(hub, token, source)
    assert (after_source["status"], after_source["merged_into"]) == ("closed", target)
    assert after_source["merged_into_id"] == 1
    assert after_source["messages"] == []
    assert after_source["notes"] == []

    # A resident's new message on the target after the merge is the target's: it stays there on unmerge.
    await post_email(hub.client, resident_mail("jo@example.org", f"Re: Broken streetlight [{target}]", "Any news?\n"))
    undone = await hub.client.post(f"/api/v1/ticket-merges/{record['id']}/undo", headers=bearer(token))
    assert undone.status_code == 200, undone.text
    assert undone.json()["unmerged_at"] is not None

    assert kept(await detail(hub, token, source)) == kept(before_source)
    restored_target = await detail(hub, token, target)
    assert [m["body"] for m in restored_target["messages"]] == [m["body"] for m in before_target["messages"]] + [
        "Any news?"
    ]
    assert restored_target["notes"] == before_target["notes"]
    again = await hub.client.post(f"/api/v1/ticket-merges/{record['id']}/undo", headers=bearer(token))
    assert again.status_code == 409
    assert "already undone" in again.json()["detail"]
    assert await merge_audits(hub, 1) == ["merge", "unmerge"]
    assert await merge_audits(hub, 2) == ["merge", "unmerge"]


async def test_unmerge_by_the_source_reference_and_refusals(hub: Hub) -> None:
    token = await hub.agent_token()
    for sender in ("a@example.org", "b@example.org", "c@example.org"):
        await post_email(hub.client, resident_mail(sender, "Noise", f"From {sender}.\n"))

    async def merge(source: str, into: str) -> Any:
        return await hub.client.post(f"/api/v1/tickets/{source}/merge", json={"into": into}, headers=bearer(token))

    assert (await merge("PKR-000001", "PKR-000001")).status_code == 422
    assert (await merge("PKR-000001", "PKR-000009")).status_code == 404
    assert (await merge("PKR-000002", "PKR-000003")).status_code == 201
    into_merged = await merge("PKR-000001", "PKR-000002")
    assert into_merged.status_code == 409
    assert "merge into PKR-000003 instead" in into_merged.json()["detail"]
    twice = await merge("PKR-000002", "PKR-000001")
    assert twice.status_code == 409
    # A merged ticket is closed, and closed is final: it comes back only by unmerging.
    reopen = await hub.client.patch("/api/v1/tickets/PKR-000002", json={"status": "open"}, headers=bearer(token))
    assert reopen.status_code == 409
    undone = await hub.client.post("/api/v1/tickets/PKR-000002/unmerge", headers=bearer(token))
    assert undone.status_code == 200
    restored = await detail(hub, token, "PKR-000002")
    assert (restored["status"], restored["merged_into"]) == ("new", None)
    assert [m["body"] for m in restored["messages"] if m["direction"] == "in"] == ["From b@example.org."]
    not_merged = await hub.client.post("/api/v1/tickets/PKR-000002/unmerge", headers=bearer(token))
    assert not_merged.status_code == 409
    history = (await hub.client.get("/api/v1/tickets/PKR-000003/merges", headers=bearer(token))).json()
    assert [(m["source"], m["unmerged_at"] is not None) for m in history] == [("PKR-000002", True)]


async def test_tickets_of_a_team_the_agent_cannot_see_cannot_be_merged(hub: Hub) -> None:
    teams = await setup_teams(hub)
    rita, supervisor = teams["roads_agent"], teams["supervisor"]
    for source, into in ((teams["roads"], teams["parks"]), (teams["parks"], teams["roads"])):
        refused = await hub.client.post(f"/api/v1/tickets/{source}/merge", json={"into": into}, headers=bearer(rita))
        assert refused.status_code == 404
        assert "your teams' queues" in refused.json()["detail"]
    assert (await detail(hub, supervisor, teams["parks"]))["merged_into_id"] is None
    allowed = await hub.client.post(
        f"/api/v1/tickets/{teams['none']}/merge", json={"into": teams["roads"]}, headers=bearer(rita)
    )
    assert allowed.status_code == 201
    # The merge can be undone only by someone who sees both tickets.
    moved = await hub.client.patch(
        f"/api/v1/tickets/{teams['roads']}", json={"team": "parks"}, headers=bearer(supervisor)
    )
    assert moved.status_code == 200
    undo = await hub.client.post(f"/api/v1/ticket-merges/{allowed.json()['id']}/undo", headers=bearer(rita))
    assert undo.status_code == 404
    admin = await hub.agent_token(role=Role.ADMIN, email="second-admin@city.test")
    assert (
        await hub.client.post(f"/api/v1/ticket-merges/{allowed.json()['id']}/undo", headers=bearer(admin))
    ).status_code == 200


async def test_a_chat_the_resident_has_open_cannot_be_merged_away(settings: Settings) -> None:
    async with live_hub(chat_settings(settings)) as live:
        token = await live.agent_token()
        await post_email(live.client, resident_mail("jo@example.org", "Flooding", "Basement again.\n"))
        async with resident(live.ws_url) as jo:
            await jo.hello()
            await jo.say("My basement is flooding")
            chat_ref = jo.reference
        refused = await live.client.post(
            f"/api/v1/tickets/{chat_ref}/merge", json={"into": "PKR-000001"}, headers=bearer(token)
        )
        assert refused.status_code == 409
        assert "web chat the resident still has open" in refused.json()["detail"]
        # The other way round is fine: the chat ticket stays where the resident is writing.
        async with agent_stream(live.url, token) as stream:
            resolved = await live.client.patch(
                f"/api/v1/tickets/{chat_ref}", json={"status": "resolved"}, headers=bearer(token)
            )
            assert resolved.status_code == 200
            merged = await live.client.post(
                f"/api/v1/tickets/{chat_ref}/merge", json={"into": "PKR-000001"}, headers=bearer(token)
            )
            assert merged.status_code == 201, merged.text
            event = await stream.wait_for("ticket.merged", reference="PKR-000001")
        assert (event["source"], event["target"]) == (chat_ref, "PKR-000001")
        bodies = [m["body"] for m in (await detail(live, token, "PKR-000001"))["messages"]]
        assert "My basement is flooding" in bodies
