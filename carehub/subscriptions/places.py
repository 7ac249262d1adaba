"""Where alerts can be aimed: the areas the city loads (a boundary and/or postal codes) and the city's civic address
points that place a resident's street address in one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.models import AddressPoint, Area

AREAS = Area.__table__  # type: ignore[attr-defined]
ADDRESS_POINTS = AddressPoint.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class AreaRow:
    id: int
    slug: str
    name: str
    kind: str
    geometry: dict[str, Any] | None
    postal_codes: list[str]


def _area(row: Any) -> AreaRow:
    return AreaRow(row.id, row.slug, row.name, row.kind, row.geometry, list(row.postal_codes or []))


async def areas(conn: AsyncConnection) -> list[AreaRow]:
    return [_area(r) for r in await conn.execute(select(AREAS).order_by(AREAS.c.name, AREAS.c.id))]


async def area_by_slug(conn: AsyncConnection, slug: str) -> AreaRow | None:
    row = (await conn.execute(select(AREAS).where(AREAS.c.slug == slug))).one_or_none()
    return None if row is None else _area(row)


async def upsert_area(
    conn: AsyncConnection,
    *,
    slug: str,
    name: str,
    kind: str,
    geometry: dict[str, Any] | None,
    postal_codes: list[str],
    now: datetime,
) -> tuple[AreaRow, bool]:
    """Create the area or replace its name, kind, geometry and postal codes; (area, created)."""
    values = {"name": name, "kind": kind, "geometry": geometry, "postal_codes": postal_codes, "updated_at": now}
    existing = await area_by_slug(conn, slug)
    if existing is None:
        row = (await conn.execute(insert(AREAS).values(slug=slug, created_at=now, **values).returning(*AREAS.c))).one()
        return _area(row), True
    row = (
        await conn.execute(update(AREAS).where(AREAS.c.id == existing.id).values(**values).returning(*AREAS.c))
    ).one()
    return _area(row), False


async def address_point(conn: AsyncConnection, address_key: str) -> tuple[float, float] | None:
    """(longitude, latitude) of the city's address point with this normalised address, or None."""
    row = (
        await conn.execute(
            select(ADDRESS_POINTS.c.lon, ADDRESS_POINTS.c.lat).where(ADDRESS_POINTS.c.address_key == address_key)
        )
    ).one_or_none()
    return None if row is None else (float(row.lon), float(row.lat))


async def upsert_address_points(conn: AsyncConnection, points: Sequence[dict[str, Any]]) -> None:
    """Insert the points (address_key, label, lon, lat) or move the ones already known, in one executemany."""
    if not points:
        return
    stmt = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(ADDRESS_POINTS)
    upsert = stmt.on_conflict_do_update(
        index_elements=[ADDRESS_POINTS.c.address_key],
        set_={"label": stmt.excluded.label, "lon": stmt.excluded.lon, "lat": stmt.excluded.lat},
    )
    await conn.execute(upsert, list(points))
