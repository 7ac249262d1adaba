"""Agent API for residents (contacts): their history across channels beside a ticket, and merging two contacts
that are one resident (and undoing it). HTTP only: the rules are in history.py and merge.py."""

from __future__ import annotations

from fastapi import APIRouter, status

from carehub.agents.auth import RuntimeDep, TicketAgent
from carehub.clock import utcnow
from carehub.contacts import merge
from carehub.contacts.history import ContactHistory, history
from carehub.contacts.merge import ContactMergeCreate, ContactMergePublic

router = APIRouter(prefix="/api/v1", tags=["contacts"])


@router.get("/contacts/{contact_id}")
async def get_contact(contact_id: int, rt: RuntimeDep, agent: TicketAgent) -> ContactHistory:
    """The resident's addresses (and whether we may write there) and their tickets on every channel that you may
    see, newest first. A merged contact shows merged_into_id: read that one instead."""
    async with rt.transaction() as tx:
        return await history(tx.conn, rt.settings, contact_id, agent, utcnow())


@router.post("/contacts/{contact_id}/merge", status_code=status.HTTP_201_CREATED)
async def merge_contact(
    contact_id: int, payload: ContactMergeCreate, rt: RuntimeDep, agent: TicketAgent
) -> ContactMergePublic:
    """This contact is the same resident as `into`: move its addresses and tickets there. Undo with
    POST /api/v1/contact-merges/{id}/undo."""
    async with rt.transaction() as tx:
        return await merge.merge(tx, contact_id, payload.into, agent, utcnow())


@router.post("/contact-merges/{merge_id}/undo")
async def undo_contact_merge(merge_id: int, rt: RuntimeDep, agent: TicketAgent) -> ContactMergePublic:
    async with rt.transaction() as tx:
        return await merge.undo(tx, merge_id, agent, utcnow())
