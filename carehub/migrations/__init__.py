"""Alembic migrations for the ticket store; `carehub migrate` applies them (SQLite and PostgreSQL alike)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from carehub.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config(settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    return cfg


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Bring the database schema to `revision`. Synchronous: call it before the event loop, or in a thread."""
    command.upgrade(alembic_config(settings), revision)


def include_name(name: str | None, type_: str, _parents: object) -> bool:
    """Full-text search lives outside the models (migrations 0011, 0012): SQLite's FTS5 tables (and their shadow
    tables); PostgreSQL's tickets.search_document column and its index."""
    if name is None:
        return True
    return not (
        (type_ == "table" and "_fts" in name)
        or (type_ == "index" and name.endswith("_search"))
        or (type_ == "column" and name == "search_document")
    )
