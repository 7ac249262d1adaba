"""arq cron job: route tickets a crash left unrouted, and rebalance assignments (waiting tickets to agents with
room; unanswered tickets back from agents who went offline). Safe to run more than once, on any worker."""

from __future__ import annotations

from typing import Any

from carehub.routing.arrival import sweep_arrivals
from carehub.runtime import Runtime


async def sweep_routing(ctx: dict[str, Any]) -> int:
    runtime: Runtime = ctx["runtime"]
    return await sweep_arrivals(runtime)
