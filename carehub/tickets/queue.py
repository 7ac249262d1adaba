"""The agents' ticket queue, for the API and the console alike: one page of the tickets an agent may see, filtered,
searched (full text over subjects and message bodies), sorted, and paged by an opaque keyset cursor."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    case,
    column,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    text,
    tuple_,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub import audit
from carehub.agents.auth import CurrentAgent
from carehub.db import UTCDateTime
from carehub.models import ACTIVE_TICKET_STATUSES, Priority, TicketLabel, TicketStatus, TicketSummary
from carehub.problems import Problem
from carehub.settings import Settings
from carehub.tickets.reference import format_reference
from carehub.tickets.repository import TICKETS
from channels.base import ChannelKind

LABELS = TicketLabel.__table__  # type: ignore[attr-defined]

Sort = Literal["newest", "oldest", "updated", "due", "priority"]
SORTS: tuple[str, ...] = get_args(Sort)
SlaFilter = Literal["breached", "due_soon"]
MAX_LIMIT = 200
DUE_SOON = timedelta(hours=1)


@dataclass(frozen=True)
class QueueFilter:
    """What the agent asked for; None (or empty) leaves a filter out."""

    assignee: str | None = None  # "me", "none", or an agent id
    team: str | None = None
    channel: str | None = None
    statuses: Sequence[str] = ()
    priority: str | None = None
    label: str | None = None
    sla: SlaFilter | None = None  # breached, or due within the hour
    q: str | None = None  # full-text search over subjects and message bodies
    sort: Sort = "newest"
    cursor: str | None = None  # next_cursor of the page before
    limit: int = 50


@dataclass(frozen=True)
class QueuePage:
    items: list[TicketSummary] = field(default_factory=list)
    next_cursor: str | None = None


T = TICKETS.c
_ACTIVE = [s.value for s in ACTIVE_TICKET_STATUSES]
_FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)
_RANK = case(
    {Priority.URGENT.value: 0, Priority.HIGH.value: 1, Priority.NORMAL.value: 2, Priority.LOW.value: 3},
    value=T.priority,
    else_=4,
)
# The next SLA deadline still running: the first response's until someone answers, then the resolution's; tickets
# with none (no policy, or no longer active) go last.
_DUE = type_coerce(
    case(
        (T.status.not_in(_ACTIVE), literal(_FAR_FUTURE, UTCDateTime)),
        (
            and_(
                T.first_response_at.is_(None),
                T.first_response_due_at.is_not(None),
                or_(T.resolution_due_at.is_(None), T.first_response_due_at < T.resolution_due_at),
            ),
            T.first_response_due_at,
        ),
        else_=func.coalesce(T.resolution_due_at, literal(_FAR_FUTURE, UTCDateTime)),
    ),
    UTCDateTime,
)
# Per sort: the key columns (each of them an int or a timestamp, the last the ticket id) and whether descending.
# Ticket ids grow with creation time, so the primary key orders newest and oldest.
_SORT_KEYS: dict[str, tuple[tuple[ColumnElement[Any], ...], bool]] = {
    "newest": ((T.id,), True),
    "oldest": ((T.id,), False),
    "updated": ((T.updated_at, T.id), True),
    "due": ((_DUE, T.id), False),
    "priority": ((type_coerce(_RANK, Integer), T.id), False),
}
_TIMESTAMP_KEYS = {"updated": 0, "due": 0}


async def queue_page(
    conn: AsyncConnection, *, settings: Settings, agent: CurrentAgent, f: QueueFilter, now: datetime
) -> QueuePage:
    """One page of the queue for this agent (their teams' tickets and those without a team; supervisors and
    admins see all). Tickets merged into another are left out unless the statuses asked for include closed."""
    query = queue_query(conn.dialect.name, agent=agent, f=f, now=now)
    if conn.dialect.name == "postgresql":
        # The driver prepares statements, and after five runs PostgreSQL may keep one generic plan for every value:
        # one plan cannot suit both a search word in a few messages and one in a hundred thousand (measured 30x
        # slower), nor every team and status mix. Planning per call costs well under a millisecond.
        await conn.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    rows = list((await conn.execute(query)).all())
    page, more = rows[: f.limit], len(rows) > f.limit
    labels = await _labels_of(conn, [r.id for r in page])
    items = [
        TicketSummary.model_validate(
            {**r._mapping, "reference": format_reference(settings.ticket_prefix, r.id), "labels": labels.get(r.id, [])}
        )
        for r in page
    ]
    if f.q and f.q.strip():
        # Searching reads residents' messages: recorded like any other read.
        detail = {"q": f.q, "ticket_ids": [t.id for t in items]}
        await audit.by_agent(conn, agent.id, "search_tickets", "agent", agent.id, now, detail)
    return QueuePage(items=items, next_cursor=encode_cursor(f.sort, page[-1]) if more else None)


def queue_query(dialect: str, *, agent: CurrentAgent, f: QueueFilter, now: datetime) -> Select[Any]:
    """The page's statement (limit + 1 rows, to tell whether another page follows); the bench times it raw."""
    _check(f)
    keys, descending = _SORT_KEYS[f.sort]
    query = select(TICKETS, *(k.label(f"sort_key_{i}") for i, k in enumerate(keys[:-1])))
    conditions = _filters(agent, f, now)
    if f.q is not None and f.q.strip():
        conditions.append(_search(dialect, f.q, f.statuses))
    if f.cursor is not None:
        after = decode_cursor(f.sort, f.cursor)
        row, values = tuple_(*keys), tuple_(*(literal(v, k.type) for v, k in zip(after, keys, strict=True)))
        conditions.append(row < values if descending else row > values)
    order = [k.desc() if descending else k.asc() for k in keys]
    return query.where(*conditions).order_by(*order).limit(f.limit + 1)


