"""arq jobs: deliver one outbox row, or several together. They take only ids; safe to run more than once."""

from __future__ import annotations

from typing import Any

from carehub.outbox.delivery import deliver, deliver_many
from carehub.runtime import Runtime


async def send_message(ctx: dict[str, Any], outbox_id: int) -> str:
    runtime: Runtime = ctx["runtime"]
    return (await deliver(runtime, outbox_id)).value


async def send_messages(ctx: dict[str, Any], outbox_ids: list[int]) -> dict[str, int]:
    runtime: Runtime = ctx["runtime"]
    outcomes = await deliver_many(runtime, outbox_ids)
    return {outcome.value: list(outcomes.values()).count(outcome) for outcome in set(outcomes.values())}
