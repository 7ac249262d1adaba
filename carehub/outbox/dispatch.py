"""Two ways of feeding the one delivery path: arq jobs on Redis (production) or an in-process runner (embedded).

Both only ever carry outbox ids. Enqueue failures are logged, not raised: the row is committed, and the sweeper
finds it again, so a Redis outage delays delivery but loses nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from arq.connections import ArqRedis
from arq.constants import expires_extra_ms, job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms, to_unix_ms

from carehub.clock import utcnow
from carehub.settings import Settings

log = logging.getLogger("carehub.outbox")
SEND_JOB = "send_message"
SEND_BATCH_JOB = "send_messages"


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


# What arq's enqueue_job() does in four to five round trips (WATCH, EXISTS, MULTI, PSETEX, ZADD, EXEC), as one
# atomic script: skip a job whose id is waiting or has a result, else store it and put it on the queue.
_ENQUEUE_LUA = """
if redis.call('exists', KEYS[1], KEYS[2]) > 0 then return 0 end
redis.call('psetex', KEYS[1], ARGV[1], ARGV[2])
redis.call('zadd', KEYS[3], ARGV[3], ARGV[4])
return 1
"""


class ArqDispatcher:
    """Enqueues arq jobs in arq's own format and keys, in one round trip for any number of jobs."""

    def __init__(self, redis: ArqRedis, queue_name: str, *, batch_size: int = 1) -> None:
        self.redis = redis
        self.queue_name = queue_name
        self.batch_size = batch_size
        self._script = redis.register_script(_ENQUEUE_LUA)

    @classmethod
    def for_settings(cls, redis: ArqRedis, settings: Settings) -> ArqDispatcher:
        return cls(redis, settings.queue_name, batch_size=settings.delivery_batch_size)

    async def enqueue(self, jobs: Sequence[Job]) -> None:
        """Jobs due at the same moment (now, or an alert's slot window) go out batch_size to an arq job (many at
        once: an alert, the sweeper's catch-up), so a worker claims, composes and records them together; a job
        alone at its moment (a retry) stays one to a job."""
        if not jobs:
            return
        try:
            now_ms = timestamp_ms()
            async with self.redis.pipeline(transaction=False) as pipe:
                for group in _same_moment(jobs):
                    for batch in (group[i : i + self.batch_size] for i in range(0, len(group), self.batch_size)):
                        if len(batch) > 1:
                            await self._add_batch(pipe, batch, now_ms)
                        else:
                            await self._add_single(pipe, batch[0], now_ms)
                await pipe.execute()
        except Exception:
            log.warning("could not enqueue %d deliveries; the sweeper will pick them up", len(jobs), exc_info=True)

    async def _add_batch(self, pipe: Any, batch: Sequence[Job], now_ms: int) -> None:
        ids = [job.outbox_id for job in batch]
        job_id = "outboxes:" + hashlib.sha1(repr(batch).encode(), usedforsecurity=False).hexdigest()
        when = batch[0].not_before
        score = now_ms if when is None else max(now_ms, to_unix_ms(when))
        await self._add(pipe, job_id, serialize_job(SEND_BATCH_JOB, (ids,), {}, None, now_ms), score, now_ms)

    async def _add_single(self, pipe: Any, job: Job, now_ms: int) -> None:
        score = now_ms if job.not_before is None else max(now_ms, to_unix_ms(job.not_before))
        await self._add(pipe, job.job_id, serialize_job(SEND_JOB, (job.outbox_id,), {}, None, now_ms), score, now_ms)

    async def _add(self, pipe: Any, job_id: str, payload: bytes, score: int, now_ms: int) -> None:
        await self._script(
            keys=[job_key_prefix + job_id, result_key_prefix + job_id, self.queue_name],
            args=[score - now_ms + expires_extra_ms, payload, score, job_id],
            client=pipe,
        )

    async def aclose(self) -> None:
        await self.redis.aclose()


def _same_moment(jobs: Sequence[Job]) -> list[list[Job]]:
    """The jobs grouped by when they are due, in order of first appearance."""
    groups: dict[datetime | None, list[Job]] = {}
    for job in jobs:
        groups.setdefault(job.not_before, []).append(job)
    return list(groups.values())


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
        for group in _same_moment(jobs):
            when = group[0].not_before
            ids = [job.outbox_id for job in group]
            if when is not None and when > now:
                task = asyncio.create_task(self._later((when - now).total_seconds(), ids))
                self._deferred.add(task)
                task.add_done_callback(self._deferred.discard)
            else:
                for outbox_id in ids:
                    self._put(outbox_id)

    async def _later(self, delay: float, outbox_ids: list[int]) -> None:
        await asyncio.sleep(delay)
        for outbox_id in outbox_ids:
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