def _check(f: QueueFilter) -> None:
    if f.sort not in SORTS:
        raise Problem(422, f"sort must be one of {', '.join(SORTS)}; got '{f.sort}'.")
    if not 1 <= f.limit <= MAX_LIMIT:
        raise Problem(422, f"limit must be between 1 and {MAX_LIMIT}; got {f.limit}.")
    if f.assignee is not None and not (f.assignee in ("me", "none") or f.assignee.isdigit()):
        raise Problem(422, f"assignee must be 'me', 'none' or an agent id; got '{f.assignee}'.")
    for name, value, allowed in (
        ("status", None, TicketStatus),
        ("channel", f.channel, ChannelKind),
        ("priority", f.priority, Priority),
    ):
        for v in f.statuses if name == "status" else [value]:
            if v is not None and v not in {a.value for a in allowed}:
                raise Problem(422, f"{name} must be one of {', '.join(a.value for a in allowed)}; got '{v}'.")
    if f.sla is not None and f.sla not in get_args(SlaFilter):
        raise Problem(422, f"sla must be 'breached' or 'due_soon'; got '{f.sla}'.")


def _filters(agent: CurrentAgent, f: QueueFilter, now: datetime) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if not agent.sees_every_team:
        conditions.append(or_(T.team.is_(None), T.team.in_(sorted(agent.teams))))
    if TicketStatus.CLOSED.value not in f.statuses:
        conditions.append(T.merged_into_id.is_(None))  # a merged ticket is closed, and lives on in its target
    if f.statuses:
        conditions.append(T.status.in_(sorted(set(f.statuses))))
    if f.assignee == "me":
        conditions.append(T.assignee_id == agent.id)
    elif f.assignee == "none":
        conditions.append(T.assignee_id.is_(None))
    elif f.assignee is not None:
        conditions.append(T.assignee_id == int(f.assignee))
    if f.team is not None:
        conditions.append(T.team == f.team.strip().lower())  # team names are kept in lower case
    if f.channel is not None:
        conditions.append(T.channel == f.channel)
    if f.priority is not None:
        conditions.append(T.priority == f.priority)
    if f.label is not None:
        label = " ".join(f.label.split()).lower()  # as labels are stored (carehub.tickets.labels.normalise)
        conditions.append(exists().where(LABELS.c.ticket_id == T.id, LABELS.c.label == label))
    if f.sla == "breached":
        conditions.append(or_(T.sla_breached_at.is_not(None), _overdue(now)))
    elif f.sla == "due_soon":
        soon = now + DUE_SOON
        conditions.append(
            and_(
                T.status.in_(_ACTIVE),
                T.sla_breached_at.is_(None),
                ~_overdue(now),
                or_(
                    and_(T.first_response_at.is_(None), T.first_response_due_at > now, T.first_response_due_at <= soon),
                    and_(T.resolved_at.is_(None), T.resolution_due_at > now, T.resolution_due_at <= soon),
                ),
            )
        )
    return conditions


