"""help centre: answer articles in English and French, their search structures, and what residents searched for
and found useful.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 00:46:00
"""

from __future__ import annotations

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
