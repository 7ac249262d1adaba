"""Our one-round-trip enqueue writes jobs exactly as arq's enqueue_job() would: same keys, same payload, the same
refusal of a job id that is already waiting; and arq's own Job API reads them back."""

from __future__ import annotations

from datetime import timedelta

from arq.connections import ArqRedis
from arq.jobs import Job as ArqJob
from arq.jobs import JobStatus

from carehub.clock import utcnow
from carehub.outbox.dispatch import SEND_BATCH_JOB, SEND_JOB, ArqDispatcher, Job
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


async def test_jobs_due_together_go_batch_size_to_an_arq_job(redis_url: str) -> None:
    await stores.flush_redis(redis_url)
    redis = ArqRedis.from_url(redis_url)
    dispatcher = ArqDispatcher(redis, "carehub:test-queue", batch_size=4)
    later = utcnow() + timedelta(minutes=5)
    try:
        await dispatcher.enqueue([*(Job(i) for i in range(1, 10)), Job(99, attempts=2, not_before=later)])

        job_ids = [job_id.decode() for job_id in await redis.zrange("carehub:test-queue", 0, -1)]
        infos = [await ArqJob(job_id, redis, _queue_name="carehub:test-queue").info() for job_id in job_ids]
    finally:
        await redis.aclose()

    calls = sorted((info.function, info.args) for info in infos if info is not None)
    assert calls == [
        (SEND_JOB, (9,)),  # the one left over goes alone
        (SEND_JOB, (99,)),  # a deferred retry is never batched
        (SEND_BATCH_JOB, ([1, 2, 3, 4],)),
        (SEND_BATCH_JOB, ([5, 6, 7, 8],)),
    ]
