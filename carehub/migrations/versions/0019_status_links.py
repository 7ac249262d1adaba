"""status links: a resident's expiring, revocable link to their request's status page, kept only as its SHA-256.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 00:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import carehub.db

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "status_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", carehub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", carehub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", carehub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.Integer(), nullable=True),
        sa.Column("last_used_at", carehub.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["revoked_by"], ["agents.id"]),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_status_links_ticket_id", "status_links", ["ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_status_links_ticket_id", table_name="status_links")
    op.drop_table("status_links")
