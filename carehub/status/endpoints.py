"""Agent API for a ticket's status links: revoke them all (a link was forwarded, or the resident asks), and issue
a fresh one to give the resident by another way. HTTP only: the rules are in links.py; both are audited."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status
from sqlmodel import SQLModel

from carehub import audit
from carehub.agents.auth import RuntimeDep, TicketAgent
from carehub.clock import utcnow
from carehub.status import links
from carehub.tickets import service as tickets

router = APIRouter(prefix="/api/v1", tags=["status links"])


class StatusLinksRevoked(SQLModel):
    revoked: int  # how many live links the ticket had


class StatusLinkIssued(SQLModel):
    url: str  # shown once: only its hash is kept
    expires_at: datetime


@router.post("/tickets/{ref}/status-links/revoke")
async def revoke_status_links(ref: str, rt: RuntimeDep, agent: TicketAgent) -> StatusLinksRevoked:
    """End every live status link of the ticket: they open only the "link does not work" page from now on."""
    ticket_id = tickets.ticket_id_from(rt.settings, ref)
    now = utcnow()
    async with rt.transaction() as tx:
        await tickets.load(tx.conn, rt.settings, ticket_id, agent)
        revoked = await links.revoke_all(tx.conn, ticket_id, agent.id, now)
        await audit.agent_on_ticket(tx.conn, agent.id, "revoke_status_links", ticket_id, now, {"link_ids": revoked})
    return StatusLinksRevoked(revoked=len(revoked))


@router.post("/tickets/{ref}/status-links", status_code=status.HTTP_201_CREATED)
async def issue_status_link(ref: str, rt: RuntimeDep, agent: TicketAgent) -> StatusLinkIssued:
    """A new status link for the ticket (the URL is in this answer only)."""
    ticket_id = tickets.ticket_id_from(rt.settings, ref)
    now = utcnow()
    async with rt.transaction() as tx:
        await tickets.load(tx.conn, rt.settings, ticket_id, agent)
        issued = await links.issue(tx.conn, rt.settings, ticket_id, now)
        await audit.agent_on_ticket(tx.conn, agent.id, "issue_status_link", ticket_id, now, {"link_id": issued.id})
    return StatusLinkIssued(url=issued.url, expires_at=links.expiry(rt.settings, now))
