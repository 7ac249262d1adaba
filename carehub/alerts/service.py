"""Alert rules: compose (validated, idempotent), send now or at a time, two-person approval for emergency and
all-residents alerts, cancel, updates and all-clears to the same audience, and the composer's preview (SMS
encoding and segments, reading grade, audience, time to deliver). Functions take the caller's connection and
never commit; starting a fan-out happens after commit (the caller calls runner.start_fanout)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub import audit
from carehub.agents.auth import CurrentAgent
from carehub.alerts import pacing
from carehub.alerts import repository as alerts
from carehub.db import AnyRow
from carehub.models import AlertKind, AlertStatus, Area, Outbox, Topic
from carehub.problems import Problem
from carehub.settings import Settings
from channels.base import ChannelKind

TOPICS = Topic.__table__  # type: ignore[attr-defined]
AREAS = Area.__table__  # type: ignore[attr-defined]
OUTBOX = Outbox.__table__  # type: ignore[attr-defined]
TORONTO = ZoneInfo("America/Toronto")
SMS_MAX_CHARS = 1600  # Twilio refuses longer bodies (about ten segments)
AlertChannel = Literal["sms", "email"]
ALERT_CHANNELS: tuple[AlertChannel, ...] = ("sms", "email")
Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]


class ChannelText(BaseModel):
    """One language's text: SMS and email."""

    model_config = ConfigDict(extra="forbid")
    sms: str | None = Field(default=None, max_length=SMS_MAX_CHARS)
    email_subject: str | None = Field(default=None, max_length=150)
    email_body: str | None = Field(default=None, max_length=20_000)


class AlertDraft(BaseModel):
    """What staff compose: one alert, its audience and its text per language (English required)."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200, description="Staff-facing name; not sent.")
    topic: str | None = Field(default=None, description="Topic slug; null with all_residents.")
    all_residents: bool = False
    areas: list[str] = Field(default_factory=list, max_length=50, description="Area slugs; empty: whole city.")
    emergency: bool = False
    channels: list[AlertChannel] = Field(default_factory=lambda: list(ALERT_CHANNELS), min_length=1)
    content: dict[Language, ChannelText]
    send_at: datetime | None = Field(default=None, description="Send later; without an offset, Toronto time.")

    @field_validator("send_at")
    @classmethod
    def _toronto_by_default(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=TORONTO)
        return value


class FollowUp(BaseModel):
    """An update or an all-clear: new text, the same audience as the alert it follows."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["update", "all_clear"]
    title: str | None = Field(default=None, max_length=200)
    content: dict[Language, ChannelText]


def check_content(content: dict[str, ChannelText], channels: list[str]) -> dict[str, dict[str, str]]:
    """Every language has the parts its channels need (English must exist: it is the fallback)."""
    if "en" not in content:
        raise Problem(422, "English text is required: residents whose language has no text get English.")
    checked: dict[str, dict[str, str]] = {}
    for language, parts in content.items():
        kept: dict[str, str] = {}
        if "sms" in channels:
            if not (parts.sms or "").strip():
                raise Problem(422, f"The SMS text in '{language}' is empty; SMS is one of the alert's channels.")
            kept["sms"] = parts.sms.strip() if parts.sms else ""
        if "email" in channels:
            if not (parts.email_subject or "").strip() or not (parts.email_body or "").strip():
                raise Problem(422, f"The email subject and body in '{language}' are both needed for email.")
            kept["email_subject"] = (parts.email_subject or "").strip()
            kept["email_body"] = (parts.email_body or "").strip()
        checked[language] = kept
    return checked


PLACEHOLDER = re.compile(r"\[[^\[\]\n]{1,40}\]")  # a template's part to replace: [street], [secteur]


def placeholders(content: dict[str, dict[str, str]]) -> list[str]:
    """The [bracketed] parts of a template still in the text, in order, once each."""
    found = (m.group(0) for parts in content.values() for text in parts.values() for m in PLACEHOLDER.finditer(text))
    return list(dict.fromkeys(found))


def refuse_placeholders(content: dict[str, dict[str, str]]) -> None:
    left = placeholders(content)
    if left:
        raise Problem(422, f"Replace the template's bracketed parts before sending: {', '.join(left)}.")


