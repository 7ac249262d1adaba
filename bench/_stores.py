"""Stores a benchmark owns for one run: a fresh PostgreSQL database and a claimed Redis DB index, both removed
afterwards, plus the queries that check what the hub stored."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import asyncpg
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
REDIS_SERVER = "redis://127.0.0.1:6379"
# The key tests claim a Redis DB index with (tests/support/stores.py): claiming the same way means a test run and a
# benchmark on one machine never share an index, or flush each other's.
REDIS_LOCK_KEY = "carehub:test-run-owner"
REDIS_CLAIM_SECONDS = 3600
PG_TIMEOUT_S = 30.0


class StoreUnavailable(RuntimeError):
    pass


async def _pg(database: str, sql: str, *args: Any) -> list[Any]:
    try:
        conn = await asyncpg.connect(f"{PG_SERVER}/{database}", timeout=PG_TIMEOUT_S)
    except OSError as exc:
        raise StoreUnavailable(
            f"PostgreSQL at {PG_SERVER} is not answering ({exc}); `make bench` starts it (scripts/services-up)"
        ) from exc
    try:
        return list(await conn.fetch(sql, *args, timeout=PG_TIMEOUT_S))
    finally:
        await conn.close()


def pg_query(database: str, sql: str, *args: Any) -> list[Any]:
    """Rows (asyncpg Records) of one statement, on a connection of its own."""
    return asyncio.run(_pg(database, sql, *args))


def pg_scalar(database: str, sql: str, *args: Any) -> Any:
    return pg_query(database, sql, *args)[0][0]


@contextmanager
def postgres_database(prefix: str = "carehub_bench_") -> Iterator[str]:
    """Create an empty database named `prefix` + random hex; yield its name; drop it (connections and all)."""
    name = prefix + secrets.token_hex(4)
    pg_query("postgres", f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        pg_query("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sqlalchemy_url(database: str) -> str:
    return f"{PG_SERVER.replace('postgresql://', 'postgresql+asyncpg://')}/{database}"


def _claim_redis_index(owner: str) -> int:
    for index in range(1, 16):
        client = redis_client(f"{REDIS_SERVER}/{index}")
        try:
            if client.set(REDIS_LOCK_KEY, owner, nx=True, ex=REDIS_CLAIM_SECONDS):
                client.flushdb()
                client.set(REDIS_LOCK_KEY, owner, ex=REDIS_CLAIM_SECONDS)
                return index
        except RedisConnectionError as exc:
            raise StoreUnavailable(
                f"Redis at {REDIS_SERVER} is not answering ({exc}); `make bench` starts it (scripts/services-up)"
            ) from exc
        finally:
            client.close()
    raise StoreUnavailable("no free Redis DB index (1-15) for the benchmark")


@contextmanager
def redis_database(owner: str) -> Iterator[str]:
    """Claim a Redis DB index 1-15 nobody else holds, flush it, yield its URL; flush it (and so free it) afterwards."""
    url = f"{REDIS_SERVER}/{_claim_redis_index(owner)}"
    try:
        yield url
    finally:
        client = redis_client(url)
        try:
            client.flushdb()
        finally:
            client.close()


def redis_client(url: str) -> Redis:
    return Redis.from_url(url, socket_timeout=5)


def redis_sorted_set_size(url: str, key: str) -> int:
    """ZCARD: e.g. how many jobs wait in an arq queue."""
    client = redis_client(url)
    try:
        return int(cast(int, client.zcard(key)))
    finally:
        client.close()


def redis_version() -> str:
    client = redis_client(REDIS_SERVER)
    try:
        return str(cast(dict[str, Any], client.info("server"))["redis_version"])
    finally:
        client.close()


DATABASE_COUNTERS = ("sessions", "xact_commit", "xact_rollback", "tup_inserted", "tup_updated", "tup_fetched")


def pg_database_counters(database: str, *, quiet_timeout: float = 0.0) -> dict[str, int]:
    """pg_stat_database counters of `database`. With quiet_timeout, first wait (bounded) until no other session is
    connected to it: a backend publishes its last counts when it exits."""
    return asyncio.run(_pg_database_counters(database, quiet_timeout))


async def _pg_database_counters(database: str, quiet_timeout: float) -> dict[str, int]:
    conn = await asyncpg.connect(f"{PG_SERVER}/{database}", timeout=PG_TIMEOUT_S)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + quiet_timeout
        while loop.time() < deadline:
            others = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", database
            )
            if not others:
                break
            await asyncio.sleep(0.1)
        row = await conn.fetchrow(
            f"SELECT {', '.join(DATABASE_COUNTERS)} FROM pg_stat_database WHERE datname = $1",  # noqa: S608 - constants
            database,
        )
        return {name: int(row[name] or 0) for name in DATABASE_COUNTERS}
    finally:
        await conn.close()
