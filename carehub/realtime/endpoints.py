"""The agents' live stream (GET /api/v1/events, server-sent events): new tickets and messages on every channel,
chat typing and read state. Holding it open is what makes an agent "online" for chat."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from carehub import audit
from carehub.agents.auth import RuntimeDep, TicketAgent
from carehub.clock import utcnow
from carehub.realtime.broker import Event
from carehub.realtime.events import AGENTS_TOPIC
from carehub.runtime import Runtime

router = APIRouter(prefix="/api/v1", tags=["events"])

KEEP_ALIVE_SECONDS = 15.0
MAX_BACKLOG = 2000  # events waiting for a slow reader; past this the stream ends and the console reloads
MAX_CHUNK = 500
OVERFLOW = Event(text="event: overflow\ndata: {}\n\n")


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}},
)
async def events(rt: RuntimeDep, agent: TicketAgent) -> StreamingResponse:
    """Server-sent events: `ticket.created`, `message.created`, `chat.typing`, `chat.read`, `chat.closed`, each
    with JSON data; a comment every 15 s keeps proxies from closing it. Events are live only: after a reconnect,
    read the queue again (GET /api/v1/tickets) for what happened in between. A reader that falls more than 2,000
    events behind gets `overflow` and the stream ends: reconnect and read the queue again."""
    async with rt.transaction() as tx:
        await audit.record(
            tx.conn,
            actor=audit.agent_actor(agent.id),
            action="stream",
            entity_type="agent",
            entity_id=agent.id,
            now=utcnow(),
        )
    return StreamingResponse(
        _stream(rt, agent.id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _stream(rt: Runtime, agent_id: int) -> AsyncIterator[str]:
    queue: asyncio.Queue[Event] = asyncio.Queue()

    def on_event(event: Event) -> None:
        if queue.qsize() >= MAX_BACKLOG:
            queue.put_nowait(OVERFLOW)
        else:
            queue.put_nowait(event)

    await rt.broker.listen(AGENTS_TOPIC, on_event)
    await rt.presence.enter(agent_id)
    try:
        yield "retry: 2000\n: connected\n\n"
        while True:
            if queue.empty():
                try:
                    chunk = [await asyncio.wait_for(queue.get(), KEEP_ALIVE_SECONDS)]
                except TimeoutError:
                    await rt.presence.refresh(agent_id)
                    yield ": keep-alive\n\n"
                    continue
            else:
                chunk = []
            # Whatever else is waiting goes in the same write: a busy queue costs one write per batch, not per event.
            while not queue.empty() and len(chunk) < MAX_CHUNK:
                chunk.append(queue.get_nowait())
            yield "".join(e.text for e in chunk)
            if OVERFLOW in chunk:
                return
    finally:
        await rt.broker.unlisten(AGENTS_TOPIC, on_event)
        with contextlib.suppress(Exception):
            await rt.presence.leave(agent_id)
