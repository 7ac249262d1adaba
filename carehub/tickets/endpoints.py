"""Agent API for tickets (/api/v1/tickets): list, read with messages and delivery status, reply, claim, update."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from carehub.agents.auth import AnyAgent, RuntimeDep, TicketAgent
from carehub.clock import utcnow
from carehub.models import (
    MessagePublic,
    NoteCreate,
    ReplyCreate,
    TicketDetail,
    TicketPage,
    TicketStatus,
    TicketUpdate,
)
from carehub.problems import Problem
from carehub.tickets import repository, service
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
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,12}$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> TicketPage:
    """Newest first: for an agent, their teams' tickets and those without a team; supervisors and admins see
    all. Pass next_cursor back as cursor for the next page."""
    assignee_id = agent.id if assignee == "me" else int(assignee) if assignee and assignee.isdigit() else None
    async with rt.transaction() as tx:
        rows = await repository.list_tickets(
            tx.conn,
            statuses=[s.value for s in status_] if status_ else None,
            channel=channel.value if channel else None,
            assignee_id=assignee_id,
            unassigned=assignee == "none",
            before_id=int(cursor) if cursor else None,
            limit=limit + 1,
            teams=None if agent.sees_every_team else agent.teams,
        )
    items = [service.summary(rt.settings, r) for r in rows[:limit]]
    return TicketPage(items=items, next_cursor=str(items[-1].id) if len(rows) > limit else None)


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
    """Reply on the ticket's channel. The reply is stored and queued in one transaction, then delivered by a
    worker; its delivery status shows on the ticket. Send an Idempotency-Key header to make retries safe."""
    ticket_id = service.ticket_id_from(rt.settings, ref)
    async with rt.transaction() as tx:
        message_id = await service.reply(
            tx, rt.settings, ticket_id, agent, payload.body, idempotency_key=idempotency_key, now=utcnow()
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
        return await service.detail(tx.conn, rt.settings, ticket_id, agent, utcnow())
