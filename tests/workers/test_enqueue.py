"""Our one-round-trip enqueue writes jobs exactly as arq's enqueue_job() would: same keys, same payload, the same
refusal of a job id that is already waiting; and arq's own Job API reads them back."""

from __future__ import annotations

from datetime import timedelta

from arq.connections import ArqRedis
from arq.jobs import Job as ArqJob
from arq.jobs import JobStatus

from carehub.clock import utcnow
from carehub.outbox.dispatch import SEND_JOB, ArqDispatcher, Job
from tests.support import stores


async def test_enqueue_writes_arq_jobs_once_per_attempt_and_defers_retries(redis_url: str) -> None:
    await stores.flush_redis(redis_url)
    redis = ArqRedis.from_url(redis_url)
    dispatcher = ArqDispatcher(redis, "carehub:test-queue")
    later = utcnow() + timedelta(minutes=5)
    try:
        await dispatcher.enqueue([Job(41), Job(41), Job(42, attempts=3, not_before=later)])
        await dispatcher.enqueue([Job(41)])  # the sweeper finding it again while the job still waits

        queued = await redis.zrange("carehub:test-queue", 0, -1, withscores=True)
        first = await ArqJob("outbox:41:0", redis, _queue_name="carehub:test-queue").info()
        retry_status = await ArqJob("outbox:42:3", redis, _queue_name="carehub:test-queue").status()
    finally:
        await redis.aclose()

    assert [job_id for job_id, _ in queued] == [b"outbox:41:0", b"outbox:42:3"]
    assert queued[1][1] >= later.timestamp() * 1000 - 1
    assert first is not None
    assert (first.function, first.args) == (SEND_JOB, (41,))
    assert retry_status is JobStatus.deferred