def _overdue(now: datetime) -> ColumnElement[bool]:
    """A running SLA timer past its deadline (before the worker's sweep records the breach). Each comparison is
    guarded so that a missing deadline makes this false, not NULL (NOT NULL would drop the ticket)."""
    return and_(
        T.status.in_(_ACTIVE),
        or_(
            and_(T.first_response_at.is_(None), T.first_response_due_at.is_not(None), T.first_response_due_at <= now),
            and_(T.resolved_at.is_(None), T.resolution_due_at.is_not(None), T.resolution_due_at <= now),
        ),
    )


_ENGLISH: ColumnElement[Any] = literal_column(
    "'english'"
)  # inline, as in the indexes' expressions (a bound value would not match them)
_SEARCH_FTS = table("tickets_search_fts", column("rowid", Integer))
_WAITING_SEARCH_FTS = table("waiting_search_fts", column("rowid", Integer))  # SQLite's index of waiting tickets
_WORD = re.compile(r"\w+")


def _search(dialect: str, q: str, statuses: Sequence[str]) -> ColumnElement[bool]:
    """Tickets whose search document (subject and every message, migration 0012) holds all the words. Searching
    waiting tickets only, SQLite uses their own, much smaller index (migration 0013; PostgreSQL's planner picks its
    partial index by itself)."""
    if dialect == "postgresql":
        document: ColumnElement[Any] = literal_column("tickets.search_document")  # not a model column: never fetched
        found: ColumnElement[bool] = document.bool_op("@@")(func.websearch_to_tsquery(_ENGLISH, q))
        return found
    waiting = bool(statuses) and set(statuses) <= set(_ACTIVE)
    fts = _WAITING_SEARCH_FTS if waiting else _SEARCH_FTS
    match = literal_column(fts.name).op("MATCH")(fts5_query(q))
    within: ColumnElement[bool] = T.id.in_(select(fts.c.rowid).where(match))
    return within


def fts5_query(q: str) -> str:
    """The user's words as an FTS5 query that every one of them must match: each word is quoted, so quotes,
    parentheses and operators typed by the user are only text (never FTS5 syntax, never a syntax error)."""
    words = _WORD.findall(q)
    # No words at all (only punctuation): a phrase no document holds, so nothing matches.
    return " ".join(f'"{w}"' for w in words) if words else '""'


def encode_cursor(sort: str, row: Any) -> str:
    keys = [getattr(row, f"sort_key_{i}") for i in range(len(_SORT_KEYS[sort][0]) - 1)]
    values = [k.isoformat() if isinstance(k, datetime) else k for k in keys]
    raw = json.dumps({"s": sort, "k": [*values, row.id]}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(sort: str, cursor: str) -> list[Any]:
    """The sort key after which the next page starts; 422 for a cursor this sort did not hand out."""
    bad = Problem(422, "cursor is not one this queue handed out: pass back next_cursor unchanged, with the same sort.")
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(data, dict):
        raise bad
    if data.get("s") != sort and data.get("s") in SORTS:
        raise Problem(422, f"cursor belongs to sort '{data['s']}', not '{sort}': start again without a cursor.")
    if data.get("s") != sort or not isinstance(data.get("k"), list) or len(data["k"]) != len(_SORT_KEYS[sort][0]):
        raise bad
    values: list[Any] = []
    for i, value in enumerate(data["k"]):
        if i == _TIMESTAMP_KEYS.get(sort, -1):
            values.append(_timestamp(value, bad))
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63:
            values.append(value)
        else:
            raise bad
    return values


def _timestamp(value: object, bad: Problem) -> datetime:
    if not isinstance(value, str):
        raise bad
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise bad from None
    if parsed.tzinfo is None:
        raise bad
    return parsed.astimezone(UTC)


async def _labels_of(conn: AsyncConnection, ticket_ids: list[int]) -> dict[int, list[str]]:
    if not ticket_ids:
        return {}
    rows = await conn.execute(
        select(LABELS.c.ticket_id, LABELS.c.label).where(LABELS.c.ticket_id.in_(ticket_ids)).order_by(LABELS.c.label)
    )
    labels: dict[int, list[str]] = {}
    for r in rows:
        labels.setdefault(r.ticket_id, []).append(r.label)
    return labels
