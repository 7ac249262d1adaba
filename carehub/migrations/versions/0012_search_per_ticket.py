"""search per ticket: one search document per ticket (its subject and every message), replacing 0011's indexes
over each message.

Why: a common word ("pothole") is in a hundred thousand messages; finding which tickets they belong to meant
reading every one of them (seconds on 5M messages). Searched per ticket, the index yields ticket ids directly, and
PostgreSQL can AND it with the status index (bitmap AND) or walk the newest tickets checking each one's document.
It also lets the words of a query match across a ticket's messages.

- PostgreSQL: tickets.search_document (tsvector, outside the models so queries never fetch it), a GIN index, kept
  by triggers: a new message appends its words; a moved, changed or deleted message, or a new subject, rebuilds
  the ticket's document. carehub_rebuild_search() rebuilds every document (bulk loads run with triggers off).
- SQLite: an FTS5 table tickets_search_fts (rowid = ticket id) kept by the same triggers.
CAUTION: a later SQLite batch migration that recreates messages or tickets drops these triggers; it must call
_create_search() again.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 23:40:00
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# The document of ticket `tid` with subject `subj`: every message's words, in order.
_PG = [
    r"""
ALTER TABLE tickets ADD COLUMN search_document tsvector
""",
    r"""
CREATE FUNCTION carehub_ticket_document(subj text, tid integer) RETURNS tsvector LANGUAGE sql STABLE AS $$
  SELECT to_tsvector('english', coalesce(subj, '') || ' ' ||
         coalesce((SELECT string_agg(body, ' ' ORDER BY id) FROM messages WHERE ticket_id = tid), ''))
$$
""",
    r"""
CREATE FUNCTION carehub_rebuild_search() RETURNS bigint LANGUAGE sql AS $$
  WITH bodies AS (SELECT ticket_id, string_agg(body, ' ' ORDER BY id) AS text FROM messages GROUP BY ticket_id),
  done AS (
    UPDATE tickets AS t
       SET search_document = to_tsvector('english', coalesce(t.subject, '') || ' ' || coalesce(b.text, ''))
      FROM tickets AS t2 LEFT JOIN bodies AS b ON b.ticket_id = t2.id
     WHERE t2.id = t.id
    RETURNING 1)
  SELECT count(*) FROM done
$$
""",
    r"""
CREATE FUNCTION carehub_search_on_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    UPDATE tickets SET search_document = coalesce(search_document, ''::tsvector) || to_tsvector('english', NEW.body)
     WHERE id = NEW.ticket_id;
    RETURN NULL;
  END IF;
  UPDATE tickets SET search_document = carehub_ticket_document(subject, id) WHERE id = OLD.ticket_id;
  IF TG_OP = 'UPDATE' AND NEW.ticket_id <> OLD.ticket_id THEN
    UPDATE tickets SET search_document = carehub_ticket_document(subject, id) WHERE id = NEW.ticket_id;
  END IF;
  RETURN NULL;
END $$
""",
    r"""
CREATE FUNCTION carehub_search_on_ticket() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    NEW.search_document := to_tsvector('english', coalesce(NEW.subject, ''));
  ELSIF NEW.subject IS DISTINCT FROM OLD.subject THEN
    NEW.search_document := carehub_ticket_document(NEW.subject, NEW.id);
  END IF;
  RETURN NEW;
END $$
""",
    r"""
CREATE TRIGGER tickets_search BEFORE INSERT OR UPDATE OF subject ON tickets
  FOR EACH ROW EXECUTE FUNCTION carehub_search_on_ticket()
""",
    r"""
CREATE TRIGGER messages_search AFTER INSERT OR DELETE OR UPDATE OF ticket_id, body ON messages
  FOR EACH ROW EXECUTE FUNCTION carehub_search_on_message()
""",
    r"""
SELECT carehub_rebuild_search()
""",
    r"""
