"""How a send ends: retried on transient errors without duplicates, failed with the reason on permanent ones,
held (not blindly resent) when the provider may have it, and moved forward only by status callbacks."""

from __future__ import annotations

import json
from datetime import timedelta

from carehub.clock import utcnow
from carehub.db import AnyRow
from carehub.outbox import repository as outbox
from tests.conftest import Hub
from tests.fakes.twilio_api import FakeTwilioApi, drop_after_accept, error, rate_limited, server_error
from tests.support.corpus import TWILIO_PAYLOADS
from tests.support.identities import ACCOUNT_SID
from tests.support.store_queries import opted_out, outbox_row, outbox_rows
from tests.support.twilio import STATUS_PATH, post_signed, status_callback, text_hub
from tests.support.waiting import eventually

RESIDENT = "+19055550123"


async def ack_row_when(hub: Hub, *statuses: str) -> AnyRow:
    async def check() -> AnyRow | None:
        rows = await outbox_rows(hub.runtime.engine)
        return rows[0] if rows and rows[0].status in statuses else None

    return await eventually(check, what=f"acknowledgement delivery to reach {statuses}")


async def test_invalid_number_fails_permanently_with_twilio_reason(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    fake_twilio.push(error(400, 21211, "The 'To' number +19055550123 is not a valid phone number."))

    await text_hub(hub.client, RESIDENT, "hello")

    row = await ack_row_when(hub, "failed")
    assert row.error_code == "21211"
    assert "not a valid phone number" in row.last_error
    assert row.attempts == 1
    assert fake_twilio.accepted == []
    token = await hub.agent_token()
    ticket = (await hub.client.get("/api/v1/tickets/PKR-000001", headers={"Authorization": f"Bearer {token}"})).json()
    delivery = ticket["messages"][-1]["delivery"]
    assert (delivery["status"], delivery["error_code"]) == ("failed", "21211")
    assert "not a valid phone number" in delivery["last_error"]


async def test_rate_limited_send_is_retried_and_sent_once(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    fake_twilio.push(rate_limited(0.1))

    await text_hub(hub.client, RESIDENT, "hello")

    row = await ack_row_when(hub, "sent")
    assert row.attempts == 2
    assert len(fake_twilio.accepted) == 1
    assert row.provider_id == fake_twilio.accepted[0].sid


async def test_provider_5xx_is_retried_with_backoff(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    fake_twilio.push(server_error(500), server_error(503))

    await text_hub(hub.client, RESIDENT, "hello")

    row = await ack_row_when(hub, "sent")
    assert row.attempts == 3
    assert len(fake_twilio.accepted) == 1


async def test_retries_stop_at_the_attempt_limit(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    limit = hub.settings.delivery_max_attempts
    fake_twilio.push(*[server_error(503)] * (limit + 2))

    await text_hub(hub.client, RESIDENT, "hello")

    row = await ack_row_when(hub, "failed")
    assert row.attempts == limit
    assert f"gave up after {limit} attempts" in row.last_error


async def test_opted_out_recipient_21610_fails_and_marks_the_number(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    fake_twilio.push(error(400, 21610, "Attempt to send to unsubscribed recipient"))

    await text_hub(hub.client, RESIDENT, "hello")

    row = await ack_row_when(hub, "failed")
    assert row.error_code == "21610"
    assert await opted_out(hub.runtime.engine, RESIDENT)
    token = await hub.agent_token()
    reply = await hub.client.post(
        "/api/v1/tickets/PKR-000001/replies", json={"body": "Hi"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert reply.status_code == 409
    assert "opted out" in reply.json()["detail"]


async def test_ambiguous_send_waits_for_the_status_callback_instead_of_resending(
    hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    fake_twilio.push(drop_after_accept())

    await text_hub(hub.client, RESIDENT, "hello")
    [accepted] = await fake_twilio.wait_for(1)
    row = await ack_row_when(hub, "sending")
    await eventually(lambda: _has_error(hub, row.id), what="the hold to be recorded")

    callback = await status_callback(hub.client, row.id, accepted.sid, "sent", to=RESIDENT)

    assert callback.status_code == 204
    settled = await outbox_row(hub.runtime.engine, row.id)
    assert (settled.status, settled.provider_id) == ("sent", accepted.sid)
    later = utcnow() + timedelta(seconds=hub.settings.ambiguous_send_hold_seconds + 60)
    async with hub.runtime.transaction() as tx:
        assert await outbox.due_for_sweep(tx.conn, later, timedelta(0), 10) == []
    assert len(fake_twilio.accepted) == 1


async def test_ambiguous_send_with_no_callback_is_sent_again_after_the_hold(
    hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    """The documented duplicate window: if Twilio took the message but never calls back, one resend follows."""
    fake_twilio.push(drop_after_accept())

    await text_hub(hub.client, RESIDENT, "hello")

    await eventually(lambda: _accepted_count(fake_twilio, 2), what="the resend after the hold")
    row = await ack_row_when(hub, "sent")
    assert row.attempts == 2


async def test_status_callback_21610_marks_the_number_opted_out(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    await text_hub(hub.client, RESIDENT, "hello")
    [ack] = await fake_twilio.wait_for(1)
    row = await ack_row_when(hub, "sent")

    response = await status_callback(hub.client, row.id, ack.sid, "failed", to=RESIDENT, error_code="21610")

    assert response.status_code == 204
    assert (await outbox_row(hub.runtime.engine, row.id)).status == "failed"
    assert await opted_out(hub.runtime.engine, RESIDENT)


async def test_final_status_is_never_overwritten_by_a_late_callback(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    await text_hub(hub.client, RESIDENT, "hello")
    [ack] = await fake_twilio.wait_for(1)
    row = await ack_row_when(hub, "sent")
    outbox_id = row.id

    for status in ("undelivered", "delivered", "sent", "queued", "sending"):
        assert (await status_callback(hub.client, outbox_id, ack.sid, status, to=RESIDENT)).status_code == 204

    assert (await outbox_row(hub.runtime.engine, outbox_id)).status == "undelivered"


async def test_status_callback_with_bad_signature_is_403_and_changes_nothing(
    hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    await text_hub(hub.client, RESIDENT, "hello")
    [ack] = await fake_twilio.wait_for(1)
    row = await ack_row_when(hub, "sent")
    path = f"{STATUS_PATH}?d={row.id}"

    response = await post_signed(hub.client, path, {"MessageSid": ack.sid, "MessageStatus": "delivered"}, token="wrong")

    assert response.status_code == 403
    assert (await outbox_row(hub.runtime.engine, row.id)).status == "sent"


async def test_real_status_callback_payloads_are_accepted_or_refused_cleanly(hub: Hub) -> None:
    payloads = json.loads(TWILIO_PAYLOADS.read_text())
    callbacks = [{**p["params"], "AccountSid": ACCOUNT_SID} for p in payloads if p["kind"] == "status_callback"]
    assert len(callbacks) >= 10

    statuses = [(await post_signed(hub.client, STATUS_PATH, params)).status_code for params in callbacks]

    assert set(statuses) == {204}  # none of them is ours, so nothing moves, and Twilio must not retry them
    assert await outbox_rows(hub.runtime.engine) == []


async def _has_error(hub: Hub, outbox_id: int) -> bool:
    return (await outbox_row(hub.runtime.engine, outbox_id)).last_error is not None


async def _accepted_count(fake: FakeTwilioApi, n: int) -> bool:
    return len(fake.accepted) >= n