async def audience_ids(conn: AsyncConnection, draft: AlertDraft) -> tuple[int | None, list[int]]:
    if draft.all_residents == (draft.topic is not None):
        raise Problem(422, "Choose a topic, or all_residents: true for an alert to every subscriber (not both).")
    topic_id = None
    if draft.topic is not None:
        topic_id = (
            await conn.execute(select(TOPICS.c.id).where(TOPICS.c.slug == draft.topic, TOPICS.c.active.is_(True)))
        ).scalar_one_or_none()
        if topic_id is None:
            raise Problem(422, f"There is no active topic '{draft.topic}'; GET /api/v1/topics lists them.")
    area_ids: list[int] = []
    if draft.areas:
        rows = await conn.execute(select(AREAS.c.slug, AREAS.c.id).where(AREAS.c.slug.in_(draft.areas)))
        found: dict[str, int] = {row.slug: row.id for row in rows}
        missing = sorted(set(draft.areas) - set(found))
        if missing:
            raise Problem(422, f"Unknown area(s): {', '.join(missing)}; GET /api/v1/areas lists them.")
        area_ids = sorted(found.values())
    return topic_id, area_ids


async def create(
    conn: AsyncConnection, agent: CurrentAgent, draft: AlertDraft, idempotency_key: str | None, now: datetime
) -> tuple[AnyRow, bool]:
    """A draft alert; (alert, False) if this Idempotency-Key already made one (the same request retried)."""
    if idempotency_key is not None:
        existing = await alerts.by_idempotency_key(conn, agent.id, idempotency_key)
        if existing is not None:
            return existing, False
    content = check_content(draft.content, list(draft.channels))
    refuse_placeholders(content)
    topic_id, area_ids = await audience_ids(conn, draft)
    if draft.send_at is not None and draft.send_at <= now:
        raise Problem(422, "send_at is in the past; leave it out to send now.")
    alert_id = await alerts.insert_alert(
        conn,
        {
            "kind": AlertKind.ALERT.value,
            "title": draft.title.strip(),
            "topic_id": topic_id,
            "area_ids": area_ids,
            "emergency": draft.emergency,
            "channels": list(dict.fromkeys(draft.channels)),
            "content": content,
            "status": AlertStatus.DRAFT.value,
            "scheduled_for": draft.send_at,
            "idempotency_key": idempotency_key,
            "created_by": agent.id,
            "created_at": now,
            "updated_at": now,
        },
    )
    await audit.by_agent(conn, agent.id, "create_alert", "alert", alert_id, now, {"title": draft.title})
    return await _get(conn, alert_id), True


async def _get(conn: AsyncConnection, alert_id: int, *, for_update: bool = False) -> AnyRow:
    alert = await alerts.get(conn, alert_id, for_update=for_update)
    if alert is None:
        raise Problem(404, f"There is no alert {alert_id}.")
    return alert


def needs_approval(settings: Settings, alert: Any) -> bool:
    return (
        settings.alerts_require_approval
        and alert.kind == AlertKind.ALERT.value
        and (alert.emergency or alert.topic_id is None)
    )


async def send(conn: AsyncConnection, settings: Settings, agent: CurrentAgent, alert_id: int, now: datetime) -> bool:
    """Send a draft: to approval, to its schedule, or out now. True if the fan-out must start now. Asking again
    for an alert already on its way changes nothing (a double click sends once)."""
    alert = await _get(conn, alert_id, for_update=True)
    if alert.status != AlertStatus.DRAFT.value:
        if alert.status == AlertStatus.CANCELLED.value:
            raise Problem(409, "This alert was cancelled; compose a new one.")
        return False
    if needs_approval(settings, alert):
        await alerts.move(
            conn, alert_id, [AlertStatus.DRAFT], status=AlertStatus.AWAITING_APPROVAL.value, updated_at=now
        )
        await audit.by_agent(conn, agent.id, "request_alert_approval", "alert", alert_id, now)
        return False
    await audit.by_agent(conn, agent.id, "send_alert", "alert", alert_id, now)
    return await _release(conn, alert, [AlertStatus.DRAFT], now)


async def approve(conn: AsyncConnection, agent: CurrentAgent, alert_id: int, now: datetime) -> bool:
    """The second person's yes. True if the fan-out must start now."""
    alert = await _get(conn, alert_id, for_update=True)
    if alert.status != AlertStatus.AWAITING_APPROVAL.value:
        if alert.approved_by is not None:
            return False  # approved already (a retried request)
        raise Problem(409, f"This alert is {alert.status}, not waiting for approval.")
    if alert.created_by == agent.id:
        raise Problem(403, "Another person must approve this alert: its author cannot.")
    await conn.execute(
        update(alerts.ALERTS).where(alerts.ALERTS.c.id == alert_id).values(approved_by=agent.id, approved_at=now)
    )
    await audit.by_agent(conn, agent.id, "approve_alert", "alert", alert_id, now)
    return await _release(conn, alert, [AlertStatus.AWAITING_APPROVAL], now)


