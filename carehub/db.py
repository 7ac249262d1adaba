"""Database engine, the UTC timestamp column type, and the transaction scope that enqueues work only after commit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeAlias

from sqlalchemy import DateTime, Table, event
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect, Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.types import TypeDecorator

from carehub.settings import Settings

AnyRow: TypeAlias = Row[*tuple[Any, ...]]
"""A result row of any shape (Core queries return these; attributes are the selected columns)."""


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in and out; SQLite has no time zones, so it is stored as naive UTC there."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: store aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        # One connection per process: SQLite allows one writer, and a pool of writers only queues on its lock.
        engine = create_async_engine(settings.database_url, pool_size=1, max_overflow=0, pool_timeout=30)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

        return engine
    # Size the pool to the concurrency so bursts reuse connections instead of opening new sessions.
    return create_async_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        pool_pre_ping=False,
    )


@dataclass
class Tx:
    """A transaction in progress: its connection, the outbox rows it staged for delivery, and the live events
    (topic, event) to publish once it has committed."""

    conn: AsyncConnection
    staged_outbox: list[int] = field(default_factory=list)
    staged_events: list[tuple[str, Any]] = field(default_factory=list)


OnCommit = Callable[[Tx], Awaitable[None]]


@asynccontextmanager
async def transaction(engine: AsyncEngine, on_commit: OnCommit | None = None) -> AsyncIterator[Tx]:
    """Commit on success, roll back on error; only after a commit is the transaction handed to on_commit (which
    enqueues its outbox rows and publishes its events), so no job or listener ever sees a change that was rolled
    back (an enqueue lost here is found again by the sweeper; a lost event by the listener's re-sync)."""
    async with engine.connect() as conn:
        tx = Tx(conn)
        async with conn.begin():
            yield tx
    if on_commit is not None and (tx.staged_outbox or tx.staged_events):
        await on_commit(tx)


def insert_or_ignore(conn: AsyncConnection, table: Table) -> PgInsert | SqliteInsert:
    """INSERT ... ON CONFLICT DO NOTHING in the connection's dialect: how duplicates are refused without a race."""
    if conn.dialect.name == "postgresql":
        return pg_insert(table).on_conflict_do_nothing()
    return sqlite_insert(table).on_conflict_do_nothing()
