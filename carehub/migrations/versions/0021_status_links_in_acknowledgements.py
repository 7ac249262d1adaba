"""acknowledgements carry a status link: the PostgreSQL ingest functions make the link with the ticket.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 00:47:00
"""

from __future__ import annotations

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
