"""Periodic work in embedded mode: the outbox sweeper, SLA timers (production runs each as an arq cron job)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("carehub.outbox")


class EmbeddedSweeper:
    def __init__(
        self, sweep: Callable[[], Awaitable[object]], interval_seconds: float, *, name: str = "sweeper"
    ) -> None:
        self._sweep = sweep
        self._interval = interval_seconds
        self._name = name
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"carehub-{self._name}")

    async def _loop(self) -> None:
        while True:
            try:
                await self._sweep()
            except Exception:
                log.exception("%s failed; trying again next interval", self._name)
            await asyncio.sleep(self._interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
