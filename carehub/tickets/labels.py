"""Labels on tickets: free-form tags agents add (lower case, at most MAX_PER_TICKET), and the labels in use, for
the console's autocomplete. Runs inside the caller's transaction; every change is audited and told to agents."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from datetime import datetime

from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub import audit
from carehub.agents.auth import CurrentAgent
from carehub.db import Tx
from carehub.models import Ticket, TicketLabel
from carehub.problems import Problem
from carehub.realtime.events import AGENTS_TOPIC, agent_event
from carehub.settings import Settings
from carehub.tickets import repository as tickets
from carehub.tickets import service as ticket_service  # circular (service fills labels): used at call time only
from carehub.tickets.reference import format_reference

LABELS = TicketLabel.__table__  # type: ignore[attr-defined]
TICKETS = Ticket.__table__  # type: ignore[attr-defined]

MAX_PER_TICKET = 20
MAX_CHARS = 64
# Letters (any language), digits, '-', '_' and spaces: what reads well as a tag and is safe in a URL path segment.
_LABEL = re.compile(r"^[\w\- ]+$")


def normalise(label: str) -> str:
    """The stored form: lower case, surrounding spaces removed, runs of spaces made one. 422 if not a label."""
    value = " ".join(label.split()).lower()
    if not 1 <= len(value) <= MAX_CHARS or not _LABEL.match(value):
        raise Problem(
            422,
            f"'{label[:80]}' is not a label: use 1 to {MAX_CHARS} letters, digits, '-', '_' or spaces.",
        )
    return value


async def of(conn: AsyncConnection, ticket_id: int) -> list[str]:
    rows = await conn.execute(select(LABELS.c.label).where(LABELS.c.ticket_id == ticket_id).order_by(LABELS.c.label))
    return [r.label for r in rows]


async def of_many(conn: AsyncConnection, ticket_ids: Collection[int]) -> dict[int, list[str]]:
    """Labels per ticket for a page of tickets, in one query."""
    found: dict[int, list[str]] = {t: [] for t in ticket_ids}
    if ticket_ids:
        rows = await conn.execute(
            select(LABELS.c.ticket_id, LABELS.c.label)
            .where(LABELS.c.ticket_id.in_(sorted(ticket_ids)))
            .order_by(LABELS.c.ticket_id, LABELS.c.label)
        )
        for r in rows:
            found[r.ticket_id].append(r.label)
    return found


async def replace(
    tx: Tx, settings: Settings, ticket_id: int, agent: CurrentAgent, labels: Iterable[str], now: datetime
) -> list[str]:
    """Make the ticket's labels exactly these; returns them, sorted."""
    wanted = {normalise(label) for label in labels}
    _check_count(wanted)
    await ticket_service.load(tx.conn, settings, ticket_id, agent)
    return await _apply(tx, settings, ticket_id, agent, wanted, now)


async def add(tx: Tx, settings: Settings, ticket_id: int, agent: CurrentAgent, label: str, now: datetime) -> list[str]:
    value = normalise(label)
    await ticket_service.load(tx.conn, settings, ticket_id, agent)
    current = set(await of(tx.conn, ticket_id))
    _check_count(current | {value})
    return await _apply(tx, settings, ticket_id, agent, current | {value}, now)


async def remove(
    tx: Tx, settings: Settings, ticket_id: int, agent: CurrentAgent, label: str, now: datetime
) -> list[str]:
    """Take a label off (nothing happens if the ticket does not have it)."""
    value = " ".join(label.split()).lower()
    await ticket_service.load(tx.conn, settings, ticket_id, agent)
    current = set(await of(tx.conn, ticket_id))
    return await _apply(tx, settings, ticket_id, agent, current - {value}, now)


async def in_use(conn: AsyncConnection, agent: CurrentAgent, prefix: str | None, limit: int) -> list[tuple[str, int]]:
    """(label, number of tickets) for labels on tickets this agent may see, most used first: autocomplete."""
    count = func.count().label("tickets")
    query = (
        select(LABELS.c.label, count)
        .join(TICKETS, TICKETS.c.id == LABELS.c.ticket_id)
        .group_by(LABELS.c.label)
        .order_by(count.desc(), LABELS.c.label)
        .limit(limit)
    )
    if prefix:
        # Labels are stored in lower case; escape LIKE's wildcards so "50%" matches only itself.
        escaped = prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(LABELS.c.label.like(escaped + "%", escape="\\"))
    if not agent.sees_every_team:
        query = query.where(or_(TICKETS.c.team.is_(None), TICKETS.c.team.in_(sorted(agent.teams))))
    return [(r.label, int(r.tickets)) for r in await conn.execute(query)]


def _check_count(labels: Collection[str]) -> None:
    if len(labels) > MAX_PER_TICKET:
        raise Problem(422, f"A ticket can have at most {MAX_PER_TICKET} labels; this would give it {len(labels)}.")


async def _apply(
    tx: Tx, settings: Settings, ticket_id: int, agent: CurrentAgent, wanted: set[str], now: datetime
) -> list[str]:
    conn = tx.conn
    current = set(await of(conn, ticket_id))
    added, removed = sorted(wanted - current), sorted(current - wanted)
    if not added and not removed:
        return sorted(current)
    if removed:
        await conn.execute(delete(LABELS).where(LABELS.c.ticket_id == ticket_id, LABELS.c.label.in_(removed)))
    if added:
        await conn.execute(insert(LABELS), [{"ticket_id": ticket_id, "label": label} for label in added])
    await tickets.update_ticket(conn, ticket_id, {"updated_at": now})
    await audit.agent_on_ticket(conn, agent.id, "labels", ticket_id, now, {"added": added, "removed": removed})
    labels = sorted(wanted)
    tx.staged_events.append(
        (
            AGENTS_TOPIC,
            agent_event(
                "ticket.updated",
                ticket_id=ticket_id,
                reference=format_reference(settings.ticket_prefix, ticket_id),
                labels=labels,
            ),
        )
    )
    return labels
