"""search waiting tickets: a second, partial GIN index over the search documents of tickets still waiting (new,
open, pending), the queue's default view.

Why: a common word's posting list in the full index covers a hundred thousand tickets, and intersecting it with
the status index costs tens of milliseconds; the waiting tickets are a few percent of all, so their own index
answers the everyday search from lists fifty times shorter. PostgreSQL only (SQLite's FTS5 has no partial index).

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


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE INDEX ix_tickets_waiting_search ON tickets USING gin (search_document) WHERE status IN {WAITING}"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_tickets_waiting_search")
