"""address points: the city's civic addresses with their longitude and latitude, keyed by the normalised address,
so a resident's street address places them in an alert area (loaded by `carehub load-address-points`).

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 02:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "address_points",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address_key", sa.String(length=200), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("address_key"),
    )


def downgrade() -> None:
    op.drop_table("address_points")
