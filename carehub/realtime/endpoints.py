"""The agents' live stream (GET /api/v1/events, server-sent events): new tickets and messages on every channel,
chat typing and read state. Holding it open is what makes an agent "online" for chat."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from carehub import audit
from carehub.agents.auth import CurrentAgent, RuntimeDep, TicketAgent
from carehub.clock import utcnow
from carehub.realtime.broker import Event
from carehub.realtime.events import AGENTS_TOPIC, TEAM_CHANGED
from carehub.routing.assignment import assign_waiting_soon
from carehub.runtime import Runtime
from carehub.tickets import repository as tickets

router = APIRouter(prefix="/api/v1", tags=["events"])

KEEP_ALIVE_SECONDS = 15.0
MAX_BACKLOG = 10_000  # events waiting for a slow reader; past this the stream ends and the console reloads
MAX_CHUNK = 500
TEAM_CACHE_SECONDS = 600.0
TEAM_CACHE_SIZE = 10_000
OVERFLOW = Event(text="event: overflow\ndata: {}\n\n")


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}},
)
async def events(request: Request, rt: RuntimeDep, agent: TicketAgent) -> StreamingResponse:
    """Server-sent events: `ticket.created`, `message.created`, `chat.typing`, `chat.read`, `chat.closed`, each
    with JSON data; a comment every 15 s keeps proxies from closing it. Events are live only: after a reconnect,
    read the queue again (GET /api/v1/tickets) for what happened in between. A reader that falls more than 10,000
    events behind gets `overflow` and the stream ends: reconnect and read the queue again."""
    async with rt.transaction() as tx:
        await audit.by_agent(tx.conn, agent.id, "stream", "agent", agent.id, utcnow())
    return StreamingResponse(
        _stream(rt, agent, request.app.state.ticket_teams),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


class TicketTeams:
    """Tickets' teams, for deciding which agent may see an event: looked up in one query per batch of events and
    remembered by the whole process (every stream shares it, so a reconnecting stream does not start cold). A
    ticket moved to another team is forgotten at once on every replica (TEAM_CHANGED); TEAM_CACHE_SECONDS is the
    backstop should that event be lost."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._teams: dict[int, tuple[str | None, float]] = {}

    def on_event(self, event: Event) -> None:
        if event.text == TEAM_CHANGED and event.ticket_id is not None:
            self._teams.pop(event.ticket_id, None)

    async def of(self, ticket_ids: set[int]) -> dict[int, str | None]:
        now = time.monotonic()
        stale = {t for t in ticket_ids if (cached := self._teams.get(t)) is None or cached[1] < now}
        if stale:
            if len(self._teams) > TEAM_CACHE_SIZE:
                self._teams.clear()
            async with self.rt.transaction() as tx:
                found = await tickets.teams_of(tx.conn, stale)
            for ticket_id in stale:
                self._teams[ticket_id] = (found.get(ticket_id), now + TEAM_CACHE_SECONDS)
        return {t: self._teams[t][0] for t in ticket_ids}


async def visible(agent: CurrentAgent, chunk: list[Event], teams: TicketTeams) -> list[Event]:
    """The events of this chunk the agent may see: their teams' tickets and those without a team."""
    if agent.sees_every_team:
        return chunk
    team_of = await teams.of({e.ticket_id for e in chunk if e.ticket_id is not None})
    return [e for e in chunk if e.ticket_id is None or agent.can_see(team_of[e.ticket_id])]


async def _stream(rt: Runtime, agent: CurrentAgent, teams: TicketTeams) -> AsyncIterator[str]:
    agent_id = agent.id
    queue: asyncio.Queue[Event] = asyncio.Queue()

    overflowed = False

    def on_event(event: Event) -> None:
        nonlocal overflowed
        if overflowed:
            return
        if queue.qsize() >= MAX_BACKLOG:
            overflowed = True  # one marker; the reader gets it after what is already queued, and the stream ends
            queue.put_nowait(OVERFLOW)
        else:
            queue.put_nowait(event)

    await rt.broker.listen(AGENTS_TOPIC, on_event)
    await rt.presence.enter(agent_id)
    assign_waiting_soon(rt)  # an agent came online: waiting tickets may go to them
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
            shown = await visible(agent, chunk, teams)
            if shown:
                yield "".join(e.text for e in shown)
            if OVERFLOW in chunk:
                return
    finally:
        await rt.broker.unlisten(AGENTS_TOPIC, on_event)
        with contextlib.suppress(Exception):
            await rt.presence.leave(agent_id)
