"""Mail is safe once stored: a crash before processing is recovered by the sweeper, and `carehub smtpd` (the
production listener, its own process) stores and processes mail into the shared store."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import aiosmtplib
from sqlalchemy import select, update

from carehub.clock import utcnow
from carehub.mail import repository as mail
from carehub.models import InboundEmail, Ticket
from carehub.settings import Settings
from tests.conftest import Hub, running_hub
from tests.support.mail import CITY_CARE, resident_mail
from tests.support.processes import carehub_process, settings_env
from tests.support.store_queries import count_rows
from tests.support.waiting import eventually

INBOUND = InboundEmail.__table__  # type: ignore[attr-defined]


async def stored_then_crashed(hub: Hub, subject: str) -> int:
    """What accept() commits before processing, with the process "dying" right after."""
    async with hub.runtime.transaction() as tx:
        return await mail.store_raw(
            tx.conn,
            resident_mail("resident@mail.example", subject, "Still here?\n"),
            source="smtp",
            envelope_from="resident@mail.example",
            envelope_to=(CITY_CARE,),
            now=utcnow(),
        )


async def test_mail_stored_before_a_crash_is_processed_by_the_sweeper(settings: Settings) -> None:
    quick = settings.model_copy(update={"email_reprocess_after_seconds": 0.05})
    async with running_hub(quick) as hub:
        inbound_id = await stored_then_crashed(hub, "Crash test")

        async def processed() -> str | None:
            async with hub.runtime.engine.connect() as conn:
                status = (await conn.execute(select(INBOUND.c.status).where(INBOUND.c.id == inbound_id))).scalar_one()
            return status if status != "received" else None

        assert await eventually(processed, what="the sweeper to process the stored mail") == "processed"
        assert await count_rows(hub.runtime.engine, Ticket) == 1


async def test_smtpd_command_stores_mail_into_the_shared_store(settings: Settings, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = settings_env(settings.model_copy(update={"smtp_inbound_port": port}))
    with carehub_process("smtpd", "--host", "127.0.0.1", env=env, cwd=tmp_path, log=tmp_path / "smtpd.log"):

        async def connect() -> aiosmtplib.SMTP | None:
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
            try:
                await client.connect()
            except (aiosmtplib.SMTPConnectError, OSError):
                return None
            return client

        client = await eventually(connect, within=30, what="carehub smtpd to listen")
        try:
            _, reply = await client.sendmail(
                "resident@mail.example", [CITY_CARE], resident_mail("resident@mail.example", "Noise", "Loud party.\n")
            )
        finally:
            await client.quit()

    assert reply.startswith("2.0.0 Stored as ")
    async with running_hub(settings) as hub:
        assert await count_rows(hub.runtime.engine, Ticket) == 1
        async with hub.runtime.engine.connect() as conn:
            [row] = list(await conn.execute(select(INBOUND.c.source, INBOUND.c.status, INBOUND.c.envelope_to)))
        assert (row.source, row.status, row.envelope_to) == ("smtp", "processed", CITY_CARE)


async def test_mail_whose_processing_keeps_dying_is_archived_for_a_person(settings: Settings) -> None:
    quick = settings.model_copy(update={"email_reprocess_after_seconds": 0.05})
    async with running_hub(quick) as hub:
        inbound_id = await stored_then_crashed(hub, "Poison")
        async with hub.runtime.transaction() as tx:
            # Three tries already ended with the process gone (store_raw counts the first).
            await tx.conn.execute(update(INBOUND).where(INBOUND.c.id == inbound_id).values(attempts=3))

        async def settled() -> Any:
            async with hub.runtime.engine.connect() as conn:
                row = (await conn.execute(select(INBOUND).where(INBOUND.c.id == inbound_id))).one()
            return row if row.status != "received" else None

        row = await eventually(settled, what="the sweeper to give up on the message")
        assert row.status == "unprocessable"
        assert row.reason == "processing did not finish in 3 attempts"
        assert await count_rows(hub.runtime.engine, Ticket) == 0
