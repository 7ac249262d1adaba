"""The sweeper's timer in embedded mode (production runs the same sweep as an arq cron job)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("carehub.outbox")


class EmbeddedSweeper:
    def __init__(self, sweep: Callable[[], Awaitable[int]], interval_seconds: float) -> None:
        self._sweep = sweep
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="carehub-sweeper")

    async def _loop(self) -> None:
        while True:
            try:
                await self._sweep()
            except Exception:
                log.exception("sweep failed; trying again next interval")
            await asyncio.sleep(self._interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
