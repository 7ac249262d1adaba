"""Webhook endpoints over the API (/api/v1/webhooks, admins only): register (the signing secret is shown once),
list, change, deactivate, rotate the secret, and see recent deliveries. Every change is audited."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from sqlmodel import Field, SQLModel

from carehub import audit
from carehub.agents.auth import CurrentAgent, RuntimeDep, require_role
from carehub.clock import utcnow
from carehub.db import AnyRow
from carehub.models import Role
from carehub.problems import Problem
from carehub.webhooks import repository as webhooks
from carehub.webhooks.events import EVENT_TYPES, type_of
from carehub.webhooks.targets import MAX_URL_CHARS, InvalidTarget, check_registration
from channels.base import DeliveryStatus
from channels.webhook.signing import new_secret

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
Admin = Annotated[CurrentAgent, Depends(require_role(Role.ADMIN))]
EVENTS_DESCRIPTION = f"Any of: {', '.join(EVENT_TYPES)}."


class WebhookCreate(SQLModel):
    url: str = Field(min_length=1, max_length=MAX_URL_CHARS, description="https://... (http only with allow_private)")
    events: list[str] = Field(min_length=1, max_length=len(EVENT_TYPES), description=EVENTS_DESCRIPTION)
    description: str = Field(default="", max_length=200)
    allow_private: bool = Field(
        default=False, description="Allow private, loopback and link-local targets and plain http (internal systems)."
    )


class WebhookUpdate(SQLModel):
    url: str | None = Field(default=None, min_length=1, max_length=MAX_URL_CHARS)
    events: list[str] | None = Field(default=None, min_length=1, max_length=len(EVENT_TYPES))
    description: str | None = Field(default=None, max_length=200)
    is_active: bool | None = None
    allow_private: bool | None = None


class WebhookPublic(SQLModel):
    id: int
    url: str
    description: str
    events: list[str]
    allow_private: bool
    is_active: bool
    created_by: int | None
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(WebhookPublic):
    secret: str = Field(description="The signing secret: shown now and never again (rotate it to get a new one).")


class WebhookDeliveryPublic(SQLModel):
    id: int
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    error_code: str | None
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    sent_at: datetime | None


def _events(events: list[str]) -> list[str]:
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown:
        raise Problem(422, f"Unknown event(s): {', '.join(unknown)}. {EVENTS_DESCRIPTION}")
    return sorted(set(events))


async def _target(url: str, allow_private: bool) -> str:
    try:
        return await check_registration(url, allow_private=allow_private)
    except InvalidTarget as exc:
        raise Problem(422, str(exc)) from None


def _public(row: AnyRow) -> WebhookPublic:
    return WebhookPublic.model_validate(row._mapping)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_webhook(payload: WebhookCreate, rt: RuntimeDep, admin: Admin) -> WebhookWithSecret:
    """Register an endpoint. The answer holds the signing secret; it is not shown again."""
    events = _events(payload.events)
    url = await _target(payload.url, payload.allow_private)
    now = utcnow()
    secret = new_secret()
    async with rt.transaction() as tx:
        row = await webhooks.create_endpoint(
            tx.conn,
            {
                "url": url,
                "description": payload.description,
                "events": events,
                "secret": secret,
                "allow_private": payload.allow_private,
                "is_active": True,
                "created_by": admin.id,
                "created_at": now,
                "updated_at": now,
            },
        )
        detail = {"url": url, "events": events, "allow_private": payload.allow_private}
        await audit.by_agent(tx.conn, admin.id, "create", "webhook", row.id, now, detail)
    return WebhookWithSecret.model_validate({**row._mapping, "secret": secret})


@router.get("")
async def list_webhooks(rt: RuntimeDep, _admin: Admin) -> list[WebhookPublic]:
    async with rt.transaction() as tx:
        return [_public(row) for row in await webhooks.list_endpoints(tx.conn)]


async def _existing(rt: RuntimeDep, webhook_id: int) -> AnyRow:
    async with rt.transaction() as tx:
        row = await webhooks.get_endpoint(tx.conn, webhook_id)
    if row is None:
        raise Problem(404, f"There is no webhook endpoint {webhook_id}.")
    return row


@router.get("/{webhook_id}")
async def get_webhook(webhook_id: int, rt: RuntimeDep, _admin: Admin) -> WebhookPublic:
    return _public(await _existing(rt, webhook_id))


@router.patch("/{webhook_id}")
async def update_webhook(webhook_id: int, changes: WebhookUpdate, rt: RuntimeDep, admin: Admin) -> WebhookPublic:
    """Change an endpoint; the URL and allow_private are checked together, as they will be at the next send."""
    values: dict[str, Any] = changes.model_dump(exclude_unset=True, exclude_none=True)
    if not values:
        raise Problem(422, "Nothing to change: send url, events, description, is_active and/or allow_private.")
    current = await _existing(rt, webhook_id)
    if "events" in values:
        values["events"] = _events(values["events"])
    if "url" in values or "allow_private" in values:
        allow_private = values.get("allow_private", current.allow_private)
        values["url"] = await _target(values.get("url", current.url), allow_private)
    now = utcnow()
    async with rt.transaction() as tx:
        row = await webhooks.update_endpoint(tx.conn, webhook_id, {**values, "updated_at": now})
        if row is None:
            raise Problem(404, f"There is no webhook endpoint {webhook_id}.")
        await audit.by_agent(
            tx.conn, admin.id, "update", "webhook", webhook_id, now, changes.model_dump(exclude_unset=True, mode="json")
        )
    return _public(row)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def deactivate_webhook(webhook_id: int, rt: RuntimeDep, admin: Admin) -> Response:
    """Deactivate: no new deliveries, and those still waiting fail with that reason. Its history is kept;
    PATCH is_active true turns it back on for events from then on."""
    await _existing(rt, webhook_id)
    now = utcnow()
    async with rt.transaction() as tx:
        await webhooks.update_endpoint(tx.conn, webhook_id, {"is_active": False, "updated_at": now})
        await audit.by_agent(tx.conn, admin.id, "deactivate", "webhook", webhook_id, now)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{webhook_id}/rotate-secret")
async def rotate_secret(webhook_id: int, rt: RuntimeDep, admin: Admin) -> WebhookWithSecret:
    """A new signing secret, shown once; deliveries from now on (retries included) are signed with it."""
    await _existing(rt, webhook_id)
    now = utcnow()
    secret = new_secret()
    async with rt.transaction() as tx:
        row = await webhooks.update_endpoint(tx.conn, webhook_id, {"secret": secret, "updated_at": now})
        if row is None:
            raise Problem(404, f"There is no webhook endpoint {webhook_id}.")
        await audit.by_agent(tx.conn, admin.id, "rotate_secret", "webhook", webhook_id, now)
    return WebhookWithSecret.model_validate({**row._mapping, "secret": secret})


@router.get("/{webhook_id}/deliveries")
async def list_deliveries(
    webhook_id: int, rt: RuntimeDep, _admin: Admin, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[WebhookDeliveryPublic]:
    """The endpoint's most recent deliveries, newest first."""
    await _existing(rt, webhook_id)
    async with rt.transaction() as tx:
        rows = await webhooks.deliveries(tx.conn, webhook_id, limit)
    return [WebhookDeliveryPublic.model_validate({**row._mapping, "event_type": type_of(row.event_id)}) for row in rows]
