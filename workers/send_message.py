"""arq job: deliver one outbox row. Takes only the id; safe to run more than once."""

from __future__ import annotations

from typing import Any

from carehub.outbox.delivery import deliver
from carehub.runtime import Runtime


async def send_message(ctx: dict[str, Any], outbox_id: int) -> str:
    runtime: Runtime = ctx["runtime"]
    return (await deliver(runtime, outbox_id)).value
