"""The staff API for what residents subscribe to: topics (anyone may list them; communications staff and admins
create, rename or retire them) and areas (a ward or zone: a GeoJSON boundary, checked, and/or postal codes)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Response
from sqlmodel import Field, SQLModel

from carehub import audit
from carehub.agents.auth import CurrentAgent, RuntimeDep, require_role
from carehub.clock import utcnow
from carehub.models import Role
from carehub.problems import Problem
from carehub.subscriptions import places
from carehub.subscriptions import repository as subs
from carehub.subscriptions.areas import normalise_area_code, validate_geometry

router = APIRouter(prefix="/api/v1", tags=["alerts"])
Communications = Annotated[CurrentAgent, Depends(require_role(Role.COMMUNICATIONS, Role.ADMIN))]
# An area's boundary may hold 10,000 positions (about 300 KB of GeoJSON): more than the app's default body limit.
BODY_PREFIX_LIMITS = {"/api/v1/areas/": 1024 * 1024}


class TopicIn(SQLModel):
    keyword: str = Field(min_length=1, max_length=32)
    name_en: str = Field(min_length=1, max_length=100)
    name_fr: str = Field(min_length=1, max_length=100)
    active: bool = True
    sort_order: int | None = Field(default=None, ge=0, le=10_000)


class TopicPublic(SQLModel):
    slug: str
    keyword: str
    name_en: str
    name_fr: str
    active: bool


class AreaIn(SQLModel):
    name: str = Field(min_length=1, max_length=100)
    kind: Literal["ward", "zone"] = "ward"
    geometry: dict[str, Any] | None = None
    postal_codes: list[str] = Field(default_factory=list, max_length=20_000)


class AreaPublic(SQLModel):
    slug: str
    name: str
    kind: str
    geometry: dict[str, Any] | None
    postal_codes: list[str]


def _slug(slug: str, limit: int) -> str:
    clean = slug.strip().lower()
    if not clean or len(clean) > limit or not all(c.isascii() and (c.isalnum() or c == "-") for c in clean):
        raise Problem(422, f"A slug is 1 to {limit} characters: lower-case letters a-z, digits and hyphens.")
    return clean


def _topic_out(topic: subs.TopicRow) -> TopicPublic:
    return TopicPublic(
        slug=topic.slug, keyword=topic.keyword, name_en=topic.name_en, name_fr=topic.name_fr, active=topic.active
    )


def _area_out(area: places.AreaRow) -> AreaPublic:
    return AreaPublic(
        slug=area.slug, name=area.name, kind=area.kind, geometry=area.geometry, postal_codes=area.postal_codes
    )


@router.get("/topics")
async def list_topics(rt: RuntimeDep) -> list[TopicPublic]:
    """The topics residents can subscribe to (retired ones are left out)."""
    async with rt.transaction() as tx:
        return [_topic_out(t) for t in await subs.topics(tx.conn)]


@router.put("/topics/{slug}")
async def put_topic(
    slug: str, payload: TopicIn, response: Response, rt: RuntimeDep, agent: Communications
) -> TopicPublic:
    """Create a topic, rename it, change its keyword, or retire it (active: false); 201 when created."""
    slug = _slug(slug, 32)
    keyword = payload.keyword.strip().upper()
    if not (2 <= len(keyword) <= 16 and keyword.isascii() and keyword.isalpha()):
        raise Problem(422, "The keyword must be 2 to 16 letters A-Z (residents text JOIN and the keyword).")
    now = utcnow()
    async with rt.transaction() as tx:
        holder = await subs.topic_by(tx.conn, keyword=keyword)
        if holder is not None and holder.slug != slug:
            raise Problem(409, f"The keyword {keyword} already belongs to the topic '{holder.slug}'.")
        topic, created = await subs.upsert_topic(
            tx.conn,
            slug=slug,
            keyword=keyword,
            name_en=payload.name_en.strip(),
            name_fr=payload.name_fr.strip(),
            active=payload.active,
            sort_order=payload.sort_order,
            now=now,
        )
        await audit.by_agent(tx.conn, agent.id, "create" if created else "update", "topic", topic.id, now)
    response.status_code = 201 if created else 200
    return _topic_out(topic)


@router.get("/areas")
async def list_areas(rt: RuntimeDep) -> list[AreaPublic]:
    """The areas alerts can target, with their geometry and postal codes (public city boundaries)."""
    async with rt.transaction() as tx:
        return [_area_out(a) for a in await places.areas(tx.conn)]


def _postal_codes(values: list[str]) -> list[str]:
    codes = []
    for index, value in enumerate(values):
        code = normalise_area_code(value)
        if code is None:
            raise Problem(
                422,
                f"postal_codes[{index}]: {value!r} is neither a Canadian postal code (L1V 6K7) nor a forward "
                "sortation area (L1V).",
            )
        codes.append(code)
    return sorted(set(codes))


@router.put("/areas/{slug}")
async def put_area(slug: str, payload: AreaIn, response: Response, rt: RuntimeDep, agent: Communications) -> AreaPublic:
    """Create or replace an area: a GeoJSON (Multi)Polygon and/or the postal codes it covers; 201 when created."""
    slug = _slug(slug, 64)
    geometry = None
    if payload.geometry is not None:
        try:
            geometry = validate_geometry(payload.geometry)
        except ValueError as exc:
            raise Problem(422, f"geometry: {exc}") from None
    codes = _postal_codes(payload.postal_codes)
    if geometry is None and not codes:
        raise Problem(422, "An area needs a geometry, postal codes, or both.")
    now = utcnow()
    async with rt.transaction() as tx:
        area, created = await places.upsert_area(
            tx.conn,
            slug=slug,
            name=payload.name.strip(),
            kind=payload.kind,
            geometry=geometry,
            postal_codes=codes,
            now=now,
        )
        await audit.by_agent(tx.conn, agent.id, "create" if created else "update", "area", area.id, now)
    response.status_code = 201 if created else 200
    return _area_out(area)
