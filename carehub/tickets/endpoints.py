"""Agent API for tickets (/api/v1/tickets): list, read with messages and delivery status, reply, claim, update."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from carehub.agents.auth import AnyAgent, RuntimeDep, TicketAgent
from carehub.clock import utcnow
from carehub.models import (
    MessagePublic,
    NoteCreate,
    Priority,
    ReplyCreate,
    TicketDetail,
    TicketPage,
    TicketStatus,
    TicketUpdate,
)
from carehub.problems import Problem
from carehub.routing.assignment import assign_waiting_soon
from carehub.tickets import service
from carehub.tickets.queue import QueueFilter, SlaFilter, Sort, queue_page
from channels.base import ChannelKind

router = APIRouter(prefix="/api/v1", tags=["tickets"])


@router.get("/me")
async def me(agent: AnyAgent) -> dict[str, object]:
    return {"id": agent.id, "email": agent.email, "name": agent.name, "role": agent.role}


@router.get("/tickets")
async def list_tickets(
    rt: RuntimeDep,
    agent: TicketAgent,
    status_: Annotated[list[TicketStatus] | None, Query(alias="status")] = None,
    channel: ChannelKind | None = None,
    assignee: Annotated[str | None, Query(pattern=r"^(me|none|\d+)$", description="me, none, or an agent id")] = None,
    team: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    priority: Priority | None = None,
    label: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    sla: Annotated[SlaFilter | None, Query(description="breached, or due_soon (within the hour)")] = None,
    q: Annotated[str | None, Query(max_length=200, description="words in the subject or any message")] = None,
    sort: Sort = "newest",
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> TicketPage:
    """The queue: for an agent, their teams' tickets and those without a team; supervisors and admins see all.
    Tickets merged into another show only when status=closed is asked for. Pass next_cursor back as cursor (with
    the same sort) for the next page."""
    f = QueueFilter(
        assignee=assignee,
        team=team,
        channel=channel.value if channel else None,
        statuses=[s.value for s in status_ or []],
        priority=priority.value if priority else None,
        label=label,
        sla=sla,
        q=q,
        sort=sort,
        cursor=cursor,
        limit=limit,
    )
    async with rt.transaction() as tx:
        page = await queue_page(tx.conn, settings=rt.settings, agent=agent, f=f, now=utcnow())
    return TicketPage(items=page.items, next_cursor=page.next_cursor)


@router.get("/tickets/{ref}")
async def get_ticket(ref: str, rt: RuntimeDep, agent: TicketAgent) -> TicketDetail:
    ticket_id = service.ticket_id_from(rt.settings, ref)
    async with rt.transaction() as tx:
        return await service.detail(tx.conn, rt.settings, ticket_id, agent, utcnow())


@router.post("/tickets/{ref}/replies", status_code=status.HTTP_201_CREATED)
async def reply(
    ref: str,
    payload: ReplyCreate,
    rt: RuntimeDep,
    agent: TicketAgent,
    idempotency_key: Annotated[str | None, Header(max_length=128, pattern=r"^[\x21-\x7e]+$")] = None,
) -> MessagePublic:
    """Reply on the ticket's channel, or on `channel` (another one the resident gave us an address for). The reply
    is stored and queued in one transaction, then delivered by a worker; its delivery status shows on the ticket.
    Send an Idempotency-Key header to make retries safe."""
    ticket_id = service.ticket_id_from(rt.settings, ref)
    async with rt.transaction() as tx:
        message_id = await service.reply(
            tx,
            rt.settings,
            ticket_id,
            agent,
            payload.body,
            idempotency_key=idempotency_key,
            now=utcnow(),
            on_channel=payload.channel,
        )
        detail = await service.detail(tx.conn, rt.settings, ticket_id, agent, utcnow())
    for message in detail.messages:
        if message.id == message_id:
            return message
    raise Problem(500, "The reply was stored but could not be read back.")


@router.post("/tickets/{ref}/notes", status_code=status.HTTP_201_CREATED)
async def add_note(ref: str, payload: NoteCreate, rt: RuntimeDep, agent: TicketAgent) -> dict[str, object]:
    """A private note for agents (never sent to the resident). Mention colleagues with @name (the part of their
    email before the @) or @their.email@city.ca; unknown_mentions lists names that reached nobody."""
    ticket_id = service.ticket_id_from(rt.settings, ref)
    async with rt.transaction() as tx:
        added = await service.add_note(tx, rt.settings, ticket_id, agent, payload.body, utcnow())
    return {**added.note.model_dump(mode="json"), "unknown_mentions": added.unknown_mentions}


@router.post("/tickets/{ref}/claim", status_code=status.HTTP_204_NO_CONTENT)
async def claim(ref: str, rt: RuntimeDep, agent: TicketAgent) -> Response:
    """Assign the ticket to yourself; 409 if another agent has it."""
    ticket_id = service.ticket_id_from(rt.settings, ref)
    async with rt.transaction() as tx:
        await service.claim(tx.conn, rt.settings, ticket_id, agent, utcnow())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.patch("/tickets/{ref}")
async def update_ticket(ref: str, changes: TicketUpdate, rt: RuntimeDep, agent: TicketAgent) -> TicketDetail:
    ticket_id = service.ticket_id_from(rt.settings, ref)
    async with rt.transaction() as tx:
        await service.change(tx, rt.settings, rt.templates, ticket_id, agent, changes, utcnow())
        detail = await service.detail(tx.conn, rt.settings, ticket_id, agent, utcnow())
    if changes.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED) or "assignee_id" in changes.model_fields_set:
        assign_waiting_soon(rt)  # committed: an agent may have room for a waiting ticket now
    return detail
