"""deliver() against the recording adapter: the claim makes a second run a no-op, a bug in a send is held rather
than retried blindly, and the sweeper picks up exactly the rows whose job was lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import pytest

from carehub.clock import utcnow
from carehub.contacts import repository as contacts
from carehub.outbox import repository as outbox
from carehub.outbox.delivery import Outcome, deliver, deliver_many, sweep
from carehub.outbox.dispatch import Job
from carehub.runtime import Runtime
from carehub.settings import Settings
from carehub.tickets import repository as tickets
from channels.base import ChannelKind, OutboundEnvelope, SendResult
from channels.fake import RecordingAdapter
from tests.support.store_queries import outbox_row


class CollectingDispatcher:
    def __init__(self) -> None:
        self.jobs: list[Job] = []

    async def enqueue(self, jobs: Sequence[Job]) -> None:
        self.jobs.extend(jobs)

    async def aclose(self) -> None:
        return None


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    rt = Runtime.create(settings)
    for adapter in rt.adapters.values():
        await adapter.aclose()
    rt.adapters = {ChannelKind.SMS: RecordingAdapter()}
    rt.dispatcher = CollectingDispatcher()
    yield rt
    await rt.aclose()


def recorder(rt: Runtime) -> RecordingAdapter:
    adapter = rt.adapters[ChannelKind.SMS]
    assert isinstance(adapter, RecordingAdapter)
    return adapter


async def stage_reply(rt: Runtime, body: str = "hello", to: str = "+19055550123") -> int:
    now = utcnow()
    async with rt.transaction() as tx:
        sender = await contacts.create_sender(tx.conn, ChannelKind.SMS, to, now)
        ticket_id = await tickets.create_ticket(
            tx.conn,
            contact_id=sender.contact_id,
            address_id=sender.address_id,
            channel=ChannelKind.SMS,
            subject=None,
            now=now,
        )
        message_id = await tickets.add_outbound_message(
            tx.conn, ticket_id=ticket_id, channel=ChannelKind.SMS, body=body, author_agent_id=None, now=now
        )
        return await outbox.stage(tx.conn, message_id=message_id, channel=ChannelKind.SMS, to_address=to, now=now)


async def test_a_job_run_twice_sends_once(runtime: Runtime) -> None:
    outbox_id = await stage_reply(runtime)

    first = await deliver(runtime, outbox_id)
    second = await deliver(runtime, outbox_id)

    assert (first, second) == (Outcome.SENT, Outcome.NOT_DUE)
    assert [e.outbox_id for e in recorder(runtime).sent] == [outbox_id]
    assert (await outbox_row(runtime.engine, outbox_id)).provider_id == "fake-sms-1"


async def test_unexpected_error_in_a_send_is_held_not_retried_at_once(runtime: Runtime) -> None:
    outbox_id = await stage_reply(runtime)
    recorder(runtime).fail_next(RuntimeError("bug in an adapter"))

    outcome = await deliver(runtime, outbox_id)

    row = await outbox_row(runtime.engine, outbox_id)
    assert outcome is Outcome.HELD
    assert row.status == "sending"
    assert "bug in an adapter" in row.last_error
    assert row.lease_until >= utcnow() + timedelta(seconds=runtime.settings.ambiguous_send_hold_seconds - 5)


async def test_sweeper_re_enqueues_only_rows_whose_job_is_overdue(runtime: Runtime) -> None:
    fresh = await stage_reply(runtime)
    dispatcher = runtime.dispatcher
    assert isinstance(dispatcher, CollectingDispatcher)

    assert await sweep(runtime) == 0  # queued just now: its after-commit job is presumably on its way
    later = utcnow() + timedelta(seconds=runtime.settings.sweep_grace_seconds + 1)
    async with runtime.transaction() as tx:
        due = await outbox.due_for_sweep(tx.conn, later, timedelta(seconds=runtime.settings.sweep_grace_seconds), 10)
    assert due == [(fresh, 0)]
    assert dispatcher.jobs == []


async def test_a_batch_keeps_at_most_its_concurrency_of_sends_in_flight(runtime: Runtime) -> None:
    runtime.settings = runtime.settings.model_copy(update={"delivery_batch_concurrency": 3})
    ids = [await stage_reply(runtime, f"alert {i}", to=f"+1905555010{i}") for i in range(8)]
    adapter = recorder(runtime)
    in_flight, most = 0, 0
    send = adapter.send

    async def counting_send(env: OutboundEnvelope) -> SendResult:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        try:
            return await send(env)
        finally:
            in_flight -= 1

    adapter.send = counting_send  # type: ignore[method-assign]
    adapter.gate.clear()
    batch = asyncio.create_task(deliver_many(runtime, ids))
    await adapter.wait_for_attempts(3)
    adapter.gate.set()
    outcomes = await batch

    assert most == 3
    assert outcomes == dict.fromkeys(ids, Outcome.SENT)
    assert sorted(e.outbox_id for e in adapter.sent) == ids
