"""The city's Open311 services: their shapes (as admins write them and as GeoReport v2 lists them), the queries,
and the check of a request's attributes against its service's definition."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.db import AnyRow
from carehub.models import Open311Service

SERVICES = Open311Service.__table__  # type: ignore[attr-defined]
CODE_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class Datatype(StrEnum):
    STRING = "string"
    NUMBER = "number"
    DATETIME = "datetime"
    TEXT = "text"
    SINGLE = "singlevaluelist"
    MULTI = "multivaluelist"


class AttributeValue(BaseModel):
    key: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=200)


class Attribute(BaseModel):
    """A question the service asks (GeoReport v2 service definition attribute)."""

    code: str = Field(pattern=CODE_PATTERN)
    description: str = Field(min_length=1, max_length=500)  # the question, shown to the resident
    datatype: Datatype = Datatype.STRING
    required: bool = False
    variable: bool = True  # False: an information line, not a question
    datatype_description: str | None = Field(default=None, max_length=200)
    order: int = Field(default=1, ge=1)
    values: list[AttributeValue] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _lists_have_values(self) -> Attribute:
        listed = self.datatype in (Datatype.SINGLE, Datatype.MULTI)
        if listed and not self.values:
            raise ValueError(f"attribute '{self.code}' is a {self.datatype.value}: give its values")
        if not listed and self.values:
            raise ValueError(f"attribute '{self.code}' is a {self.datatype.value}: values are only for lists")
        return self


class ServiceFields(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    group: str | None = Field(default=None, max_length=100)
    keywords: list[str] = Field(default_factory=list, max_length=30)
    attributes: list[Attribute] = Field(default_factory=list, max_length=50)
    team: str | None = Field(default=None, max_length=64)  # whose queue the requests join
    is_active: bool = True

    @field_validator("team")
    @classmethod
    def _team_slug(cls, team: str | None) -> str | None:
        return None if team is None or not team.strip() else team.strip().lower()

    @field_validator("attributes")
    @classmethod
    def _unique_codes(cls, attributes: list[Attribute]) -> list[Attribute]:
        codes = [a.code for a in attributes]
        repeated = sorted({c for c in codes if codes.count(c) > 1})
        if repeated:
            raise ValueError(f"attribute codes must be unique; repeated: {', '.join(repeated)}")
        return attributes


class ServiceCreate(ServiceFields):
    code: str = Field(pattern=CODE_PATTERN)


class ServicePublic(ServiceCreate):
    created_at: datetime
    updated_at: datetime


def public(row: AnyRow) -> ServicePublic:
    return ServicePublic.model_validate(dict(row._mapping))


async def all_services(conn: AsyncConnection, *, active_only: bool) -> list[AnyRow]:
    query = select(SERVICES).order_by(SERVICES.c.group, SERVICES.c.name)
    if active_only:
        query = query.where(SERVICES.c.is_active.is_(True))
    return list(await conn.execute(query))


async def service(conn: AsyncConnection, code: str) -> AnyRow | None:
    return (await conn.execute(select(SERVICES).where(SERVICES.c.code == code))).one_or_none()


def listing(row: AnyRow) -> dict[str, Any]:
    """A service as GET services lists it."""
    return {
        "service_code": row.code,
        "service_name": row.name,
        "description": row.description,
        "metadata": any(a.get("variable", True) for a in row.attributes),
        "type": "realtime",  # a request becomes a ticket at once: its id is in the POST's answer
        "keywords": ", ".join(row.keywords),
        "group": row.group or "",
    }


def definition(row: AnyRow) -> dict[str, Any]:
    """A service's attributes as GET services/{code} defines them."""
    attributes = []
    for a in sorted((Attribute.model_validate(a) for a in row.attributes), key=lambda a: (a.order, a.code)):
        entry: dict[str, Any] = {
            "variable": a.variable,
            "code": a.code,
            "datatype": a.datatype.value,
            "required": a.required,
            "datatype_description": a.datatype_description,
            "order": a.order,
            "description": a.description,
        }
        if a.values:
            entry["values"] = [{"key": v.key, "name": v.name} for v in a.values]
        attributes.append(entry)
    return {"service_code": row.code, "attributes": attributes}


def check_attributes(row: AnyRow, given: Mapping[str, list[str]]) -> tuple[dict[str, Any], list[str]]:
    """The request's attribute answers kept as the service defines them, and what is wrong with them."""
    defined = {a.code: a for a in (Attribute.model_validate(a) for a in row.attributes) if a.variable}
    problems = [f"attribute[{code}] is not asked by service {row.code}" for code in given if code not in defined]
    kept: dict[str, Any] = {}
    for code, attribute in defined.items():
        values = [v.strip() for v in given.get(code, []) if v.strip()]
        if not values:
            if attribute.required:
                problems.append(f"attribute[{code}] is required: {attribute.description}")
            continue
        problem = _wrong_value(attribute, values)
        if problem is not None:
            problems.append(f"attribute[{code}] {problem}")
        else:
            kept[code] = values if attribute.datatype is Datatype.MULTI else values[0]
    return kept, problems


def _wrong_value(attribute: Attribute, values: list[str]) -> str | None:
    if attribute.datatype is not Datatype.MULTI and len(values) > 1:
        return "takes one value"
    if attribute.datatype in (Datatype.SINGLE, Datatype.MULTI):
        keys = {v.key for v in attribute.values}
        unknown = [v for v in values if v not in keys]
        return None if not unknown else f"must be one of {', '.join(sorted(keys))}, not {', '.join(unknown)}"
    value = values[0]
    if len(value) > 2000:
        return "is longer than 2,000 characters"
    if attribute.datatype is Datatype.NUMBER:
        try:
            float(value)
        except ValueError:
            return f"must be a number, not '{value[:40]}'"
    if attribute.datatype is Datatype.DATETIME:
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return f"must be a date and time like 2026-12-07T09:30:00-05:00, not '{value[:40]}'"
    return None
