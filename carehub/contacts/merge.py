"""Merging two contacts an agent knows are one resident (never by guess), and undoing it. The addresses and
tickets that moved are recorded in contact_merges, so an undo moves back exactly those. Because inbound messages
find their contact by address, a resident writing from a moved address reaches the kept contact while merged,
and their own contact again once undone. Runs inside the caller's transaction; audited on both contacts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

from carehub import audit
from carehub.agents.auth import CurrentAgent
from carehub.contacts.history import ADDRESSES, CONTACTS, TICKETS, visible_contact
from carehub.db import AnyRow, Tx
from carehub.models import ContactMerge
from carehub.problems import Problem

MERGES = ContactMerge.__table__  # type: ignore[attr-defined]


class ContactMergeCreate(SQLModel):
    into: int  # the id of the contact to keep


class ContactMergePublic(SQLModel):
    id: int
    kept_contact_id: int
    merged_contact_id: int
    address_ids: list[int]
    ticket_ids: list[int]
    merged_by: int
    merged_at: datetime
    unmerged_by: int | None
    unmerged_at: datetime | None


async def merge(tx: Tx, merged_id: int, kept_id: int, agent: CurrentAgent, now: datetime) -> ContactMergePublic:
    """Move every address and ticket of merged_id to kept_id; merged_id stays, empty, pointing at kept_id."""
    conn = tx.conn
    if merged_id == kept_id:
        raise Problem(422, f"Contact {merged_id} cannot be merged into itself.")
    merged = await visible_contact(conn, merged_id, agent)
    kept = await visible_contact(conn, kept_id, agent)
    for row in (merged, kept):
        if row.merged_into_id is not None:
            raise Problem(
                409,
                f"Contact {row.id} is already merged into contact {row.merged_into_id}; "
                f"use contact {row.merged_into_id} (or undo that merge first).",
            )
    address_ids = await _ids(conn, ADDRESSES.c.id, ADDRESSES.c.contact_id == merged_id)
    ticket_ids = await _ids(conn, TICKETS.c.id, TICKETS.c.contact_id == merged_id)
    if address_ids:
        await conn.execute(update(ADDRESSES).where(ADDRESSES.c.id.in_(address_ids)).values(contact_id=kept_id))
    if ticket_ids:
        await conn.execute(update(TICKETS).where(TICKETS.c.id.in_(ticket_ids)).values(contact_id=kept_id))
    await conn.execute(update(CONTACTS).where(CONTACTS.c.id == merged_id).values(merged_into_id=kept_id))
    row = (
        await conn.execute(
            MERGES.insert()
            .values(
                kept_contact_id=kept_id,
                merged_contact_id=merged_id,
                address_ids=address_ids,
                ticket_ids=ticket_ids,
                merged_by=agent.id,
                merged_at=now,
            )
            .returning(*MERGES.c)
        )
    ).one()
    detail = {"merge_id": row.id, "kept": kept_id, "merged": merged_id, "tickets": ticket_ids}
    await audit.by_agent(conn, agent.id, "merge", "contact", merged_id, now, detail)
    await audit.by_agent(conn, agent.id, "merge", "contact", kept_id, now, detail)
    return ContactMergePublic.model_validate(row._mapping)


async def undo(tx: Tx, merge_id: int, agent: CurrentAgent, now: datetime) -> ContactMergePublic:
    """Give the merged contact back its addresses and tickets. A ticket opened meanwhile from one of its
    addresses goes back with that address (its replies go there, so it is that resident's)."""
    conn = tx.conn
    row = await _merge_row(conn, merge_id)
    kept_id, merged_id = row.kept_contact_id, row.merged_contact_id
    kept = await visible_contact(conn, kept_id, agent)
    if row.unmerged_at is not None:
        raise Problem(409, f"The merge of contact {merged_id} into {kept_id} was already undone.")
    if kept.merged_into_id is not None:
        raise Problem(409, f"Contact {kept_id} has since been merged into {kept.merged_into_id}: undo that first.")
    address_ids, ticket_ids = list(row.address_ids), list(row.ticket_ids)
    going_back = await _ids(
        conn,
        TICKETS.c.id,
        TICKETS.c.contact_id == kept_id,
        or_(TICKETS.c.id.in_(ticket_ids), TICKETS.c.address_id.in_(address_ids)),
    )
    if address_ids:
        await conn.execute(
            update(ADDRESSES)
            .where(ADDRESSES.c.id.in_(address_ids), ADDRESSES.c.contact_id == kept_id)
            .values(contact_id=merged_id)
        )
    if going_back:
        await conn.execute(update(TICKETS).where(TICKETS.c.id.in_(going_back)).values(contact_id=merged_id))
    await conn.execute(update(CONTACTS).where(CONTACTS.c.id == merged_id).values(merged_into_id=None))
    undone = (
        await conn.execute(
            update(MERGES)
            .where(MERGES.c.id == merge_id, MERGES.c.unmerged_at.is_(None))
            .values(unmerged_by=agent.id, unmerged_at=now)
            .returning(*MERGES.c)
        )
    ).one_or_none()
    if undone is None:  # undone by someone else meanwhile: the caller rolls all of this back
        raise Problem(409, f"The merge of contact {merged_id} into {kept_id} was already undone.")
    detail = {"merge_id": merge_id, "kept": kept_id, "merged": merged_id, "tickets": going_back}
    await audit.by_agent(conn, agent.id, "unmerge", "contact", merged_id, now, detail)
    await audit.by_agent(conn, agent.id, "unmerge", "contact", kept_id, now, detail)
    return ContactMergePublic.model_validate(undone._mapping)


async def _merge_row(conn: AsyncConnection, merge_id: int) -> AnyRow:
    row = (await conn.execute(select(MERGES).where(MERGES.c.id == merge_id))).one_or_none()
    if row is None:
        raise Problem(404, f"There is no contact merge {merge_id}.")
    return row


async def _ids(conn: AsyncConnection, column: ColumnElement[int], *where: ColumnElement[bool]) -> list[int]:
    rows = await conn.execute(select(column).where(*where).order_by(column))
    return [int(r[0]) for r in rows]
