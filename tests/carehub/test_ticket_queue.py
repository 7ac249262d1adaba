"""The ticket queue (GET /api/v1/tickets, carehub.tickets.queue): every filter, full-text search over subjects and
message bodies (stemmed, safe for any input, within the agent's teams), keyset pages that walk every sort with no
duplicates or gaps even where sort keys tie, and a 422 problem for a cursor the queue did not hand out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from carehub.clock import utcnow
from carehub.contacts import repository as contacts
from carehub.models import Role, TicketLabel
from carehub.tickets import repository as tickets
from carehub.tickets.queue import fts5_query
from channels.base import ChannelKind
from tests.conftest import Hub
from tests.support.mail import post_email, resident_mail
from tests.support.twilio import text_hub

LABELS = TicketLabel.__table__  # type: ignore[attr-defined]
T0 = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
_senders = iter(range(1, 10_000))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def make_ticket(
    hub: Hub,
    body: str = "Hello",
    *,
    channel: ChannelKind = ChannelKind.SMS,
    labels: tuple[str, ...] = (),
    **values: Any,
) -> int:
    """A ticket with one inbound message, stored by the repository (no arrival automation), then given `values`."""
    async with hub.runtime.transaction() as tx:
        now = utcnow()
        address = f"+1905555{next(_senders):04d}" if channel is ChannelKind.SMS else f"r{next(_senders)}@example.org"
        sender = await contacts.create_sender(tx.conn, channel, address, now)
        ticket_id = await tickets.create_ticket(
            tx.conn,
            contact_id=sender.contact_id,
            address_id=sender.address_id,
            channel=channel,
            subject=values.pop("subject", None),
            now=now,
        )
        await tickets.add_inbound_message(
            tx.conn, ticket_id=ticket_id, channel=channel, body=body, provider_id=f"p{ticket_id}", meta=None, now=now
        )
        if values:
            await tickets.update_ticket(tx.conn, ticket_id, values)
        for label in labels:
            await tx.conn.execute(insert(LABELS).values(ticket_id=ticket_id, label=label))
    return ticket_id


async def set_values(hub: Hub, ticket_id: int, **values: Any) -> None:
    async with hub.runtime.transaction() as tx:
        await tickets.update_ticket(tx.conn, ticket_id, values)


async def agent(hub: Hub, admin: str, email: str, teams: list[str]) -> tuple[str, int]:
    token = await hub.agent_token(email=email)
    me = (await hub.client.get("/api/v1/me", headers=bearer(token))).json()
    response = await hub.client.patch(f"/api/v1/agents/{me['id']}", json={"teams": teams}, headers=bearer(admin))
    assert response.status_code == 200, response.text
    return token, int(me["id"])


async def ids(hub: Hub, token: str, query: str = "") -> list[int]:
    response = await hub.client.get(f"/api/v1/tickets?limit=200&{query}", headers=bearer(token))
    assert response.status_code == 200, response.text
    return [t["id"] for t in response.json()["items"]]


async def test_each_filter_narrows_the_queue(hub: Hub) -> None:
    admin = await hub.agent_token(Role.ADMIN, email="admin@city.test")
    rita, rita_id = await agent(hub, admin, "rita@city.test", ["roads", "water"])
    water = await make_ticket(
        hub, "Main broke", channel=ChannelKind.EMAIL, subject="Water", team="water", priority="high",
        assignee_id=rita_id, status="open", labels=("vip", "media"),
    )  # fmt: skip
    roads = await make_ticket(hub, team="roads", priority="urgent", status="pending", labels=("vip",))
    unrouted = await make_ticket(hub, status="new")
    await make_ticket(hub, team="parks", status="new", priority="urgent")  # not rita's team
    solved = await make_ticket(hub, team="roads", status="resolved", priority="low")

    assert await ids(hub, rita) == [solved, unrouted, roads, water]
    assert await ids(hub, rita, "assignee=me") == [water]
    assert await ids(hub, rita, "assignee=none") == [solved, unrouted, roads]
    assert await ids(hub, rita, f"assignee={rita_id}") == [water]
    assert await ids(hub, rita, "team=Roads") == [solved, roads]
    assert await ids(hub, rita, "team=parks") == []  # another team's tickets stay out, even when asked for
    assert await ids(hub, rita, "channel=email") == [water]
    assert await ids(hub, rita, "status=new&status=pending") == [unrouted, roads]
    assert await ids(hub, rita, "priority=urgent") == [roads]
    assert await ids(hub, rita, "label=vip") == [roads, water]
    assert await ids(hub, rita, "label=media&priority=high&team=water&status=open") == [water]

    page = (await hub.client.get("/api/v1/tickets?label=vip", headers=bearer(rita))).json()
    assert [t["labels"] for t in page["items"]] == [["vip"], ["media", "vip"]]
    assert page["items"][1]["reference"] == f"PKR-{water:06d}"


async def test_sla_filter_finds_breached_and_due_within_the_hour(hub: Hub) -> None:
    supervisor = await hub.agent_token(Role.SUPERVISOR)
    now = utcnow()
    recorded = await make_ticket(hub, status="open", sla_breached_at=now - timedelta(hours=2))
    overdue = await make_ticket(hub, status="new", first_response_due_at=now - timedelta(minutes=5))
    late_fix = await make_ticket(
        hub, status="open", first_response_at=now, resolution_due_at=now - timedelta(minutes=1)
    )
    soon = await make_ticket(hub, status="new", first_response_due_at=now + timedelta(minutes=30))
    resolution_soon = await make_ticket(
        hub, status="pending", first_response_at=now, resolution_due_at=now + timedelta(minutes=50)
    )
    await make_ticket(hub, status="open", first_response_due_at=now + timedelta(hours=2))  # not yet
    await make_ticket(  # answered in time: the first-response deadline no longer runs
        hub, status="open", first_response_at=now, first_response_due_at=now + timedelta(minutes=10)
    )
    await make_ticket(hub, status="resolved", resolved_at=now, resolution_due_at=now - timedelta(hours=1))
    await make_ticket(hub, status="open")  # no SLA policy

    assert await ids(hub, supervisor, "sla=breached") == [late_fix, overdue, recorded]
    assert await ids(hub, supervisor, "sla=due_soon") == [resolution_soon, soon]
    assert await ids(hub, supervisor, "sla=due_soon&sort=due") == [soon, resolution_soon]


async def test_a_merged_ticket_shows_only_when_closed_tickets_are_asked_for(hub: Hub) -> None:
    supervisor = await hub.agent_token(Role.SUPERVISOR)
    kept = await make_ticket(hub, status="open")
    merged = await make_ticket(hub, status="closed", merged_into_id=kept)
    closed = await make_ticket(hub, status="closed")

    assert await ids(hub, supervisor) == [closed, kept]
    assert await ids(hub, supervisor, "status=closed") == [closed, merged]
    assert await ids(hub, supervisor, "status=open&status=closed") == [closed, merged, kept]


async def test_search_finds_a_later_message_and_an_email_subject(hub: Hub) -> None:
    supervisor = await hub.agent_token(Role.SUPERVISOR)
    assert (await text_hub(hub.client, "+19055550100", "Hello, are you there?")).status_code == 200
    assert (await text_hub(hub.client, "+19055550100", "The hydrant on Brock Rd is gushing")).status_code == 200
    await post_email(hub.client, resident_mail("jo@example.org", "Graffiti on the library wall", "See subject.\n"))
    await post_email(hub.client, resident_mail("al@example.org", "Parking", "A ticket I should not have got.\n"))
    sms, graffiti, parking = await ids(hub, supervisor, "sort=oldest")

    assert await ids(hub, supervisor, "q=hydrant") == [sms]
    assert await ids(hub, supervisor, "q=GRAFFITI library") == [graffiti]
    assert await ids(hub, supervisor, "q=parking") == [parking]
    assert await ids(hub, supervisor, "q=ticket") == [parking]  # in the body
    assert await ids(hub, supervisor, "q=graffiti hydrant") == []  # every word must match
    assert await ids(hub, supervisor, "q=hydrant&status=closed") == []  # with the other filters
    await set_values(hub, sms, priority="urgent")
    assert await ids(hub, supervisor, "q=hydrant&priority=urgent&sort=priority") == [sms]


async def test_search_covers_the_whole_ticket_and_follows_merges_and_new_subjects(hub: Hub) -> None:
    """One search document per ticket (migration 0012): words from different messages match together, and the
    document follows messages that move (merge, unmerge) and a changed subject."""
    supervisor = await hub.agent_token(Role.SUPERVISOR)
    await text_hub(hub.client, "+19055550100", "There is a sinkhole")
    await text_hub(hub.client, "+19055550100", "It is on Altona Rd near the school")
    await text_hub(hub.client, "+19055550177", "Raccoons in the recycling bins")
    sinkhole, raccoons = await ids(hub, supervisor, "sort=oldest")
    assert await ids(hub, supervisor, "q=sinkhole altona") == [sinkhole]

    merged = await hub.client.post(
        f"/api/v1/tickets/PKR-{raccoons:06d}/merge", json={"into": f"PKR-{sinkhole:06d}"}, headers=bearer(supervisor)
    )
    assert merged.status_code == 201, merged.text
    assert await ids(hub, supervisor, "q=raccoons") == [sinkhole]
    undone = await hub.client.post(f"/api/v1/tickets/PKR-{raccoons:06d}/unmerge", headers=bearer(supervisor))
    assert undone.status_code == 200, undone.text
    assert await ids(hub, supervisor, "q=raccoons") == [raccoons]

    await set_values(hub, raccoons, subject="Wildlife complaint")
    assert await ids(hub, supervisor, "q=wildlife raccoons") == [raccoons]


async def test_search_stems_english_words(hub: Hub) -> None:
    supervisor = await hub.agent_token(Role.SUPERVISOR)
    leaks = await make_ticket(hub, "The pipe under the street leaks all day")
    await make_ticket(hub, "Leaflets in the mailbox")

    assert await ids(hub, supervisor, "q=leaking") == [leaks]
    assert await ids(hub, supervisor, "q=leaked pipes") == [leaks]


@pytest.mark.parametrize(
    "q", ['"water" OR (main', 'water" AND NOT', "(", '"', "main*", "NEAR(water main)", "body:water", "-water", "'; --"]
)
async def test_search_takes_any_user_input_without_error(hub: Hub, q: str) -> None:
    supervisor = await hub.agent_token(Role.SUPERVISOR)
    await make_ticket(hub, "The water main broke near the school")

    response = await hub.client.get("/api/v1/tickets", params={"q": q}, headers=bearer(supervisor))

    assert response.status_code == 200, response.text


def test_fts5_query_quotes_every_word() -> None:
    assert fts5_query('"water" OR (main') == '"water" "OR" "main"'
    assert fts5_query("()") == '""'


async def test_search_stays_within_the_agents_teams(hub: Hub) -> None:
    admin = await hub.agent_token(Role.ADMIN, email="admin@city.test")
    rita, _ = await agent(hub, admin, "rita@city.test", ["roads"])
    roads = await make_ticket(hub, "Raccoon in the culvert", team="roads")
    await make_ticket(hub, "Raccoon in the park shed", team="parks")
    await make_ticket(hub, "Culvert", subject="Raccoon again", channel=ChannelKind.EMAIL, team="parks")
    unrouted = await make_ticket(hub, "Another raccoon")

    assert await ids(hub, rita, "q=raccoon") == [unrouted, roads]
    assert await ids(hub, rita, "q=raccoon&team=parks") == []


def due_key(t: dict[str, Any]) -> tuple[datetime, int]:
    """The next running SLA deadline, as the queue sorts by it (none: last)."""
    far = datetime(9999, 12, 31, tzinfo=UTC)
    if t["status"] not in ("new", "open", "pending"):
        return far, t["id"]
    first, resolution = (
        None if t[k] is None else datetime.fromisoformat(t[k]) for k in ("first_response_due_at", "resolution_due_at")
    )
    if t["first_response_at"] is None and first is not None and (resolution is None or first < resolution):
        return first, t["id"]
    return resolution or far, t["id"]


RANK = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
EXPECTED_ORDER = {
    "newest": lambda t: -t["id"],
    "oldest": lambda t: t["id"],
    "updated": lambda t: (-datetime.fromisoformat(t["updated_at"]).timestamp(), -t["id"]),
    "due": due_key,
    "priority": lambda t: (RANK[t["priority"]], t["id"]),
}


@pytest.mark.parametrize("sort", list(EXPECTED_ORDER))
async def test_cursor_pages_walk_every_sort_without_duplicates_or_gaps(hub: Hub, sort: str) -> None:
    supervisor = await hub.agent_token(Role.SUPERVISOR)
    # Ties everywhere: three tickets share each updated_at, priorities repeat, due times repeat or are missing.
    for i in range(11):
        await make_ticket(
            hub,
            status=("new", "open", "pending", "resolved")[i % 4],
            priority=("normal", "urgent", "low", "high", "normal")[i % 5],
            updated_at=T0 + timedelta(minutes=i // 3),
            first_response_due_at=None if i % 3 == 0 else T0 + timedelta(hours=i % 2),
            resolution_due_at=None if i % 4 == 1 else T0 + timedelta(hours=3),
        )
    everything = (await hub.client.get("/api/v1/tickets?limit=200", headers=bearer(supervisor))).json()["items"]
    expected = [t["id"] for t in sorted(everything, key=EXPECTED_ORDER[sort])]

    walked: list[int] = []
    cursor: str | None = None
    for _ in range(20):
        params = {"sort": sort, "limit": "2", **({"cursor": cursor} if cursor else {})}
        response = await hub.client.get("/api/v1/tickets", params=params, headers=bearer(supervisor))
        assert response.status_code == 200, response.text
        page = response.json()
        walked += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert walked == expected
    assert len(walked) == len(set(walked)) == 11


@pytest.mark.parametrize(
    "cursor", ["not-a-cursor", "eyJzIjoibmV3ZXN0In0", "W10", "-1", "eyJzIjoibmV3ZXN0IiwiayI6WyJ4Il19"]
)
async def test_a_bad_cursor_is_a_422_problem(hub: Hub, cursor: str) -> None:
    supervisor = await hub.agent_token(Role.SUPERVISOR)

    response = await hub.client.get("/api/v1/tickets", params={"cursor": cursor}, headers=bearer(supervisor))

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "cursor" in response.json()["detail"]


async def test_a_cursor_from_another_sort_is_refused(hub: Hub) -> None:
    supervisor = await hub.agent_token(Role.SUPERVISOR)
    for _ in range(3):
        await make_ticket(hub)
    first = (await hub.client.get("/api/v1/tickets?limit=1&sort=updated", headers=bearer(supervisor))).json()

    response = await hub.client.get(
        "/api/v1/tickets", params={"cursor": first["next_cursor"], "sort": "due"}, headers=bearer(supervisor)
    )

    assert response.status_code == 422
    assert "sort 'updated'" in response.json()["detail"]


async def test_searching_waiting_tickets_follows_status_changes(hub: Hub) -> None:
    """SQLite keeps a second index of waiting tickets (migration 0013; PostgreSQL a partial index): a ticket leaves
    it when resolved and comes back when reopened, with every message it got meanwhile."""
    supervisor = await hub.agent_token(Role.SUPERVISOR)
    await text_hub(hub.client, "+19055550100", "Flooded basement on Rosebank")
    [ticket] = await ids(hub, supervisor)
    waiting = "status=new&status=open&status=pending"
    assert await ids(hub, supervisor, f"q=flooded&{waiting}") == [ticket]

    await set_values(hub, ticket, status="resolved", resolved_at=utcnow())
    assert await ids(hub, supervisor, f"q=flooded&{waiting}") == []
    assert await ids(hub, supervisor, "q=flooded&status=resolved") == [ticket]

    await text_hub(hub.client, "+19055550100", "Still flooded, now the sump pump failed")  # reopens it
    assert await ids(hub, supervisor, f"q=flooded sump&{waiting}") == [ticket]
    assert await ids(hub, supervisor, "q=flooded sump&status=new") == []  # it is open, not new
