"""search waiting tickets: a second search index over only the tickets still waiting (new, open, pending), the
queue's default view.

Why: a common word's posting list in the full index covers a hundred thousand tickets, and intersecting it with
the status index costs tens of milliseconds; the waiting tickets are a few percent of all, so their own index
answers the everyday search from lists fifty times shorter. PostgreSQL: a partial GIN index (the planner picks it
when a query's statuses imply the predicate). SQLite: FTS5 has no partial index, so a second FTS5 table,
waiting_search_fts, holds the documents of waiting tickets, kept by triggers on status, subject and messages; the
queue searches it when every status it asks for is a waiting one.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 00:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# The predicate must be the very list the queue filters by (carehub.models.ACTIVE_TICKET_STATUSES), so PostgreSQL
# can prove a query implies it.
WAITING = "('new', 'open', 'pending')"


def _document(ticket: str) -> str:
    """A ticket's document, as migration 0012 builds it: its subject, then every message."""
    return (
        f"(SELECT coalesce(subject, '') FROM tickets WHERE id = {ticket}) || "
        f"coalesce((SELECT ' ' || group_concat(body, ' ') FROM messages WHERE ticket_id = {ticket}), '')"
    )


def _rebuild(ticket: str) -> str:
    return f"UPDATE waiting_search_fts SET document = {_document(ticket)} WHERE rowid = {ticket};"


_SQLITE = [
    "CREATE VIRTUAL TABLE waiting_search_fts USING fts5(document, tokenize='porter unicode61 remove_diacritics 2')",
    "INSERT INTO waiting_search_fts(rowid, document) SELECT s.rowid, s.document FROM tickets_search_fts AS s "
    f"JOIN tickets AS t ON t.id = s.rowid WHERE t.status IN {WAITING}",
    # A ticket starts waiting (status new); it leaves and comes back with its status.
    "CREATE TRIGGER waiting_search_fts_ticket_insert AFTER INSERT ON tickets "
    f"WHEN new.status IN {WAITING} BEGIN "
    "INSERT INTO waiting_search_fts(rowid, document) VALUES (new.id, coalesce(new.subject, '')); END",
    "CREATE TRIGGER waiting_search_fts_leaves AFTER UPDATE OF status ON tickets "
    f"WHEN old.status IN {WAITING} AND new.status NOT IN {WAITING} BEGIN "
    "DELETE FROM waiting_search_fts WHERE rowid = old.id; END",
    "CREATE TRIGGER waiting_search_fts_returns AFTER UPDATE OF status ON tickets "
    f"WHEN old.status NOT IN {WAITING} AND new.status IN {WAITING} BEGIN "
    f"INSERT INTO waiting_search_fts(rowid, document) VALUES (new.id, {_document('new.id')}); END",
    f"CREATE TRIGGER waiting_search_fts_subject AFTER UPDATE OF subject ON tickets BEGIN {_rebuild('new.id')} END",
    "CREATE TRIGGER waiting_search_fts_ticket_delete AFTER DELETE ON tickets BEGIN "
    "DELETE FROM waiting_search_fts WHERE rowid = old.id; END",
    "CREATE TRIGGER waiting_search_fts_message_insert AFTER INSERT ON messages BEGIN "
    "UPDATE waiting_search_fts SET document = document || ' ' || new.body WHERE rowid = new.ticket_id; END",
    "CREATE TRIGGER waiting_search_fts_message_update AFTER UPDATE OF ticket_id, body ON messages BEGIN "
    f"{_rebuild('old.ticket_id')} {_rebuild('new.ticket_id')} END",
    f"CREATE TRIGGER waiting_search_fts_message_delete AFTER DELETE ON messages BEGIN {_rebuild('old.ticket_id')} END",
]
_SQLITE_TRIGGERS = (
    "ticket_insert",
    "leaves",
    "returns",
    "subject",
    "ticket_delete",
    "message_insert",
    "message_update",
    "message_delete",
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE INDEX ix_tickets_waiting_search ON tickets USING gin (search_document) WHERE status IN {WAITING}"
        )
        return
    for statement in _SQLITE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_tickets_waiting_search")
        return
    for trigger in _SQLITE_TRIGGERS:
        op.execute(f"DROP TRIGGER waiting_search_fts_{trigger}")
    op.execute("DROP TABLE waiting_search_fts")
