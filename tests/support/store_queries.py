"""Read-only looks into the store for assertions (tests check outcomes in the database, not in logs)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from carehub.db import AnyRow
from carehub.models import ContactAddress, Outbox


async def count_rows(engine: AsyncEngine, model: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(model.__table__))).scalar_one())


async def outbox_rows(engine: AsyncEngine) -> list[AnyRow]:
    table = Outbox.__table__  # type: ignore[attr-defined]
    async with engine.connect() as conn:
        return list((await conn.execute(select(table).order_by(table.c.id))).all())


async def outbox_row(engine: AsyncEngine, outbox_id: int) -> AnyRow:
    table = Outbox.__table__  # type: ignore[attr-defined]
    async with engine.connect() as conn:
        return (await conn.execute(select(table).where(table.c.id == outbox_id))).one()


async def opted_out(engine: AsyncEngine, address: str) -> bool:
    table = ContactAddress.__table__  # type: ignore[attr-defined]
    async with engine.connect() as conn:
        value = (await conn.execute(select(table.c.opted_out_at).where(table.c.address == address))).scalar_one()
    return value is not None


async def undeliverable_addresses(engine: AsyncEngine) -> list[str]:
    """Addresses a permanent bounce put on hold."""
    table = ContactAddress.__table__  # type: ignore[attr-defined]
    async with engine.connect() as conn:
        rows = await conn.execute(select(table.c.address).where(table.c.undeliverable_at.is_not(None)))
    return [str(r.address) for r in rows]
