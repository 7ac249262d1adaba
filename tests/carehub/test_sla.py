"""SLA policies and timers: due times in business hours (across DST and holidays) computed by the periodic check,
one warning and one breach per target, announced on the live stream to supervisors (not to other teams' agents),
recomputed when a ticket's priority changes; policies are read by every ticket role and written by supervisors."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from carehub.clock import utcnow
from carehub.models import AuditEvent, Role, Ticket
from carehub.realtime.broker import Event
from carehub.realtime.events import AGENTS_TOPIC
from carehub.settings import Settings
from carehub.sla.timers import check_sla
from tests.conftest import Hub, running_hub
from tests.support.chat import agent_stream, reply
from tests.support.live import live_hub
from tests.support.mail import post_email, resident_mail
from tests.support.waiting import eventually

TICKETS = Ticket.__table__  # type: ignore[attr-defined]
AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]
ALWAYS_OPEN = "mon-sun 00:00-24:00"  # business minutes are plain minutes: timelines relative to the real clock
QUIET = {"sla_interval_seconds": 3600}  # the hub's own timer runs once at startup, then not during the test


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def at(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


async def new_ticket(hub: Hub, sender: str = "jo@example.org") -> tuple[int, str]:
    response = await post_email(hub.client, resident_mail(sender, "Pothole", "On Main Street.\n"))
    assert response.status_code < 300, response.text
    async with hub.runtime.transaction() as tx:
        ticket_id = int((await tx.conn.execute(select(func.max(TICKETS.c.id)))).scalar_one())
    return ticket_id, f"PKR-{ticket_id:06d}"


async def set_created(hub: Hub, ticket_id: int, when: datetime) -> None:
    """Test setup: the ticket arrived at this instant (the timers count from created_at)."""
    async with hub.runtime.transaction() as tx:
        await tx.conn.execute(update(TICKETS).where(TICKETS.c.id == ticket_id).values(created_at=when))


async def created(hub: Hub, ticket_id: int) -> datetime:
    async with hub.runtime.transaction() as tx:
        value: datetime = (
            await tx.conn.execute(select(TICKETS.c.created_at).where(TICKETS.c.id == ticket_id))
        ).scalar_one()
    return value


async def policy(hub: Hub, token: str, **body: Any) -> dict[str, Any]:
    response = await hub.client.post("/api/v1/sla-policies", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def patch_ticket(hub: Hub, token: str, reference: str, **changes: Any) -> None:
    response = await hub.client.patch(f"/api/v1/tickets/{reference}", json=changes, headers=bearer(token))
    assert response.status_code == 200, response.text


async def ticket(hub: Hub, token: str, reference: str) -> dict[str, Any]:
    response = await hub.client.get(f"/api/v1/tickets/{reference}", headers=bearer(token))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def recording(hub: Hub) -> list[str]:
    """The SLA events the hub publishes to agents (event name, target, ticket), in order."""
    seen: list[str] = []

    def on_event(event: Event) -> None:
        if event.text.startswith("event: sla."):
            seen.append(event.text)

    await hub.runtime.broker.listen(AGENTS_TOPIC, on_event)
    return seen


async def test_due_times_skip_the_weekend_the_dst_change_and_a_holiday_and_follow_a_priority_change(
    settings: Settings,
) -> None:
    holiday_monday = settings.model_copy(update={"holidays": [date(2026, 11, 2)], **QUIET})
    async with running_hub(holiday_monday) as hub:
        supervisor = await hub.agent_token(role=Role.SUPERVISOR)
        roads = await policy(
            hub, supervisor, team=" Roads", priority="high", first_response_minutes=60, resolution_minutes=480
        )
        assert roads["team"] == "roads"
        await policy(hub, supervisor, priority="normal", first_response_minutes=120, resolution_minutes=960)
        ticket_id, reference = await new_ticket(hub)
        await patch_ticket(hub, supervisor, reference, team="roads", priority="high")
        friday_4pm_edt = utc(2026, 10, 30, 20, 0)
        await set_created(hub, ticket_id, friday_4pm_edt)

        run = await check_sla(hub.runtime, friday_4pm_edt + timedelta(minutes=5))
        assert (run.computed, run.warned, run.breached) == (1, 0, 0)
        shown = await ticket(hub, supervisor, reference)
        # 30 minutes on Friday; Monday is a holiday; clocks went back on Sunday: Tuesday 09:00 and 16:00 EST.
        assert at(shown["first_response_due_at"]) == utc(2026, 11, 3, 14, 0)
        assert at(shown["resolution_due_at"]) == utc(2026, 11, 3, 21, 0)
        assert shown["sla_breached_at"] is None
        listed = (await hub.client.get("/api/v1/tickets", headers=bearer(supervisor))).json()["items"]
        assert at(listed[0]["first_response_due_at"]) == utc(2026, 11, 3, 14, 0)
        assert (await check_sla(hub.runtime, friday_4pm_edt + timedelta(minutes=6))).computed == 0

        # Down to normal: the default policy (120 / 960 business minutes) applies from the next check.
        await patch_ticket(hub, supervisor, reference, priority="normal")
        assert (await check_sla(hub.runtime, friday_4pm_edt + timedelta(minutes=7))).computed == 1
        shown = await ticket(hub, supervisor, reference)
        assert at(shown["first_response_due_at"]) == utc(2026, 11, 3, 15, 0)  # Tuesday 10:00 EST
        assert at(shown["resolution_due_at"]) == utc(2026, 11, 4, 21, 0)  # Wednesday 16:00 EST


async def test_warned_once_breached_once_and_only_supervisors_and_the_team_hear_of_it(settings: Settings) -> None:
    async with live_hub(settings.model_copy(update={"business_hours": ALWAYS_OPEN, **QUIET})) as live:
        admin = await live.agent_token(role=Role.ADMIN, email="admin@city.test")
        supervisor = await live.agent_token(role=Role.SUPERVISOR, email="sup@city.test")
        parks_agent = await live.agent_token(email="pat@city.test")
        pat = (await live.client.get("/api/v1/me", headers=bearer(parks_agent))).json()
        teams = await live.client.patch(f"/api/v1/agents/{pat['id']}", json={"teams": ["parks"]}, headers=bearer(admin))
        assert teams.status_code == 200, teams.text
        await policy(live, admin, team="roads", priority="high", first_response_minutes=60, resolution_minutes=240)
        ticket_id, reference = await new_ticket(live)
        await patch_ticket(live, supervisor, reference, team="roads", priority="high")
        t0 = await created(live, ticket_id)

        async with agent_stream(live.url, supervisor) as sup_stream, agent_stream(live.url, parks_agent) as parks:
            assert (await check_sla(live.runtime, t0 + timedelta(minutes=1))).computed == 1
            assert (await check_sla(live.runtime, t0 + timedelta(minutes=35))).warned == 1  # 25 minutes left
            warning = await sup_stream.wait_for("sla.warning", reference=reference)
            assert warning["target"] == "first_response"
            assert at(warning["due_at"]) == t0 + timedelta(minutes=60)
            again = await check_sla(live.runtime, t0 + timedelta(minutes=36))
            assert (again.warned, again.breached) == (0, 0)

            assert (await check_sla(live.runtime, t0 + timedelta(minutes=61))).breached == 1
            breach = await sup_stream.wait_for("sla.breached", reference=reference)
            assert (breach["target"], breach["team"], breach["ticket_id"]) == ("first_response", "roads", ticket_id)
            again = await check_sla(live.runtime, t0 + timedelta(minutes=62))
            assert (again.warned, again.breached) == (0, 0)

            # Something the parks agent may see comes after: by then any SLA event for them would have arrived.
            _, other = await new_ticket(live, "kim@example.org")
            await parks.wait_for("ticket.created", reference=other)
            assert [name for name, _ in parks.events if name.startswith("sla.")] == []
            assert [name for name, _ in sup_stream.events if name.startswith("sla.")] == ["sla.warning", "sla.breached"]

        shown = await ticket(live, supervisor, reference)
        assert at(shown["sla_breached_at"]) == t0 + timedelta(minutes=61)


async def test_after_the_first_response_the_resolution_target_gets_its_own_warning_and_breach(
    settings: Settings,
) -> None:
    async with running_hub(settings.model_copy(update={"business_hours": ALWAYS_OPEN, **QUIET})) as hub:
        supervisor = await hub.agent_token(role=Role.SUPERVISOR)
        agent = await hub.agent_token(email="ana@city.test")
        await policy(hub, supervisor, priority="normal", first_response_minutes=60, resolution_minutes=240)
        events = await recording(hub)
        ticket_id, reference = await new_ticket(hub)
        t0 = utcnow() - timedelta(minutes=35)  # it arrived 35 minutes ago: 25 left to answer
        await set_created(hub, ticket_id, t0)

        run = await check_sla(hub.runtime, utcnow())
        assert (run.computed, run.warned, run.breached) == (1, 1, 0)
        await reply(hub.client, agent, reference, "We have sent a crew.")
        assert (await check_sla(hub.runtime, utcnow())).warned == 0  # the resolution is hours away
        assert (await check_sla(hub.runtime, t0 + timedelta(minutes=215))).warned == 1
        assert (await check_sla(hub.runtime, t0 + timedelta(minutes=216))).warned == 0
        assert (await check_sla(hub.runtime, t0 + timedelta(minutes=241))).breached == 1
        assert (await check_sla(hub.runtime, t0 + timedelta(minutes=242))).breached == 0

    targets = [(e.split("\n")[0], '"target":"resolution"' in e) for e in events]
    assert targets == [("event: sla.warning", False), ("event: sla.warning", True), ("event: sla.breached", True)]


async def test_resolved_tickets_and_tickets_without_a_policy_are_never_breached(settings: Settings) -> None:
    async with running_hub(settings.model_copy(update={"business_hours": ALWAYS_OPEN, **QUIET})) as hub:
        supervisor = await hub.agent_token(role=Role.SUPERVISOR)
        await policy(hub, supervisor, priority="high", first_response_minutes=10, resolution_minutes=20)
        _, resolved = await new_ticket(hub, "a@example.org")
        await patch_ticket(hub, supervisor, resolved, priority="high")
        _, unmatched = await new_ticket(hub, "b@example.org")  # normal: no policy
        assert (await check_sla(hub.runtime, utcnow())).computed == 2
        assert at((await ticket(hub, supervisor, resolved))["resolution_due_at"]) is not None
        agent = await hub.agent_token(email="ana@city.test")
        await reply(hub.client, agent, resolved, "Fixed.")
        await patch_ticket(hub, supervisor, resolved, status="resolved")
        run = await check_sla(hub.runtime, utcnow() + timedelta(days=30))
        assert (run.computed, run.warned, run.breached) == (0, 0, 0)
        shown = await ticket(hub, supervisor, unmatched)
        assert (shown["first_response_due_at"], shown["resolution_due_at"]) == (None, None)


async def test_two_checks_at_once_announce_each_breach_once(settings: Settings) -> None:
    async with running_hub(settings.model_copy(update={"business_hours": ALWAYS_OPEN, **QUIET})) as hub:
        supervisor = await hub.agent_token(role=Role.SUPERVISOR)
        await policy(hub, supervisor, priority="normal", first_response_minutes=5, resolution_minutes=60)
        events = await recording(hub)
        for i in range(3):
            await new_ticket(hub, f"r{i}@example.org")
        await check_sla(hub.runtime, utcnow())
        later = utcnow() + timedelta(minutes=10)
        runs = await asyncio.gather(check_sla(hub.runtime, later), check_sla(hub.runtime, later))
    assert sum(r.breached for r in runs) == 3
    assert len([e for e in events if e.startswith("event: sla.breached")]) == 3


async def test_the_hub_checks_timers_by_itself_in_embedded_mode(settings: Settings) -> None:
    async with running_hub(
        settings.model_copy(update={"business_hours": ALWAYS_OPEN, "sla_interval_seconds": 5})
    ) as hub:
        supervisor = await hub.agent_token(role=Role.SUPERVISOR)
        await policy(hub, supervisor, priority="normal", first_response_minutes=5, resolution_minutes=60)
        ticket_id, reference = await new_ticket(hub)
        await set_created(hub, ticket_id, utcnow() - timedelta(minutes=6))

        async def breached() -> str | None:
            value: str | None = (await ticket(hub, supervisor, reference))["sla_breached_at"]
            return value

        await eventually(breached, within=15, what="the hub's own SLA timer to record the breach")


async def test_policies_are_read_by_agents_and_written_only_by_supervisors_and_admins(hub: Hub) -> None:
    agent = await hub.agent_token(email="ana@city.test")
    supervisor = await hub.agent_token(role=Role.SUPERVISOR)
    admin = await hub.agent_token(role=Role.ADMIN)
    body = {"team": "roads", "priority": "high", "first_response_minutes": 60, "resolution_minutes": 480}

    refused = await hub.client.post("/api/v1/sla-policies", json=body, headers=bearer(agent))
    assert refused.status_code == 403
    created_policy = await policy(hub, supervisor, **body)
    duplicate = await hub.client.post("/api/v1/sla-policies", json={**body, "team": " ROADS "}, headers=bearer(admin))
    assert duplicate.status_code == 409
    assert "already an SLA policy for team 'roads'" in duplicate.json()["detail"]
    default = {**body, "team": None}
    await policy(hub, admin, **default)
    second_default = await hub.client.post("/api/v1/sla-policies", json=default, headers=bearer(admin))
    assert second_default.status_code == 409

    listed = await hub.client.get("/api/v1/sla-policies", headers=bearer(agent))
    assert listed.status_code == 200
    assert [(p["team"], p["priority"]) for p in listed.json()] == [(None, "high"), ("roads", "high")]

    policy_id = created_policy["id"]
    assert (
        await hub.client.patch(
            f"/api/v1/sla-policies/{policy_id}", json={"resolution_minutes": 5}, headers=bearer(agent)
        )
    ).status_code == 403
    shorter = await hub.client.patch(
        f"/api/v1/sla-policies/{policy_id}", json={"resolution_minutes": 30}, headers=bearer(admin)
    )
    assert shorter.status_code == 422  # shorter than its first-response target
    changed = await hub.client.patch(
        f"/api/v1/sla-policies/{policy_id}", json={"first_response_minutes": 30}, headers=bearer(admin)
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["first_response_minutes"] == 30
    assert (await hub.client.delete(f"/api/v1/sla-policies/{policy_id}", headers=bearer(agent))).status_code == 403
    assert (await hub.client.delete(f"/api/v1/sla-policies/{policy_id}", headers=bearer(supervisor))).status_code == 204
    assert (await hub.client.delete(f"/api/v1/sla-policies/{policy_id}", headers=bearer(supervisor))).status_code == 404
    assert [p["team"] for p in (await hub.client.get("/api/v1/sla-policies", headers=bearer(agent))).json()] == [None]

    async with hub.runtime.transaction() as tx:
        audited = (
            await tx.conn.execute(
                select(AUDIT.c.action).where(AUDIT.c.entity_type == "sla_policy", AUDIT.c.entity_id == policy_id)
            )
        ).scalars()
        assert sorted(audited) == ["create", "delete", "update"]


@pytest.mark.parametrize(
    "body",
    [
        {"priority": "high", "first_response_minutes": 0, "resolution_minutes": 60},
        {"priority": "high", "first_response_minutes": 60, "resolution_minutes": 525_601},
        {"priority": "critical", "first_response_minutes": 60, "resolution_minutes": 120},
        {"priority": "high", "first_response_minutes": 60, "resolution_minutes": 120, "team": "  "},
        {"priority": "high", "first_response_minutes": 120, "resolution_minutes": 60},
    ],
)
async def test_invalid_policies_are_refused(hub: Hub, body: dict[str, Any]) -> None:
    supervisor = await hub.agent_token(role=Role.SUPERVISOR)
    response = await hub.client.post("/api/v1/sla-policies", json=body, headers=bearer(supervisor))
    assert response.status_code == 422, response.text
