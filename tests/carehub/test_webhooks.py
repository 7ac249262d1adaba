"""Outbound webhooks end to end: the real hub (embedded delivery, the event feed on its timer), a real store and a
real local receiver. Events are signed so an independent Standard Webhooks library verifies them, retried until
the receiver takes them (once each), staged once however often the feed re-reads, and never sent to a target that
has become private."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update
from standardwebhooks.webhooks import Webhook

from carehub.db import AnyRow
from carehub.models import Outbox, Role, Ticket, WebhookEndpoint
from carehub.settings import Settings
from carehub.webhooks import feed
from carehub.webhooks import repository as webhooks
from channels.base import ChannelKind
from tests.conftest import Hub, running_hub
from tests.support.alerts import FAST, draft, phone, report_when_done, staff, subscribe
from tests.support.twilio import text_hub
from tests.support.waiting import eventually
from tests.support.webhook_receiver import Received, Reply, WebhookReceiver

RESIDENT = "+19055550123"
ALL_EVENTS = ["ticket.created", "ticket.updated", "message.created", "alert.sent", "alert.completed"]
OUTBOX = Outbox.__table__  # type: ignore[attr-defined]
ENDPOINTS = WebhookEndpoint.__table__  # type: ignore[attr-defined]
TICKETS = Ticket.__table__  # type: ignore[attr-defined]


@pytest.fixture
async def webhook_hub(settings: Settings) -> AsyncIterator[Hub]:
    async with running_hub(settings.model_copy(update={"event_feed_interval_seconds": 1, **FAST})) as running:
        yield running


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as running:
        yield running


async def register(hub: Hub, url: str, events: list[str], *, allow_private: bool = True) -> dict[str, Any]:
    """A webhook endpoint registered by an admin through the API; the answer includes its secret."""
    headers = await staff(hub, Role.ADMIN, email=f"admin{id(url)}-{len(events)}@city.test")
    created = await hub.client.post(
        "/api/v1/webhooks", json={"url": url, "events": events, "allow_private": allow_private}, headers=headers
    )
    assert created.status_code == 201, created.text
    return {**created.json(), "headers": headers}


async def success_for(receiver: WebhookReceiver, event_id: str, within: float = 15.0) -> Received:
    async def check() -> Received | None:
        return next((r for r in receiver.successes if r.event_id == event_id), None)

    return await eventually(check, within=within, what=f"a successful delivery of {event_id}")


async def webhook_rows(hub: Hub) -> list[AnyRow]:
    async with hub.runtime.engine.connect() as conn:
        query = select(OUTBOX).where(OUTBOX.c.channel == ChannelKind.WEBHOOK.value).order_by(OUTBOX.c.id)
        return list((await conn.execute(query)).all())


async def test_a_texted_inquiry_and_a_status_change_reach_the_endpoint_signed(
    webhook_hub: Hub, receiver: WebhookReceiver
) -> None:
    endpoint = await register(webhook_hub, receiver.url, ["ticket.created", "ticket.updated", "message.created"])

    await text_hub(webhook_hub.client, RESIDENT, "Streetlight out on Kingston Rd")
    created = await success_for(receiver, "ticket.created:1")
    inbound = await success_for(receiver, "message.created:1")
    changed = await webhook_hub.client.patch(
        "/api/v1/tickets/PKR-000001", json={"status": "open"}, headers=endpoint["headers"]
    )
    assert changed.status_code == 200, changed.text

    async def opened() -> Received | None:
        return next(
            (
                r
                for r in receiver.successes
                if r.event_id.startswith("ticket.updated:1:") and json.loads(r.body)["data"]["status"] == "open"
            ),
            None,
        )

    updated = await eventually(opened, within=15, what="ticket.updated with status open")
    for got in (created, inbound, updated):
        assert Webhook(endpoint["secret"]).verify(got.body, got.headers)["id"] == got.event_id
        assert got.headers["carehub-event-type"] == got.event_id.split(":")[0]
    ticket = json.loads(created.body)
    assert ticket["type"] == "ticket.created"
    assert ticket["data"]["reference"] == "PKR-000001"
    assert ticket["data"]["channel"] == "sms"
    assert set(ticket["data"]) == {
        "id",
        "reference",
        "status",
        "priority",
        "team",
        "assignee_id",
        "channel",
        "subject",
        "created_at",
        "updated_at",
    }
    message = json.loads(inbound.body)["data"]
    assert message == {
        "id": 1,
        "ticket_id": 1,
        "ticket_reference": "PKR-000001",
        "direction": "inbound",
        "channel": "sms",
        "body": "Streetlight out on Kingston Rd",
        "created_at": message["created_at"],
    }
    ack = await success_for(receiver, "message.created:2")  # the acknowledgement, outbound
    assert json.loads(ack.body)["data"]["direction"] == "outbound"
    assert all(RESIDENT not in r.body and RESIDENT[2:] not in r.body for r in receiver.requests)  # no phone numbers


async def test_a_receiver_that_fails_three_times_then_succeeds_gets_each_event_exactly_once(
    webhook_hub: Hub, receiver: WebhookReceiver
) -> None:
    receiver.push(Reply(500), Reply(503, headers={"Retry-After": "0"}), Reply(drop=True))
    endpoint = await register(webhook_hub, receiver.url, ["ticket.created"])

    await text_hub(webhook_hub.client, RESIDENT, "Pothole on Rougemount Dr")
    await success_for(receiver, "ticket.created:1")
    await feed.tick(webhook_hub.runtime)  # the feed reading the same changes again stages nothing new
    await feed.tick(webhook_hub.runtime)

    assert [r.answered for r in receiver.requests] == [500, 503, None, 204]
    assert {r.event_id for r in receiver.requests} == {"ticket.created:1"}
    assert len({r.body for r in receiver.requests}) == 1  # every retry is the same event
    assert Counter(r.event_id for r in receiver.successes) == {"ticket.created:1": 1}
    [row] = await webhook_rows(webhook_hub)
    assert (row.status, row.attempts, row.event_id) == ("sent", 4, "ticket.created:1")
    shown = await webhook_hub.client.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries", headers=endpoint["headers"])
    assert shown.status_code == 200
    [delivery] = shown.json()
    assert delivery["event_id"] == "ticket.created:1"
    assert delivery["event_type"] == "ticket.created"
    assert (delivery["status"], delivery["attempts"], delivery["last_error"]) == ("sent", 4, None)


async def test_rereading_the_overlap_window_delivers_every_event_once(
    webhook_hub: Hub, receiver: WebhookReceiver
) -> None:
    await register(webhook_hub, receiver.url, ALL_EVENTS)
    await text_hub(webhook_hub.client, RESIDENT, "Garbage not picked up")
    await text_hub(webhook_hub.client, "+19055550199", "Noise complaint on Liverpool Rd")
    for event_id in ("ticket.created:1", "ticket.created:2", *(f"message.created:{i}" for i in range(1, 5))):
        await success_for(receiver, event_id)  # both texts and their acknowledgements
    rows_before = await webhook_rows(webhook_hub)

    # Twice more, on top of the timer: every change of the last minute is read again each time.
    again = [await feed.tick(webhook_hub.runtime) for _ in range(2)]

    rows_after = await webhook_rows(webhook_hub)
    new = {r.event_id for r in rows_after} - {r.event_id for r in rows_before}
    assert all(not e.startswith(("ticket.created", "message.created")) for e in new)  # only later ticket changes
    assert again[-1].messages == 0
    event_ids = [r.event_id for r in rows_after]
    assert len(event_ids) == len(set(event_ids))

    async def all_sent() -> bool:
        rows = await webhook_rows(webhook_hub)
        return all(r.status == "sent" for r in rows)

    await eventually(all_sent, what="every staged delivery sent")
    assert Counter(r.event_id for r in receiver.successes) == Counter(event_ids)


async def test_a_change_committed_late_but_stamped_behind_the_cursor_is_still_delivered(
    webhook_hub: Hub, receiver: WebhookReceiver
) -> None:
    await register(webhook_hub, receiver.url, ["ticket.created"])
    await text_hub(webhook_hub.client, RESIDENT, "Water in the basement")
    await success_for(receiver, "ticket.created:1")
    rt = webhook_hub.runtime
    async with rt.transaction() as tx:
        first = (await tx.conn.execute(select(TICKETS).where(TICKETS.c.id == 1))).one()._asdict()
        registered_at = (await tx.conn.execute(select(ENDPOINTS.c.created_at))).scalar_one()
        cursor = await webhooks.cursor(tx.conn, feed.TICKETS)
    assert cursor is not None
    # A ticket whose transaction began after the endpoint was registered but committed only now, after the feed
    # has moved past its timestamp: stamped before ticket 1.
    stamped = registered_at + (first["created_at"] - registered_at) / 2
    assert stamped < cursor.position
    async with rt.transaction() as tx:
        values = {k: v for k, v in first.items() if k != "id"} | {"created_at": stamped, "updated_at": stamped}
        late_id = (await tx.conn.execute(insert(TICKETS).values(**values).returning(TICKETS.c.id))).scalar_one()

    late = await success_for(receiver, f"ticket.created:{late_id}")

    assert json.loads(late.body)["data"]["reference"] == f"PKR-{late_id:06d}"


async def test_an_alert_going_out_and_finishing_are_two_events(webhook_hub: Hub, receiver: WebhookReceiver) -> None:
    await register(webhook_hub, receiver.url, ["alert.sent", "alert.completed"])
    await subscribe(webhook_hub.runtime, ChannelKind.SMS, [phone(1), phone(2)])
    headers = await staff(webhook_hub)
    created = await webhook_hub.client.post("/api/v1/alerts", json=draft(), headers=headers)
    assert created.status_code == 201, created.text
    alert_id = created.json()["id"]

    sent = await webhook_hub.client.post(f"/api/v1/alerts/{alert_id}/send", headers=headers)
    assert sent.status_code == 200, sent.text
    await report_when_done(webhook_hub, headers, alert_id)

    started = json.loads((await success_for(receiver, f"alert.sent:{alert_id}")).body)
    finished = json.loads((await success_for(receiver, f"alert.completed:{alert_id}")).body)
    assert started["data"]["title"] == "Water main break"
    assert started["data"]["started_at"] is not None
    assert finished["data"]["status"] == "sent"
    assert finished["data"]["finished_at"] is not None
    assert all(phone(1) not in r.body for r in receiver.requests)


async def test_a_target_that_has_become_private_is_refused_at_send_time(
    webhook_hub: Hub, receiver: WebhookReceiver
) -> None:
    endpoint = await register(webhook_hub, receiver.url, ["ticket.created"])
    # As if its host name had been public at registration and now resolved to this machine (DNS rebinding).
    async with webhook_hub.runtime.transaction() as tx:
        await tx.conn.execute(
            update(ENDPOINTS)
            .where(ENDPOINTS.c.id == endpoint["id"])
            .values(url=f"https://localhost:{receiver.port}/hooks", allow_private=False)
        )

    await text_hub(webhook_hub.client, RESIDENT, "Tree down on Whites Rd")

    async def failed() -> AnyRow | None:
        rows = await webhook_rows(webhook_hub)
        return rows[0] if rows and rows[0].status == "failed" else None

    row = await eventually(failed, within=15, what="the delivery to fail")
    assert row.error_code == "refused-address"
    assert "localhost resolves to" in row.last_error
    assert "loopback" in row.last_error
    assert row.attempts == 1
    assert receiver.requests == []


async def test_a_deactivated_endpoint_gets_nothing_more_and_its_waiting_deliveries_fail(
    webhook_hub: Hub, receiver: WebhookReceiver
) -> None:
    receiver.push(Reply(503, headers={"Retry-After": "1"}))
    endpoint = await register(webhook_hub, receiver.url, ["ticket.created", "message.created"])
    await text_hub(webhook_hub.client, RESIDENT, "Broken swing in the park")
    await eventually(lambda: _answered(receiver, 503), what="the first attempt")

    gone = await webhook_hub.client.delete(f"/api/v1/webhooks/{endpoint['id']}", headers=endpoint["headers"])
    assert gone.status_code == 204

    async def settled() -> list[AnyRow] | None:
        rows = await webhook_rows(webhook_hub)
        return rows if rows and all(r.status in ("sent", "failed") for r in rows) else None

    rows = await eventually(settled, within=15, what="every delivery to settle")
    failed = [r for r in rows if r.status == "failed"]
    assert failed
    assert all(r.error_code == "endpoint-inactive" for r in failed)
    assert "deactivated" in failed[0].last_error
    count = len(rows)
    await text_hub(webhook_hub.client, "+19055550177", "Another inquiry")
    await feed.tick(webhook_hub.runtime)
    assert len(await webhook_rows(webhook_hub)) == count
    shown = await webhook_hub.client.get(f"/api/v1/webhooks/{endpoint['id']}", headers=endpoint["headers"])
    assert shown.json()["is_active"] is False


async def _answered(receiver: WebhookReceiver, status: int) -> bool:
    return any(r.answered == status for r in receiver.requests)


def test_event_ids_fit_the_outbox_column() -> None:
    longest = f"ticket.updated:{2**31 - 1}:{int(timedelta(days=365 * 200).total_seconds() * 1_000_000)}"
    assert len(longest) <= 64
