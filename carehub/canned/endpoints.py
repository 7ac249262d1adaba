"""Canned responses over the agent API: everyone working tickets lists them (their teams' and everyone's) and
fills one in for a ticket; supervisors and admins write them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy import delete, insert, or_, select, update
from sqlmodel import Field, SQLModel

from carehub import audit
from carehub.agents.auth import CurrentAgent, RuntimeDep, TicketAgent, require_role
from carehub.canned.render import UnknownPlaceholder, check, render
from carehub.clock import utcnow
from carehub.db import AnyRow
from carehub.models import CannedResponse, Contact, Role
from carehub.problems import Problem
from carehub.tickets import service as tickets
from carehub.tickets.reference import format_reference

router = APIRouter(prefix="/api/v1", tags=["canned responses"])
Writer = Annotated[CurrentAgent, Depends(require_role(Role.SUPERVISOR, Role.ADMIN))]
CANNED = CannedResponse.__table__  # type: ignore[attr-defined]
CONTACTS = Contact.__table__  # type: ignore[attr-defined]


class CannedCreate(SQLModel):
    title: str = Field(min_length=1, max_length=100)
    language: str = Field(default="en", min_length=2, max_length=8)
    team: str | None = Field(default=None, min_length=1, max_length=64)
    body: str = Field(min_length=1, max_length=20_000)


class CannedUpdate(SQLModel):
    title: str | None = Field(default=None, min_length=1, max_length=100)
    body: str | None = Field(default=None, min_length=1, max_length=20_000)


class CannedPublic(SQLModel):
    id: int
    title: str
    language: str
    team: str | None
    body: str
    updated_at: datetime


class CannedFilled(SQLModel):
    canned_id: int  # the version used: the ticket's language if there is one, else the one asked for
    language: str
    body: str


async def _get(rt: RuntimeDep, canned_id: int, agent: CurrentAgent) -> AnyRow:
    async with rt.transaction() as tx:
        row = (await tx.conn.execute(select(CANNED).where(CANNED.c.id == canned_id))).one_or_none()
    if row is None or not agent.can_see(row.team):
        raise Problem(404, f"There is no canned response {canned_id} for your teams.")
    return row


@router.get("/canned-responses")
async def list_canned(
    rt: RuntimeDep, agent: TicketAgent, language: Annotated[str | None, Query(max_length=8)] = None
) -> list[CannedPublic]:
    """Everyone's and your teams' canned responses (supervisors and admins: all), by title and language."""
    query = select(CANNED).order_by(CANNED.c.title, CANNED.c.language, CANNED.c.id)
    if language:
        query = query.where(CANNED.c.language == language)
    if not agent.sees_every_team:
        query = query.where(or_(CANNED.c.team.is_(None), CANNED.c.team.in_(sorted(agent.teams))))
    async with rt.transaction() as tx:
        rows = (await tx.conn.execute(query)).all()
    return [CannedPublic.model_validate(r._mapping) for r in rows]


@router.post("/canned-responses", status_code=status.HTTP_201_CREATED)
async def create_canned(payload: CannedCreate, rt: RuntimeDep, agent: Writer) -> CannedPublic:
    try:
        check(payload.body)
    except UnknownPlaceholder as exc:
        raise Problem(422, f"The body has an {exc}.") from None
    team = payload.team.strip().lower() if payload.team else None
    now = utcnow()
    async with rt.transaction() as tx:
        same = select(CANNED.c.id).where(
            CANNED.c.title == payload.title,
            CANNED.c.language == payload.language,
            CANNED.c.team.is_(None) if team is None else CANNED.c.team == team,
        )
        if (await tx.conn.execute(same)).first() is not None:
            raise Problem(409, f"A canned response '{payload.title}' in {payload.language} exists for that team.")
        row = (
            await tx.conn.execute(
                insert(CANNED)
                .values(
                    title=payload.title,
                    language=payload.language,
                    team=team,
                    body=payload.body,
                    created_by=agent.id,
                    created_at=now,
                    updated_at=now,
                )
                .returning(*CANNED.c)
            )
        ).one()
        await audit.by_agent(tx.conn, agent.id, "create", "canned", row.id, now)
    return CannedPublic.model_validate(row._mapping)


@router.patch("/canned-responses/{canned_id}")
async def update_canned(canned_id: int, changes: CannedUpdate, rt: RuntimeDep, agent: Writer) -> CannedPublic:
    values = changes.model_dump(exclude_unset=True, exclude_none=True)
    if not values:
        raise Problem(422, "Nothing to change: send title and/or body.")
    if "body" in values:
        try:
            check(values["body"])
        except UnknownPlaceholder as exc:
            raise Problem(422, f"The body has an {exc}.") from None
    await _get(rt, canned_id, agent)
    now = utcnow()
    async with rt.transaction() as tx:
        row = (
            await tx.conn.execute(
                update(CANNED).where(CANNED.c.id == canned_id).values(**values, updated_at=now).returning(*CANNED.c)
            )
        ).one()
        await audit.by_agent(tx.conn, agent.id, "update", "canned", canned_id, now)
    return CannedPublic.model_validate(row._mapping)


@router.delete("/canned-responses/{canned_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_canned(canned_id: int, rt: RuntimeDep, agent: Writer) -> Response:
    await _get(rt, canned_id, agent)
    async with rt.transaction() as tx:
        await tx.conn.execute(delete(CANNED).where(CANNED.c.id == canned_id))
        await audit.by_agent(tx.conn, agent.id, "delete", "canned", canned_id, utcnow())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/tickets/{ref}/canned/{canned_id}")
async def fill_in(ref: str, canned_id: int, rt: RuntimeDep, agent: TicketAgent) -> CannedFilled:
    """The canned response filled in for this ticket, in the resident's language when it has that version (same
    title and team): what the console puts in the reply box, for the agent to read, adjust and send."""
    chosen = await _get(rt, canned_id, agent)
    ticket_id = tickets.ticket_id_from(rt.settings, ref)
    async with rt.transaction() as tx:
        ticket = await tickets.load(tx.conn, rt.settings, ticket_id, agent)
        contact = (await tx.conn.execute(select(CONTACTS).where(CONTACTS.c.id == ticket.contact_id))).one()
        if contact.language != chosen.language:
            same_reply = select(CANNED).where(
                CANNED.c.title == chosen.title,
                CANNED.c.language == contact.language,
                CANNED.c.team.is_(None) if chosen.team is None else CANNED.c.team == chosen.team,
            )
            chosen = (await tx.conn.execute(same_reply)).first() or chosen
    values = {
        "contact_name": contact.display_name,
        "reference": format_reference(rt.settings.ticket_prefix, ticket_id),
        "agent_name": agent.name,
        "city_name": rt.settings.city_name,
    }
    return CannedFilled(canned_id=chosen.id, language=chosen.language, body=render(chosen.body, values))
