"""The recording adapter that unit tests use in place of real channels: it records, fails on cue, and holds."""

from __future__ import annotations

import asyncio

import pytest
from starlette.datastructures import ImmutableMultiDict

from channels.base import (
    ChannelAdapter,
    ChannelKind,
    DeliveryStatus,
    InboundRequest,
    OutboundEnvelope,
    PermanentSendError,
    TransientSendError,
    Unauthorized,
)
from channels.fake import RecordingAdapter


def envelope(outbox_id: int = 1) -> OutboundEnvelope:
    return OutboundEnvelope(outbox_id=outbox_id, channel=ChannelKind.SMS, to="+16135550123", body="hi")


async def test_successful_sends_are_recorded_with_distinct_ids() -> None:
    adapter: ChannelAdapter = RecordingAdapter()
    first, second = await adapter.send(envelope(1)), await adapter.send(envelope(2))
    assert isinstance(adapter, RecordingAdapter)
    assert [e.outbox_id for e in adapter.sent] == [1, 2]
    assert first.provider_id != second.provider_id


async def test_scripted_errors_are_raised_for_the_next_sends_in_order() -> None:
    adapter = RecordingAdapter()
    adapter.fail_next(TransientSendError("busy", code="429"), times=2)
    adapter.fail_next(PermanentSendError("opted out", code="21610", opted_out=True))
    with pytest.raises(TransientSendError):
        await adapter.send(envelope(1))
    with pytest.raises(TransientSendError):
        await adapter.send(envelope(2))
    with pytest.raises(PermanentSendError):
        await adapter.send(envelope(3))
    await adapter.send(envelope(4))
    assert [e.outbox_id for e in adapter.attempts] == [1, 2, 3, 4]
    assert [e.outbox_id for e in adapter.sent] == [4]


async def test_closed_gate_holds_sends_until_opened() -> None:
    adapter = RecordingAdapter()
    adapter.gate.clear()
    sending = asyncio.create_task(adapter.send(envelope()))
    await adapter.wait_for_attempts(1)
    assert not sending.done()
    assert adapter.sent == []
    adapter.gate.set()
    await sending
    assert len(await adapter.wait_for_sent(1)) == 1


async def test_waiting_for_sends_that_never_come_times_out() -> None:
    with pytest.raises(TimeoutError):
        await RecordingAdapter().wait_for_sent(1, timeout=0.05)


@pytest.mark.parametrize("kind", [ChannelKind.SMS, ChannelKind.EMAIL, ChannelKind.CHAT])  # a resident sends on these
def test_adapter_can_be_made_for_each_channel_kind(kind: ChannelKind) -> None:
    adapter = RecordingAdapter.for_kind(kind)
    assert adapter.kind is kind
    (message,) = adapter.parse_inbound(_req(id="m1", **{"from": "a", "to": "b", "body": "x"}))
    assert message.channel is kind


def test_webhooks_can_be_rejected() -> None:
    adapter = RecordingAdapter()
    adapter.verify(_req())
    adapter.reject_webhooks = True
    with pytest.raises(Unauthorized):
        adapter.verify(_req())


def test_status_form_is_read() -> None:
    update = RecordingAdapter().parse_status(_req(id="p1", status="delivered", outbox_id="9"))
    assert update is not None
    assert (update.provider_id, update.status, update.outbox_id) == ("p1", DeliveryStatus.DELIVERED, 9)


def test_inbound_form_without_sender_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="from"):
        RecordingAdapter().parse_inbound(_req(id="m1", to="b"))


def _req(**form: str) -> InboundRequest:
    return InboundRequest(url="https://hub.test/webhooks/fake", headers={}, form=ImmutableMultiDict(form))
