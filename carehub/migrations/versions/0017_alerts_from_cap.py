"""alerts imported from CAP: the CAP sender, identifier and sent time of the message an alert came from (unique per
sender and identifier), so a CAP Update or Cancel finds the alert it refers to and a repeated import makes nothing new.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 02:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import carehub.db

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN and CREATE UNIQUE INDEX: SQLite does both in place (no table rebuild under the outbox's key).
    op.add_column("alerts", sa.Column("cap_sender", sa.String(length=255), nullable=True))
    op.add_column("alerts", sa.Column("cap_identifier", sa.String(length=255), nullable=True))
    op.add_column("alerts", sa.Column("cap_sent", carehub.db.UTCDateTime(timezone=True), nullable=True))
    op.create_index("uq_alert_cap_identifier", "alerts", ["cap_sender", "cap_identifier"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_alert_cap_identifier", table_name="alerts")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_column("cap_sent")
        batch_op.drop_column("cap_identifier")
        batch_op.drop_column("cap_sender")
