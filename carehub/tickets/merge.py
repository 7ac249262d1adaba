"""Merging a duplicate ticket into another, and undoing it: the messages and notes that moved are recorded in
ticket_merges, so an unmerge moves back exactly those (not what arrived on the target since). Runs inside the
caller's transaction; audited on both tickets; agents are told on the live stream."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

from carehub import audit
from carehub.agents.auth import CurrentAgent
from carehub.chat import repository as chats
from carehub.chat import service as chat
from carehub.db import AnyRow, Tx
from carehub.models import Message, TicketMerge, TicketNote, TicketStatus
from carehub.problems import Problem
from carehub.realtime.events import AGENTS_TOPIC, agent_event
from carehub.settings import Settings
from carehub.tickets import repository as tickets
from carehub.tickets import service
from carehub.tickets.reference import format_reference

MERGES = TicketMerge.__table__  # type: ignore[attr-defined]
MESSAGES = Message.__table__  # type: ignore[attr-defined]
NOTES = TicketNote.__table__  # type: ignore[attr-defined]


class MergeCreate(SQLModel):
    into: str  # the reference of the ticket to keep, e.g. PKR-000123


class TicketMergePublic(SQLModel):
    id: int
    source: str  # the reference of the ticket merged away (closed while merged)
    target: str  # the reference of the ticket kept
    message_ids: list[int]
    note_ids: list[int]
    source_status: TicketStatus  # what an unmerge gives the source back
    merged_by: int
    merged_at: datetime
    unmerged_by: int | None
    unmerged_at: datetime | None


def public(settings: Settings, row: AnyRow) -> TicketMergePublic:
    return TicketMergePublic.model_validate(
        {
            **row._mapping,
            "source": format_reference(settings.ticket_prefix, row.source_ticket_id),
            "target": format_reference(settings.ticket_prefix, row.target_ticket_id),
        }
    )


async def merge(
    tx: Tx, settings: Settings, source_id: int, target_id: int, agent: CurrentAgent, now: datetime
) -> TicketMergePublic:
    """Move the source's messages and notes to the target and close the source (merged_into_id: the target).
    The target keeps its own reply address, status and team."""
    conn = tx.conn
    source = await service.load(conn, settings, source_id, agent)
    target = await service.load(conn, settings, target_id, agent)
    src_ref, dst_ref = (format_reference(settings.ticket_prefix, t) for t in (source_id, target_id))
    if source_id == target_id:
        raise Problem(422, f"{src_ref} cannot be merged into itself.")
    if source.merged_into_id is not None:
        into = format_reference(settings.ticket_prefix, source.merged_into_id)
        raise Problem(409, f"{src_ref} is already merged into {into}; unmerge it first to merge it elsewhere.")
    if target.merged_into_id is not None:
        into = format_reference(settings.ticket_prefix, target.merged_into_id)
        raise Problem(409, f"{dst_ref} was itself merged into {into}: merge into {into} instead.")
    conversation = await chats.latest_for_ticket(conn, source_id)
    if conversation is not None and chat.is_open(conversation):
        raise Problem(
            409,
            f"{src_ref} is a web chat the resident still has open: what they write next would land on a closed "
            f"ticket. End the chat first (resolve {src_ref}), or merge {dst_ref} into {src_ref} instead.",
        )
    message_ids = await _ids(conn, MESSAGES, source_id)
    note_ids = await _ids(conn, NOTES, source_id)
    await _move(conn, MESSAGES, message_ids, source_id, target_id)
    await _move(conn, NOTES, note_ids, source_id, target_id)
    row = (
        await conn.execute(
            insert(MERGES)
            .values(
                source_ticket_id=source_id,
                target_ticket_id=target_id,
                message_ids=message_ids,
                note_ids=note_ids,
                source_status=source.status,
                merged_by=agent.id,
                merged_at=now,
            )
            .returning(*MERGES.c)
        )
    ).one()
    # resolved_at is left as it was, so an unmerge restores the source exactly.
    await tickets.update_ticket(
        conn, source_id, {"status": TicketStatus.CLOSED.value, "merged_into_id": target_id, "updated_at": now}
    )
    await tickets.update_ticket(conn, target_id, {"updated_at": now})
    detail = {"merge_id": row.id, "source": src_ref, "target": dst_ref, "messages": len(message_ids)}
    await audit.agent_on_ticket(conn, agent.id, "merge", source_id, now, detail)
    await audit.agent_on_ticket(conn, agent.id, "merge", target_id, now, detail)
    _stage_events(tx, "ticket.merged", row.id, source_id, target_id, src_ref, dst_ref)
    return public(settings, row)


async def unmerge(tx: Tx, settings: Settings, merge_id: int, agent: CurrentAgent, now: datetime) -> TicketMergePublic:
    """Move back exactly the messages and notes the merge moved, and give the source its status back."""
    conn = tx.conn
    row = (await conn.execute(select(MERGES).where(MERGES.c.id == merge_id))).one_or_none()
    if row is None:
        raise Problem(404, f"There is no ticket merge {merge_id}.")
    source_id, target_id = row.source_ticket_id, row.target_ticket_id
    await service.load(conn, settings, source_id, agent)
    target = await service.load(conn, settings, target_id, agent)
    src_ref, dst_ref = (format_reference(settings.ticket_prefix, t) for t in (source_id, target_id))
    if row.unmerged_at is not None:
        raise Problem(409, f"The merge of {src_ref} into {dst_ref} was already undone ({row.unmerged_at:%Y-%m-%d}).")
    if target.merged_into_id is not None:
        into = format_reference(settings.ticket_prefix, target.merged_into_id)
        raise Problem(409, f"{dst_ref} has since been merged into {into}: undo that merge first.")
    await _move(conn, MESSAGES, row.message_ids, target_id, source_id)
    await _move(conn, NOTES, row.note_ids, target_id, source_id)
    await tickets.update_ticket(
        conn, source_id, {"status": row.source_status, "merged_into_id": None, "updated_at": now}
    )
    await tickets.update_ticket(conn, target_id, {"updated_at": now})
    undone = (
        await conn.execute(
            update(MERGES)
            .where(MERGES.c.id == merge_id, MERGES.c.unmerged_at.is_(None))
            .values(unmerged_by=agent.id, unmerged_at=now)
            .returning(*MERGES.c)
        )
    ).one_or_none()
    if undone is None:  # another agent undid it in the meantime: roll all of this back
        raise Problem(409, f"The merge of {src_ref} into {dst_ref} was already undone.")
    detail = {"merge_id": merge_id, "source": src_ref, "target": dst_ref}
    await audit.agent_on_ticket(conn, agent.id, "unmerge", source_id, now, detail)
    await audit.agent_on_ticket(conn, agent.id, "unmerge", target_id, now, detail)
    _stage_events(tx, "ticket.unmerged", merge_id, source_id, target_id, src_ref, dst_ref)
    return public(settings, undone)


async def current_merge_of(conn: AsyncConnection, settings: Settings, source_id: int) -> int:
    """The id of the merge (not undone) that merged this ticket away; 409 if it is not merged."""
    found = (
        await conn.execute(
            select(MERGES.c.id)
            .where(MERGES.c.source_ticket_id == source_id, MERGES.c.unmerged_at.is_(None))
            .order_by(MERGES.c.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if found is None:
        raise Problem(409, f"{format_reference(settings.ticket_prefix, source_id)} is not merged into another ticket.")
    return int(found)


async def merges_of(conn: AsyncConnection, settings: Settings, ticket_id: int) -> list[TicketMergePublic]:
    """Every merge this ticket took part in (either side), oldest first."""
    rows = await conn.execute(
        select(MERGES)
        .where((MERGES.c.source_ticket_id == ticket_id) | (MERGES.c.target_ticket_id == ticket_id))
        .order_by(MERGES.c.id)
    )
    return [public(settings, r) for r in rows]


async def _ids(conn: AsyncConnection, table: Table, ticket_id: int) -> list[int]:
    rows = await conn.execute(select(table.c.id).where(table.c.ticket_id == ticket_id).order_by(table.c.id))
    return [int(r.id) for r in rows]


async def _move(conn: AsyncConnection, table: Table, ids: list[int], from_ticket: int, to_ticket: int) -> None:
    if ids:
        await conn.execute(
            update(table).where(table.c.id.in_(ids), table.c.ticket_id == from_ticket).values(ticket_id=to_ticket)
        )


def _stage_events(tx: Tx, kind: str, merge_id: int, source_id: int, target_id: int, src_ref: str, dst_ref: str) -> None:
    # One event per ticket: each is shown to the agents who may see that ticket.
    for ticket_id, reference in ((source_id, src_ref), (target_id, dst_ref)):
        tx.staged_events.append(
            (
                AGENTS_TOPIC,
                agent_event(
                    kind, ticket_id=ticket_id, reference=reference, merge_id=merge_id, source=src_ref, target=dst_ref
                ),
            )
        )
