"""Supervisor reports on a small data set whose numbers are worked out by hand below: the queue now, waiting
times, SLA attainment, workload and satisfaction; CSV exports (columns, BOM, formula-safe cells, audited); role
checks; and the supervisor page rendered on the server."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select, update

from carehub.agents import repository as agents
from carehub.agents import sessions
from carehub.agents.auth import SESSION_COOKIE
from carehub.clock import utcnow
from carehub.models import AuditEvent, Contact, ContactAddress, CsatSurvey, Role, Ticket
from carehub.reports.export import safe_cell
from carehub.reports.service import TICKET_COLUMNS
from tests.conftest import Hub
from tests.support.identities import PUBLIC_URL

TICKETS = Ticket.__table__  # type: ignore[attr-defined]
SURVEYS = CsatSurvey.__table__  # type: ignore[attr-defined]
AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]
CONTACTS = Contact.__table__  # type: ignore[attr-defined]
ADDRESSES = ContactAddress.__table__  # type: ignore[attr-defined]
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def agent_id(hub: Hub, token: str) -> int:
    return int((await hub.client.get("/api/v1/me", headers=bearer(token))).json()["id"])


async def seed(hub: Hub) -> dict[str, Any]:
    """Six tickets, five surveys, three agents who work tickets (one named like a formula) and a comms account.

    Active now: T1 new roads sms (unassigned, unanswered, 2 h old), T2 open roads email (ana), T3 pending parks
    sms (ana), T5 open no-team chat (unassigned, unanswered, 10 days old). T4 resolved parks email (bo), T6 closed.
    Created in the last 7 days: T1-T4. First answers: T2 after 30 min, T3 after 2 h, T4 after 10 min.
    """
    supervisor = await hub.agent_token(Role.SUPERVISOR, "sup@city.test")
    ana_token = await hub.agent_token(Role.AGENT, "ana@city.test")
    bo_token = await hub.agent_token(Role.AGENT, "bo@city.test")
    comms = await hub.agent_token(Role.COMMUNICATIONS, "comms@city.test")
    ana, bo = await agent_id(hub, ana_token), await agent_id(hub, bo_token)
    now = utcnow()
    async with hub.runtime.transaction() as tx:
        conn = tx.conn
        await conn.execute(update(agents.AGENTS).where(agents.AGENTS.c.id == bo).values(name="@bo", capacity=3))
        contact = (
            await conn.execute(insert(CONTACTS).values(language="en", created_at=now).returning(CONTACTS.c.id))
        ).scalar_one()
        address = (
            await conn.execute(
                insert(ADDRESSES)
                .values(contact_id=contact, channel="sms", address="+19055550100", created_at=now)
                .returning(ADDRESSES.c.id)
            )
        ).scalar_one()

        async def ticket(**values: Any) -> int:
            row = {"contact_id": contact, "address_id": address, "priority": "normal", "updated_at": now, **values}
            return int((await conn.execute(insert(TICKETS).values(**row).returning(TICKETS.c.id))).scalar_one())

        t1_at, t2_at, t3_at, t4_at = now - 2 * HOUR, now - 3 * DAY, now - DAY, now - 2 * DAY
        t1 = await ticket(channel="sms", status="new", team="roads", created_at=t1_at)
        t2 = await ticket(
            channel="email", status="open", team="roads", priority="high", assignee_id=ana, created_at=t2_at,
            first_response_at=t2_at + 30 * timedelta(minutes=1), first_response_due_at=t2_at + HOUR,
            resolution_due_at=now + DAY,
        )  # fmt: skip
        t3 = await ticket(
            channel="sms", status="pending", team="parks", assignee_id=ana, created_at=t3_at,
            first_response_at=t3_at + 2 * HOUR, first_response_due_at=t3_at + HOUR, resolution_due_at=now - HOUR,
            sla_breached_at=now - HOUR,
        )  # fmt: skip
        t4 = await ticket(
            channel="email", status="resolved", team="parks", assignee_id=bo, created_at=t4_at,
            first_response_at=t4_at + 10 * timedelta(minutes=1), first_response_due_at=t4_at + HOUR,
            resolved_at=t4_at + 5 * HOUR, resolution_due_at=t4_at + 8 * HOUR,
        )  # fmt: skip
        t5 = await ticket(channel="chat", status="open", team=None, created_at=now - 10 * DAY)
        t6 = await ticket(channel="sms", status="closed", team="roads", created_at=now - 20 * DAY)

        async def survey(ticket_id: int, team: str, sent_at: datetime, rating: int | None) -> None:
            await conn.execute(
                insert(SURVEYS).values(
                    ticket_id=ticket_id, team=team, channel="sms", token_hash=f"{ticket_id:064d}", sent_at=sent_at,
                    rating=rating, answered_at=None if rating is None else sent_at + HOUR,
                )
            )  # fmt: skip

        await survey(t4, "parks", now - DAY, 5)
        await survey(t1, "parks", now - 3 * HOUR, 4)
        await survey(t6, "roads", now - 2 * DAY, 2)
        await survey(t2, "roads", now - DAY, None)
        await survey(t5, "parks", now - 9 * DAY, 1)  # before the period
    return {"supervisor": supervisor, "agent": ana_token, "comms": comms, "ana": ana, "bo": bo, "t3": t3, "now": now}


@pytest.fixture
async def data(hub: Hub) -> dict[str, Any]:
    return await seed(hub)


async def test_overview_numbers_match_the_hand_count(hub: Hub, data: dict[str, Any]) -> None:
    response = await hub.client.get("/api/v1/reports/overview", headers=bearer(data["supervisor"]))
    assert response.status_code == 200, response.text
    report = response.json()

    queue = report["queue"]
    assert (queue["active"], queue["unassigned"]) == (4, 2)
    assert {(c["team"], c["status"]): c["count"] for c in queue["by_team_status"]} == {
        ("roads", "new"): 1,
        ("roads", "open"): 1,
        ("parks", "pending"): 1,
        (None, "open"): 1,
    }
    assert {c["channel"]: c["count"] for c in queue["by_channel"]} == {"sms": 2, "email": 1, "chat": 1}

    waiting = report["waiting"]
    assert abs(waiting["oldest_unanswered_seconds"] - 10 * 86400) < 120  # T5, waiting 10 days
    assert waiting["answered_in_period"] == 3
    # 600 s, 1800 s, 7200 s: the median is the 2nd (ceil(0.5 x 3)), the 90th percentile the 3rd (ceil(2.7)).
    assert (waiting["first_response_median_seconds"], waiting["first_response_p90_seconds"]) == (1800, 7200)

    sla = {(r["team"], r["priority"]): r for r in report["sla"]}
    assert set(sla) == {("roads", "high"), ("parks", "normal")}  # T1 has no due times
    roads = sla[("roads", "high")]  # T2: answered in time; its resolution is not due yet
    assert (roads["first_response_met_pct"], roads["resolution_due"], roads["resolution_met_pct"]) == (100.0, 0, None)
    parks = sla[("parks", "normal")]  # T3 late on both, T4 on time on both
    assert parks["tickets"] == 2
    assert (parks["first_response_met"], parks["first_response_due"], parks["first_response_met_pct"]) == (1, 2, 50.0)
    assert (parks["resolution_met"], parks["resolution_due"], parks["resolution_met_pct"]) == (1, 2, 50.0)
    assert parks["breached"] == 1

    workload = {a["id"]: a for a in report["agents"]}
    assert (workload[data["ana"]]["active_assigned"], workload[data["ana"]]["capacity"]) == (2, 5)
    assert (workload[data["bo"]]["active_assigned"], workload[data["bo"]]["capacity"]) == (0, 3)
    assert {a["online"] for a in report["agents"]} == {False}  # nobody holds the live stream open
    assert "comms@city.test" not in str(report["agents"])
    assert len(report["agents"]) == 3  # ana, bo and the supervisor; not communications

    csat = {r["team"]: r for r in report["csat"]}
    # parks: 5 and 4 (the 1 was sent before the period); roads: a 2 and one unanswered.
    assert csat["parks"] | {"team": None} == {
        "team": None, "sent": 2, "answered": 2, "average": 4.5, "satisfied_pct": 100.0, "response_rate_pct": 100.0
    }  # fmt: skip
    assert csat["roads"] | {"team": None} == {
        "team": None, "sent": 2, "answered": 1, "average": 2.0, "satisfied_pct": 0.0, "response_rate_pct": 50.0
    }  # fmt: skip


async def test_a_period_in_local_days_selects_by_creation_date(hub: Hub, data: dict[str, Any]) -> None:
    since = (data["now"] - 4 * DAY).date().isoformat()
    until = (data["now"] - 2 * DAY).date().isoformat()
    response = await hub.client.get(
        f"/api/v1/reports/overview?since={since}&until={until}", headers=bearer(data["supervisor"])
    )
    assert response.status_code == 200, response.text
    # T2 (3 days ago) at least; never T1 (2 h ago) or T3 (1 day ago).
    assert {(r["team"], r["priority"]) for r in response.json()["sla"]} <= {("roads", "high"), ("parks", "normal")}
    assert ("roads", "high") in {(r["team"], r["priority"]) for r in response.json()["sla"]}
    empty = await hub.client.get(
        f"/api/v1/reports/overview?since={until}&until={since}", headers=bearer(data["supervisor"])
    )
    assert empty.status_code == 422
    bad = await hub.client.get("/api/v1/reports/overview?since=yesterday", headers=bearer(data["supervisor"]))
    assert bad.status_code == 422


def parse_csv(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    return list(csv.reader(io.StringIO(response.content.decode("utf-8").removeprefix("\ufeff"))))


async def test_ticket_export_has_one_row_per_ticket_in_the_period_and_no_resident_details(
    hub: Hub, data: dict[str, Any]
) -> None:
    response = await hub.client.get("/api/v1/reports/tickets.csv", headers=bearer(data["supervisor"]))
    rows = parse_csv(response)
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="tickets_')
    assert disposition.endswith('.csv"')
    assert rows[0] == TICKET_COLUMNS
    body = {r[0]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert sorted(body) == ["PKR-000001", "PKR-000002", "PKR-000003", "PKR-000004"]
    t4 = body["PKR-000004"]
    assert (t4["team"], t4["status"], t4["assignee"], t4["sla_breached"], t4["csat_rating"]) == (
        "parks", "resolved", "'@bo", "no", "5"
    )  # fmt: skip
    assert body["PKR-000003"]["sla_breached"] == "yes"
    assert "+19055550100" not in response.text


async def test_agent_and_sla_exports_and_every_export_is_audited(hub: Hub, data: dict[str, Any]) -> None:
    agents_rows = parse_csv(await hub.client.get("/api/v1/reports/agents.csv", headers=bearer(data["supervisor"])))
    by_id = {r[0]: dict(zip(agents_rows[0], r, strict=True)) for r in agents_rows[1:]}
    bo = by_id[str(data["bo"])]
    assert (bo["name"], bo["capacity"], bo["active_assigned"], bo["online"], bo["resolved_in_period"]) == (
        "'@bo", "3", "0", "no", "1"
    )  # fmt: skip
    sla_rows = parse_csv(await hub.client.get("/api/v1/reports/sla.csv", headers=bearer(data["supervisor"])))
    parks = next(dict(zip(sla_rows[0], r, strict=True)) for r in sla_rows[1:] if r[0] == "parks")
    assert (parks["first_response_met_pct"], parks["resolution_met_pct"], parks["breached"]) == ("50.0", "50.0", "1")

    async with hub.runtime.engine.connect() as conn:
        exports = (await conn.execute(select(AUDIT).where(AUDIT.c.action == "export"))).all()
    assert sorted(e.detail["report"] for e in exports) == ["agents.csv", "sla.csv"]
    assert {e.actor for e in exports} == {f"agent:{await agent_id(hub, data['supervisor'])}"}


def test_cells_that_a_spreadsheet_would_run_are_kept_as_text() -> None:
    for dangerous in ("=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(dangerous) == "'" + dangerous
    assert safe_cell("roads") == "roads"
    assert safe_cell(-2) == -2  # numbers are numbers


@pytest.mark.parametrize("path", ["overview", "tickets.csv", "agents.csv", "sla.csv"])
async def test_only_supervisors_and_admins_get_reports(hub: Hub, data: dict[str, Any], path: str) -> None:
    admin = await hub.agent_token(Role.ADMIN, "admin@city.test")
    for who, expected in ((data["agent"], 403), (data["comms"], 403), (admin, 200)):
        response = await hub.client.get(f"/api/v1/reports/{path}", headers=bearer(who))
        assert response.status_code == expected, (path, response.text)
    async with hub.runtime.engine.connect() as conn:
        exports = (await conn.execute(select(AUDIT.c.actor).where(AUDIT.c.action == "export"))).scalars().all()
    assert len(exports) == (0 if path == "overview" else 1)  # refused requests export nothing


async def console(hub: Hub, email: str) -> httpx.AsyncClient:
    """A browser signed in as this agent (a real console session)."""
    async with hub.runtime.transaction() as tx:
        row = await agents.agent_by_email(tx.conn, email)
        assert row is not None
        token, _ = await sessions.start(tx.conn, row.id, ttl=HOUR, now=utcnow(), ip="127.0.0.1", user_agent="test")
    return httpx.AsyncClient(transport=hub.client._transport, base_url=PUBLIC_URL, cookies={SESSION_COOKIE: token})


async def test_the_supervisor_page_shows_the_overview_to_supervisors_only(hub: Hub, data: dict[str, Any]) -> None:
    async with await console(hub, "sup@city.test") as browser:
        page = await browser.get("/console/supervisor")
        assert page.status_code == 200, page.text
        html = page.text
        assert "<caption>Active tickets by team and status</caption>" in html
        assert '<th scope="row">roads</th><td>1</td><td>1</td><td>0</td><td>2</td>' in html
        assert "50% (1 of 2)" in html  # parks' first answers on time
        assert 'href="/api/v1/reports/tickets.csv?since=' in html
        assert '<label for="since">' in html
        download = await browser.get("/api/v1/reports/sla.csv")
        assert download.status_code == 200  # the page's links work with the console session
    async with await console(hub, "ana@city.test") as browser:
        refused = await browser.get("/console/supervisor")
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("text/html")
        assert "Not allowed" in refused.text
    async with httpx.AsyncClient(transport=hub.client._transport, base_url=PUBLIC_URL) as anonymous:
        assert (await anonymous.get("/console/supervisor")).status_code == 303
