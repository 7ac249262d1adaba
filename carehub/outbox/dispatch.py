"""Two ways of feeding the one delivery path: arq jobs on Redis (production) or an in-process runner (embedded).

Both only ever carry outbox ids. Enqueue failures are logged, not raised: the row is committed, and the sweeper
finds it again, so a Redis outage delays delivery but loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from arq.connections import ArqRedis

from carehub.clock import utcnow

log = logging.getLogger("carehub.outbox")
SEND_JOB = "send_message"


@dataclass(frozen=True)
class Job:
    outbox_id: int
    attempts: int = 0
    not_before: datetime | None = None

    @property
    def job_id(self) -> str:
        # One id per attempt: arq drops a second enqueue of a job that is still waiting, so the sweeper and the
        # after-commit hook cannot double-queue the same attempt.
        return f"outbox:{self.outbox_id}:{self.attempts}"


class Dispatcher(Protocol):
    async def enqueue(self, jobs: Sequence[Job]) -> None: ...

    async def aclose(self) -> None: ...


class ArqDispatcher:
    def __init__(self, redis: ArqRedis, queue_name: str) -> None:
        self.redis = redis
        self.queue_name = queue_name

    async def enqueue(self, jobs: Sequence[Job]) -> None:
        try:
            await asyncio.gather(
                *(
                    self.redis.enqueue_job(
                        SEND_JOB,
                        job.outbox_id,
                        _job_id=job.job_id,
                        _queue_name=self.queue_name,
                        _defer_until=job.not_before,
                    )
                    for job in jobs
                )
            )
        except Exception:
            log.warning("could not enqueue %d deliveries; the sweeper will pick them up", len(jobs), exc_info=True)

    async def aclose(self) -> None:
        await self.redis.aclose()


RunJob = Callable[[int], Awaitable[object]]


class InProcessDispatcher:
    """Runs delivery jobs in this process: a queue, a few consumer tasks, and sleeping tasks for deferred retries."""

    def __init__(self, run: RunJob, *, concurrency: int = 4) -> None:
        self._run = run
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._pending: set[int] = set()
        self._deferred: set[asyncio.Task[None]] = set()
        self._running: set[asyncio.Task[None]] = set()
        self._consumers = [
            asyncio.create_task(self._consume(), name=f"carehub-delivery-{i}") for i in range(concurrency)
        ]

    async def enqueue(self, jobs: Sequence[Job]) -> None:
        now = utcnow()
        for job in jobs:
            if job.not_before is not None and job.not_before > now:
                task = asyncio.create_task(self._later((job.not_before - now).total_seconds(), job.outbox_id))
                self._deferred.add(task)
                task.add_done_callback(self._deferred.discard)
            else:
                self._put(job.outbox_id)

    async def _later(self, delay: float, outbox_id: int) -> None:
        await asyncio.sleep(delay)
        self._put(outbox_id)

    def _put(self, outbox_id: int) -> None:
        if outbox_id not in self._pending:  # already waiting: a second run would only find it claimed
            self._pending.add(outbox_id)
            self._queue.put_nowait(outbox_id)

    async def _consume(self) -> None:
        while True:
            outbox_id = await self._queue.get()
            self._pending.discard(outbox_id)
            job = asyncio.create_task(self._run_logged(outbox_id))
            self._running.add(job)
            job.add_done_callback(self._running.discard)
            await asyncio.shield(job)  # closing stops this loop, not the send in flight

    async def _run_logged(self, outbox_id: int) -> None:
        try:
            await self._run(outbox_id)
        except Exception:
            log.exception("delivery of outbox row %d failed unexpectedly; the sweeper will retry", outbox_id)

    async def aclose(self, grace_seconds: float = 15.0) -> None:
        """Stop taking jobs; let sends in flight finish (as a worker does on SIGTERM), then cancel what is left."""
        idle = [*self._deferred, *self._consumers]
        for task in idle:
            task.cancel()
        await asyncio.gather(*idle, return_exceptions=True)
        if self._running:
            _, late = await asyncio.wait(self._running, timeout=grace_seconds)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