CREATE INDEX ix_tickets_search ON tickets USING gin (search_document)
""",
    # Statistics for the new column: without them the planner guesses a common word is rare, and filters tens of
    # thousands of rows instead of ANDing the search index with the status index.
    "ANALYZE tickets",
]

_PG_DROP = [
    "DROP INDEX ix_tickets_search",
    "DROP TRIGGER messages_search ON messages",
    "DROP TRIGGER tickets_search ON tickets",
    "ALTER TABLE tickets DROP COLUMN search_document",
    "DROP FUNCTION carehub_search_on_ticket()",
    "DROP FUNCTION carehub_search_on_message()",
    "DROP FUNCTION carehub_rebuild_search()",
    "DROP FUNCTION carehub_ticket_document(text, integer)",
]


def _sqlite_document(ticket: str) -> str:
    return (
        f"(SELECT coalesce(subject, '') FROM tickets WHERE id = {ticket}) || "
        f"coalesce((SELECT ' ' || group_concat(body, ' ') FROM messages WHERE ticket_id = {ticket}), '')"
    )


def _sqlite_rebuild(ticket: str) -> str:
    return f"UPDATE tickets_search_fts SET document = {_sqlite_document(ticket)} WHERE rowid = {ticket};"


_SQLITE = [
    "CREATE VIRTUAL TABLE tickets_search_fts USING fts5(document, tokenize='porter unicode61 remove_diacritics 2')",
    "INSERT INTO tickets_search_fts(rowid, document) SELECT t.id, coalesce(t.subject, '') || coalesce((SELECT ' ' "
    "|| group_concat(body, ' ') FROM messages WHERE ticket_id = t.id), '') FROM tickets AS t",
    "CREATE TRIGGER tickets_search_fts_ticket_insert AFTER INSERT ON tickets BEGIN "
    "INSERT INTO tickets_search_fts(rowid, document) VALUES (new.id, coalesce(new.subject, '')); END",
    "CREATE TRIGGER tickets_search_fts_subject AFTER UPDATE OF subject ON tickets BEGIN "
    f"{_sqlite_rebuild('new.id')} END",
    "CREATE TRIGGER tickets_search_fts_ticket_delete AFTER DELETE ON tickets BEGIN "
    "DELETE FROM tickets_search_fts WHERE rowid = old.id; END",
    "CREATE TRIGGER tickets_search_fts_message_insert AFTER INSERT ON messages BEGIN "
    "UPDATE tickets_search_fts SET document = document || ' ' || new.body WHERE rowid = new.ticket_id; END",
    "CREATE TRIGGER tickets_search_fts_message_update AFTER UPDATE OF ticket_id, body ON messages BEGIN "
    f"{_sqlite_rebuild('old.ticket_id')} {_sqlite_rebuild('new.ticket_id')} END",
    "CREATE TRIGGER tickets_search_fts_message_delete AFTER DELETE ON messages BEGIN "
    f"{_sqlite_rebuild('old.ticket_id')} END",
]
_SQLITE_TRIGGERS = ("ticket_insert", "subject", "ticket_delete", "message_insert", "message_update", "message_delete")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_messages_body_search")
        op.execute("DROP INDEX ix_tickets_subject_search")
        for statement in _PG:
            op.execute(statement)
        return
    for table in ("messages", "tickets"):
        # IF EXISTS: SQLite runs DDL outside a transaction, so an interrupted upgrade may have dropped some already.
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_fts_{trigger}")
        op.execute(f"DROP TABLE IF EXISTS {table}_fts")
    for statement in _SQLITE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in _PG_DROP:
            op.execute(statement)
    else:
        for trigger in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER tickets_search_fts_{trigger}")
        op.execute("DROP TABLE tickets_search_fts")
    # 0011's per-message search structures come back with it.
    spec = importlib.util.spec_from_file_location("_m0011", Path(__file__).with_name("0011_agent_console.py"))
    if spec is None or spec.loader is None:
        raise RuntimeError("migration 0011 is missing beside 0012")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module._create_search()
