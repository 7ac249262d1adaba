"""Agent API for working on tickets beyond replying: labels, merging duplicates (and undoing it), and who else
has the ticket open (collision detection). HTTP only: the rules are in labels.py, merge.py, realtime/viewers.py."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from redis.exceptions import RedisError
from sqlmodel import Field, SQLModel

from carehub.agents.auth import RuntimeDep, TicketAgent
from carehub.clock import utcnow
from carehub.problems import Problem
from carehub.realtime.events import AGENTS_TOPIC, agent_event
from carehub.realtime.viewers import Seen, Viewer
from carehub.runtime import Runtime
from carehub.tickets import labels, merge, service
from carehub.tickets.merge import MergeCreate, TicketMergePublic
from carehub.tickets.reference import format_reference

router = APIRouter(prefix="/api/v1", tags=["ticket operations"])


class LabelSet(SQLModel):
    labels: list[str] = Field(max_length=labels.MAX_PER_TICKET)


class LabelUse(SQLModel):
    label: str
    tickets: int  # how many tickets (that you may see) have it


class ViewingUpdate(SQLModel):
    typing: bool = False


class ViewerPublic(SQLModel):
    agent_id: int
    name: str
    typing: bool


@router.put("/tickets/{ref}/labels")
async def replace_labels(ref: str, payload: LabelSet, rt: RuntimeDep, agent: TicketAgent) -> LabelSet:
    """Make the ticket's labels exactly these (stored in lower case; at most 20)."""
    ticket_id = service.ticket_id_from(rt.settings, ref)
    async with rt.transaction() as tx:
        return LabelSet(labels=await labels.replace(tx, rt.settings, ticket_id, agent, payload.labels, utcnow()))


@router.post("/tickets/{ref}/labels/{label}")
async def add_label(ref: str, label: str, rt: RuntimeDep, agent: TicketAgent) -> LabelSet:
    ticket_id = service.ticket_id_from(rt.settings, ref)
    async with rt.transaction() as tx:
        return LabelSet(labels=await labels.add(tx, rt.settings, ticket_id, agent, label, utcnow()))


@router.delete("/tickets/{ref}/labels/{label}")
async def remove_label(ref: str, label: str, rt: RuntimeDep, agent: TicketAgent) -> LabelSet:
    ticket_id = service.ticket_id_from(rt.settings, ref)
    async with rt.transaction() as tx:
        return LabelSet(labels=await labels.remove(tx, rt.settings, ticket_id, agent, label, utcnow()))


@router.get("/labels")
async def labels_in_use(
    rt: RuntimeDep,
    agent: TicketAgent,
    prefix: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[LabelUse]:
    """Labels on tickets you may see, most used first (for autocomplete; prefix narrows them)."""
    async with rt.transaction() as tx:
        found = await labels.in_use(tx.conn, agent, prefix, limit)
    return [LabelUse(label=label, tickets=count) for label, count in found]


@router.post("/tickets/{ref}/merge", status_code=status.HTTP_201_CREATED)
async def merge_ticket(ref: str, payload: MergeCreate, rt: RuntimeDep, agent: TicketAgent) -> TicketMergePublic:
    """Merge this ticket into another (`into`): its messages and notes move there, it is closed. Undo with
    POST /api/v1/ticket-merges/{id}/undo (or /api/v1/tickets/{ref}/unmerge)."""
    source_id = service.ticket_id_from(rt.settings, ref)
    target_id = service.ticket_id_from(rt.settings, payload.into)
    async with rt.transaction() as tx:
        return await merge.merge(tx, rt.settings, source_id, target_id, agent, utcnow())


@router.post("/ticket-merges/{merge_id}/undo")
async def undo_merge(merge_id: int, rt: RuntimeDep, agent: TicketAgent) -> TicketMergePublic:
    async with rt.transaction() as tx:
        return await merge.unmerge(tx, rt.settings, merge_id, agent, utcnow())


@router.post("/tickets/{ref}/unmerge")
async def unmerge_ticket(ref: str, rt: RuntimeDep, agent: TicketAgent) -> TicketMergePublic:
    """Undo the merge that merged this ticket into another."""
    source_id = service.ticket_id_from(rt.settings, ref)
    async with rt.transaction() as tx:
        await service.load(tx.conn, rt.settings, source_id, agent)
        merge_id = await merge.current_merge_of(tx.conn, rt.settings, source_id)
        return await merge.unmerge(tx, rt.settings, merge_id, agent, utcnow())


@router.get("/tickets/{ref}/merges")
async def ticket_merges(ref: str, rt: RuntimeDep, agent: TicketAgent) -> list[TicketMergePublic]:
    """The merges this ticket took part in, either side, oldest first (with their ids, for undo)."""
    ticket_id = service.ticket_id_from(rt.settings, ref)
    async with rt.transaction() as tx:
        await service.load(tx.conn, rt.settings, ticket_id, agent)
        return await merge.merges_of(tx.conn, rt.settings, ticket_id)


@router.post("/tickets/{ref}/viewing")
async def viewing(ref: str, payload: ViewingUpdate, rt: RuntimeDep, agent: TicketAgent) -> list[ViewerPublic]:
    """Heartbeat while the ticket is on screen (every ~10 s; an entry lasts 30 s), saying whether you are typing a
    reply. Returns the other agents viewing it; `ticket.viewers` goes to everyone when that set changes."""
    ticket_id = service.ticket_id_from(rt.settings, ref)
    async with rt.transaction() as tx:
        await service.load(tx.conn, rt.settings, ticket_id, agent)
    me = Viewer(agent_id=agent.id, name=agent.name, typing=payload.typing)
    seen = await _viewers(rt, rt.viewers.heartbeat(ticket_id, me, time.time()))
    _tell(rt, ticket_id, seen)
    return [ViewerPublic.model_validate(asdict(v)) for v in seen.others(agent.id)]


@router.delete("/tickets/{ref}/viewing", status_code=status.HTTP_204_NO_CONTENT)
async def stop_viewing(ref: str, rt: RuntimeDep, agent: TicketAgent) -> Response:
    """Leaving the ticket (page closed or another ticket opened)."""
    ticket_id = service.ticket_id_from(rt.settings, ref)
    _tell(rt, ticket_id, await _viewers(rt, rt.viewers.leave(ticket_id, agent.id, time.time())))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _viewers(rt: Runtime, call: Awaitable[Seen]) -> Seen:
    try:
        return await call
    except (RedisError, OSError):
        raise Problem(503, "Who else is viewing this ticket cannot be told right now; try again shortly.") from None


def _tell(rt: Runtime, ticket_id: int, seen: Seen) -> None:
    if seen.changed:
        event = agent_event(
            "ticket.viewers",
            ticket_id=ticket_id,
            reference=format_reference(rt.settings.ticket_prefix, ticket_id),
            viewers=[asdict(v) for v in seen.viewers],
        )
        rt.publish_soon([(AGENTS_TOPIC, event)])