async def _release(conn: AsyncConnection, alert: AnyRow, from_statuses: list[AlertStatus], now: datetime) -> bool:
    if alert.scheduled_for is not None and alert.scheduled_for > now:
        await alerts.move(conn, alert.id, from_statuses, status=AlertStatus.SCHEDULED.value, updated_at=now)
        return False
    return await alerts.move(
        conn, alert.id, from_statuses, status=AlertStatus.SENDING.value, started_at=now, updated_at=now
    )


async def cancel(conn: AsyncConnection, agent: CurrentAgent, alert_id: int, now: datetime) -> int:
    """Stop the alert: every delivery not yet handed to a provider is cancelled at once (the alert row is locked
    first, so a fan-out batch in progress is either before this, and cancelled by it, or after, and stages
    nothing). Returns how many deliveries were cancelled."""
    alert = await _get(conn, alert_id, for_update=True)
    if alert.status == AlertStatus.CANCELLED.value:
        return 0
    if alert.status == AlertStatus.SENT.value:
        raise Problem(409, "This alert has been sent in full; send an update or an all-clear instead.")
    await alerts.move(
        conn,
        alert_id,
        [AlertStatus.DRAFT, AlertStatus.AWAITING_APPROVAL, AlertStatus.SCHEDULED, AlertStatus.SENDING],
        status=AlertStatus.CANCELLED.value,
        cancelled_by=agent.id,
        cancelled_at=now,
        updated_at=now,
    )
    cancelled = await alerts.cancel_queued(conn, alert_id, now)
    for channel in alert.channels:
        await pacing.release(conn, ChannelKind(channel), now)
    await audit.by_agent(conn, agent.id, "cancel_alert", "alert", alert_id, now, {"cancelled": cancelled})
    return cancelled


async def follow_up(
    conn: AsyncConnection,
    agent: CurrentAgent,
    parent_id: int,
    payload: FollowUp,
    idempotency_key: str | None,
    now: datetime,
) -> tuple[AnyRow, bool]:
    """An update or all-clear to everyone the alert reached, sent now. (alert, created); True: start the fan-out.
    It needs no second approval: its audience is the one already approved."""
    if idempotency_key is not None:
        existing = await alerts.by_idempotency_key(conn, agent.id, idempotency_key)
        if existing is not None:
            return existing, False
    parent = await _get(conn, parent_id)
    if parent.status not in (AlertStatus.SENDING.value, AlertStatus.SENT.value, AlertStatus.CANCELLED.value):
        raise Problem(409, f"This alert is {parent.status}: only an alert that went out can have an update.")
    content = check_content(payload.content, list(parent.channels))
    refuse_placeholders(content)
    label = "Update" if payload.kind == "update" else "All clear"
    alert_id = await alerts.insert_alert(
        conn,
        {
            "kind": payload.kind,
            "parent_id": parent_id,
            "title": (payload.title or f"{label}: {parent.title}")[:200],
            "topic_id": parent.topic_id,
            "area_ids": parent.area_ids,
            "emergency": parent.emergency,
            "channels": parent.channels,
            "content": content,
            "status": AlertStatus.SENDING.value,
            "started_at": now,
            "idempotency_key": idempotency_key,
            "created_by": agent.id,
            "created_at": now,
            "updated_at": now,
        },
    )
    await audit.by_agent(conn, agent.id, f"send_alert_{payload.kind}", "alert", alert_id, now, {"parent": parent_id})
    return await _get(conn, alert_id), True


# ---- templates ----------------------------------------------------------------------------------------------


class AlertTemplateIn(BaseModel):
    """A reusable start for alerts: its [bracketed] parts are replaced when an alert is composed from it."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    topic: str | None = None
    channels: list[AlertChannel] = Field(default_factory=lambda: list(ALERT_CHANNELS), min_length=1)
    content: dict[Language, ChannelText]


async def save_template(
    conn: AsyncConnection, agent: CurrentAgent, template_id: int | None, payload: AlertTemplateIn, now: datetime
) -> int:
    content = check_content(payload.content, list(payload.channels))
    topic_id = None
    if payload.topic is not None:
        topic_id = (await conn.execute(select(TOPICS.c.id).where(TOPICS.c.slug == payload.topic))).scalar_one_or_none()
        if topic_id is None:
            raise Problem(422, f"There is no topic '{payload.topic}'; GET /api/v1/topics lists them.")
    saved = await alerts.save_template(
        conn,
        template_id,
        {
            "name": payload.name.strip(),
            "topic_id": topic_id,
            "channels": list(dict.fromkeys(payload.channels)),
            "content": content,
            "created_by": agent.id,
            "created_at": now,
            "updated_at": now,
        },
    )
    if not saved:
        raise Problem(404, f"There is no alert template {template_id}.")
    await audit.by_agent(conn, agent.id, "save_alert_template", "alert_template", saved, now)
    return saved
