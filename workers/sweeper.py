"""arq cron job: re-enqueue deliveries whose job was lost (Redis flushed or restarted, a worker killed), and
process stored mail a crash left unprocessed."""

from __future__ import annotations

from typing import Any

from carehub.outbox.delivery import sweep_all
from carehub.runtime import Runtime


async def sweep_outbox(ctx: dict[str, Any]) -> int:
    runtime: Runtime = ctx["runtime"]
    return await sweep_all(runtime)
