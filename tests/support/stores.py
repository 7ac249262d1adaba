"""Test-owned stores: a PostgreSQL database and a Redis DB index that belong to this test run alone."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from redis.asyncio import Redis
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import carehub.models  # noqa: F401 - registers tables
from carehub.migrations import upgrade
from carehub.settings import Settings

PG_SERVER = os.environ.get("CAREHUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
REDIS_SERVER = os.environ.get("CAREHUB_TEST_REDIS", "redis://127.0.0.1:6379")
RUN_ID = secrets.token_hex(4)
# Rows the migrations seed (the city's default alert topics): every test starts with them, as a new city would.
SEEDED_BY_MIGRATIONS = ("topics", "alert_templates")
_seed_rows: dict[str, list[dict[str, Any]]] = {}
REDIS_LOCK_KEY = "carehub:test-run-owner"


def asyncpg_url(database: str) -> str:
    return f"{PG_SERVER.replace('postgresql://', 'postgresql+asyncpg://')}/{database}"


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """Create a migrated database for this run; drop it afterwards. Yields its SQLAlchemy URL."""
    name = f"carehub_test_{RUN_ID}"
    admin = await asyncpg.connect(f"{PG_SERVER}/postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = asyncpg_url(name)
    try:
        await asyncio.to_thread(upgrade, Settings(database_url=url))
        await _remember_seed(url)
        yield url
    finally:
        admin = await asyncpg.connect(f"{PG_SERVER}/postgres")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def _remember_seed(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            for name in SEEDED_BY_MIGRATIONS:
                table = SQLModel.metadata.tables[name]
                _seed_rows[name] = [dict(r._mapping) for r in await conn.execute(select(table).order_by(table.c.id))]
    finally:
        await engine.dispose()


async def truncate_all(url: str) -> None:
    """Every table emptied (identities restarted), then the migrations' seed rows put back as they were."""
    tables = ", ".join(t.name for t in SQLModel.metadata.sorted_tables)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            for name, rows in _seed_rows.items():
                if rows:
                    await conn.execute(insert(SQLModel.metadata.tables[name]), rows)
                    await conn.execute(
                        text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))")  # noqa: S608 - our table names
                    )
    finally:
        await engine.dispose()


def sqlite_template(directory: Path) -> Path:
    """A migrated SQLite file to copy per test (copying is far faster than migrating each time)."""
    path = directory / "template.db"
    upgrade(Settings(database_url=f"sqlite+aiosqlite:///{path}"))
    return path


def fresh_sqlite(template: Path, directory: Path) -> str:
    path = directory / "carehub.db"
    shutil.copyfile(template, path)
    return f"sqlite+aiosqlite:///{path}"


@asynccontextmanager
async def redis_database() -> AsyncIterator[str]:
    """Claim a Redis DB index no other test run holds (runs may overlap on one machine); flush it; release it."""
    for index in range(1, 16):
        client: Redis = Redis.from_url(f"{REDIS_SERVER}/{index}")
        try:
            if await client.set(REDIS_LOCK_KEY, RUN_ID, nx=True, ex=3600):
                await client.flushdb()
                await client.set(REDIS_LOCK_KEY, RUN_ID, ex=3600)
                try:
                    yield f"{REDIS_SERVER}/{index}"
                finally:
                    await client.flushdb()
                return
        finally:
            await client.aclose()
    raise RuntimeError("no free Redis DB index (1-15) for this test run")


async def flush_redis(url: str) -> None:
    """FLUSHDB this run's Redis index (simulating a Redis that lost everything) and keep the run's claim on it."""
    client: Redis = Redis.from_url(url)
    try:
        await client.flushdb()
        await client.set(REDIS_LOCK_KEY, RUN_ID, ex=3600)
    finally:
        await client.aclose()
