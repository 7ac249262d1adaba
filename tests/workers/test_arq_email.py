"""Email through a real arq worker: acknowledgements for many residents reach a real SMTP server, each once, over
the worker's few reused connections (the adapter lives as long as the worker, across jobs)."""

from __future__ import annotations

from typing import Any

from carehub.outbox.dispatch import Job
from carehub.settings import Settings
from tests.conftest import mail_settings, running_hub
from tests.fakes.smtp_server import SmtpSink
from tests.support import stores
from tests.support.mail import post_email, resident_mail
from tests.support.store_queries import outbox_rows
from tests.support.waiting import eventually
from tests.workers.conftest import arq_worker

RESIDENTS = [f"resident{i}@mail.example" for i in range(20)]


async def test_worker_sends_every_email_once_over_reused_connections(
    queue_settings: Settings, smtp_sink: SmtpSink
) -> None:
    settings = mail_settings(queue_settings, smtp_sink, smtp_pool_size=3)
    async with running_hub(settings) as hub, arq_worker(settings):
        for address in RESIDENTS:
            response = await post_email(hub.client, resident_mail(address, "Leaf pickup", "When is it?\n"))
            assert response.json()["acknowledged"] is True
        received = await smtp_sink.wait_for(len(RESIDENTS), within=20)

        async def all_recorded() -> list[Any] | None:
            rows = await outbox_rows(hub.runtime.engine)
            return rows if all(r.status == "sent" for r in rows) else None

        rows = await eventually(all_recorded, what="the worker to record every send")

    assert sorted(r.rcpt_tos[0] for r in received) == sorted(RESIDENTS)
    assert len({r.message["Message-ID"] for r in received}) == len(RESIDENTS)
    assert 1 <= smtp_sink.connections <= 3
    assert [r.attempts for r in rows] == [1] * len(RESIDENTS)
    assert {r.provider_id for r in rows} == {r.message["Message-ID"] for r in received}


async def test_mail_enqueued_together_is_sent_in_batches_each_once(
    queue_settings: Settings, smtp_sink: SmtpSink
) -> None:
    settings = mail_settings(queue_settings, smtp_sink, delivery_batch_size=7)
    async with running_hub(settings) as hub:
        # Staged while no worker runs; then enqueued together, as an alert's fan-out or the sweeper's catch-up is.
        for address in RESIDENTS:
            await post_email(hub.client, resident_mail(address, "Road closure", "Which roads?\n"))
        ids = [r.id for r in await outbox_rows(hub.runtime.engine)]
        assert hub.runtime.dispatcher is not None
        await stores.flush_redis(settings.redis_url or "")
        await hub.runtime.dispatcher.enqueue([Job(i) for i in ids])
        async with arq_worker(settings):
            received = await smtp_sink.wait_for(len(RESIDENTS), within=20)

            async def all_recorded() -> list[Any] | None:
                rows = await outbox_rows(hub.runtime.engine)
                return rows if all(r.status == "sent" for r in rows) else None

            rows = await eventually(all_recorded, what="every batch recorded as sent")

    assert sorted(r.rcpt_tos[0] for r in received) == sorted(RESIDENTS)
    assert len(smtp_sink.messages) == len(RESIDENTS)
    assert [r.attempts for r in rows] == [1] * len(RESIDENTS)
