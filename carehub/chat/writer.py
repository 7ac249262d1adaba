"""Residents' chat messages to PostgreSQL in batches: what arrives while a call is in flight goes in the next one.

Each message is committed before its sender's ack (an ack means stored); a batch commits once, so a busy hub pays
one round trip and one WAL flush for many messages. With nothing else waiting a message goes alone, at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import asyncpg

from carehub.chat.repository import Appended
from carehub.clock import utcnow

log = logging.getLogger("carehub.chat")

APPEND_CALL = "SELECT r_index, r_message, r_seq, r_ticket, r_at, r_duplicate FROM carehub_chat_append($1, $2, $3, $4)"
MAX_BATCH = 200
WRITERS = 4  # calls in flight at once (each on its own pooled connection); 8 measured no faster
RETRIES = 3


@dataclass(frozen=True, slots=True)
class _Pending:
    conversation_id: int
    cid: str
    body: str
    done: asyncio.Future[Appended]


class ChatWriter:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(), name=f"chat-writer-{i}") for i in range(WRITERS)]

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def append(self, conversation_id: int, cid: str, body: str) -> Appended:
        done: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(conversation_id, cid, body, done))
        return await done

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            except Exception as exc:
                log.exception("storing %d chat messages failed", len(batch))
                for p in batch:
                    if not p.done.done():
                        p.done.set_exception(exc)

    async def _write(self, batch: list[_Pending]) -> None:
        batch.sort(key=lambda p: p.conversation_id)  # one lock order for every call: no deadlocks between them
        args = (
            [p.conversation_id for p in batch],
            [p.cid for p in batch],
            [p.body for p in batch],
            utcnow(),
        )
        for attempt in range(RETRIES):
            try:
                rows = await self._pool.fetch(APPEND_CALL, *args)
                break
            except (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.UniqueViolationError):
                # An agent's change locked a ticket first, or the same message came in another batch at the same
                # moment (two tabs resending it): the whole batch rolled back, and the redo finds the other's row.
                if attempt == RETRIES - 1:
                    raise
        for row in rows:
            p = batch[row["r_index"] - 1]
            if not p.done.done():  # the sender may have gone (its socket closed): the message is stored anyway
                p.done.set_result(
                    Appended(row["r_message"], row["r_seq"], row["r_at"], row["r_ticket"], duplicate=row["r_duplicate"])
                )
