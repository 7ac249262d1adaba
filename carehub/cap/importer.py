"""CAP import rules: a parsed CAP message becomes an alert draft for staff (Alert), a newer draft or an update draft
(Update), a cancelled draft or an all-clear draft (Cancel), or nothing. Nothing is ever sent from here: staff send.
Functions take the caller's connection and never commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub import audit
from carehub.agents.auth import CurrentAgent
from carehub.alerts import repository as alerts
from carehub.alerts import service
from carehub.alerts.service import AlertDraft, ChannelText
from carehub.cap.parse import CapAlert, draft_content, for_city
from carehub.db import AnyRow
from carehub.models import AlertKind, AlertStatus
from carehub.problems import Problem
from carehub.settings import Settings

ALERTS = alerts.ALERTS
ACTUAL = "Actual"
UNSENT = (AlertStatus.DRAFT.value, AlertStatus.AWAITING_APPROVAL.value, AlertStatus.SCHEDULED.value)
WENT_OUT = (AlertStatus.SENDING.value, AlertStatus.SENT.value)
_EMERGENCY_SEVERITIES = {"Extreme", "Severe"}
_ALL_CLEAR_WHEN_EMPTY = {
    "en": "The earlier alert has been withdrawn by its issuer.",
    "fr": "L'alerte précédente a été retirée par son émetteur.",
}


@dataclass
class Imported:
    """What an import did. `alert` is the row it made (or found, for a duplicate); None when nothing was stored."""

    outcome: str  # drafted, duplicate, not_for_city, ignored, cancelled, nothing_to_cancel
    detail: str
    alert: AnyRow | None = None
    cancelled: list[int] = field(default_factory=list)  # our unsent alerts this message cancelled
    created: bool = False


async def import_cap(
    conn: AsyncConnection, settings: Settings, agent: CurrentAgent, cap: CapAlert, now: datetime
) -> Imported:
    """Apply one CAP message. A unique-index race on (cap_sender, cap_identifier) surfaces as IntegrityError:
    the caller rolls back and calls `duplicate`."""
    result = await _apply(conn, settings, agent, cap, now)
    await _audit(conn, agent, cap, result, now)
    return result


async def duplicate(conn: AsyncConnection, agent: CurrentAgent, cap: CapAlert, now: datetime) -> Imported:
    """The alert an earlier import of this same message made (read again after losing an insert race)."""
    existing = await by_cap_id(conn, cap.sender, cap.identifier)
    if existing is None:  # the winner rolled back after all: let the client retry
        raise Problem(409, "The same CAP message is being imported at the same time; try again.")
    result = _duplicate(existing)
    await _audit(conn, agent, cap, result, now)
    return result


async def by_cap_id(conn: AsyncConnection, sender: str, identifier: str) -> AnyRow | None:
    query = select(ALERTS).where(ALERTS.c.cap_sender == sender, ALERTS.c.cap_identifier == identifier)
    return (await conn.execute(query)).one_or_none()


async def referenced(conn: AsyncConnection, cap: CapAlert) -> list[AnyRow]:
    """Our alerts made from the messages this one references, oldest first."""
    if not cap.references:
        return []
    pairs = [and_(ALERTS.c.cap_sender == s, ALERTS.c.cap_identifier == i) for s, i, _sent in cap.references]
    return list(await conn.execute(select(ALERTS).where(or_(*pairs)).order_by(ALERTS.c.id)))


def _duplicate(existing: AnyRow) -> Imported:
    return Imported("duplicate", f"This CAP message was imported before, as alert {existing.id}.", existing)


async def _apply(
    conn: AsyncConnection, settings: Settings, agent: CurrentAgent, cap: CapAlert, now: datetime
) -> Imported:
    if cap.status != ACTUAL:
        return Imported("ignored", f"The message's status is {cap.status}, not Actual: nothing is drafted.")
    if cap.msg_type not in ("Alert", "Update", "Cancel"):
        return Imported("ignored", f"A CAP {cap.msg_type} message carries no alert: nothing is drafted.")
    existing = await by_cap_id(conn, cap.sender, cap.identifier)
    if existing is not None:
        return _duplicate(existing)
    refs = await referenced(conn, cap) if cap.msg_type != "Alert" else []
    if cap.msg_type == "Cancel":
        return await _cancel(conn, agent, cap, refs, now)
    local = for_city(cap, settings.cap_geocodes)
    if local is None:
        return Imported("not_for_city", "No info block of the message names one of the city's geocodes.")
    if not refs:
        return await _new_alert(conn, settings, agent, local, now)
    return await _update(conn, settings, agent, local, refs, now)


async def _cancel_unsent(conn: AsyncConnection, agent: CurrentAgent, refs: list[AnyRow], now: datetime) -> list[int]:
    cancelled = []
    for row in refs:
        if row.status in UNSENT:
            await service.cancel(conn, agent, row.id, now)
            cancelled.append(row.id)
    return cancelled


async def _reached(conn: AsyncConnection, refs: list[AnyRow]) -> AnyRow | None:
    """The newest alert among those referenced (or the one an unsent referenced follow-up follows) that went out:
    a follow-up goes to its recipients. A cancelled alert counts if it had started sending."""
    candidates = {r.id: r for r in refs if r.status in WENT_OUT or r.started_at is not None}
    for row in refs:
        if row.status in UNSENT and row.parent_id is not None and row.parent_id not in candidates:
            parent = await alerts.get(conn, row.parent_id)
            if parent is not None:
                candidates[parent.id] = parent
    return candidates[max(candidates)] if candidates else None


async def _update(
    conn: AsyncConnection, settings: Settings, agent: CurrentAgent, cap: CapAlert, refs: list[AnyRow], now: datetime
) -> Imported:
    """Staff review only the newest word: unsent alerts it replaces are cancelled. If one went out, the new draft
    is an update to its recipients; else a new alert to the topic's subscribers."""
    target = await _reached(conn, refs)
    cancelled = await _cancel_unsent(conn, agent, refs, now)
    if target is None:
        result = await _new_alert(conn, settings, agent, cap, now)
        result.cancelled = cancelled
        if cancelled:
            result.detail += f" It replaces alert(s) {', '.join(map(str, cancelled))}, now cancelled."
        return result
    title, content = draft_content(cap)
    row = await draft_follow_up(conn, agent, target, AlertKind.UPDATE, title, content, cap, now)
    detail = f"An update to alert {target.id}, for its recipients, is drafted for review."
    return Imported("drafted", detail, row, cancelled, created=True)


async def _cancel(
    conn: AsyncConnection, agent: CurrentAgent, cap: CapAlert, refs: list[AnyRow], now: datetime
) -> Imported:
    target = await _reached(conn, refs)
    cancelled = await _cancel_unsent(conn, agent, refs, now)
    if target is None:
        if cancelled:
            ids = ", ".join(map(str, cancelled))
            return Imported("cancelled", f"Alert(s) {ids}, not sent yet, cancelled.", None, cancelled)
        return Imported("nothing_to_cancel", "None of the messages it cancels is an alert of ours still to stop.")
    if cap.infos:
        title, content = draft_content(cap)
    else:
        title = target.title
        content = {
            language: {"sms": text, "email_subject": f"{target.title}"[:150], "email_body": text}
            for language, text in _ALL_CLEAR_WHEN_EMPTY.items()
        }
    row = await draft_follow_up(conn, agent, target, AlertKind.ALL_CLEAR, title, content, cap, now)
    detail = f"An all-clear to alert {target.id}'s recipients is drafted for review."
    return Imported("drafted", detail, row, cancelled, created=True)


def _emergency(cap: CapAlert) -> bool:
    return any(i.severity in _EMERGENCY_SEVERITIES or i.urgency == "Immediate" for i in cap.infos)


def _cap_columns(cap: CapAlert) -> dict[str, Any]:
    return {"cap_sender": cap.sender, "cap_identifier": cap.identifier, "cap_sent": cap.sent}


async def _new_alert(
    conn: AsyncConnection, settings: Settings, agent: CurrentAgent, cap: CapAlert, now: datetime
) -> Imported:
    """A draft to the CAP topic's subscribers, like one composed by staff (validated the same way)."""
    title, content = draft_content(cap)
    draft = AlertDraft.model_validate(
        {"title": title, "topic": settings.cap_topic, "emergency": _emergency(cap), "content": content}
    )
    checked = service.check_content(draft.content, list(draft.channels))
    topic_id, area_ids = await service.audience_ids(conn, draft)
    alert_id = await alerts.insert_alert(
        conn,
        {
            "kind": AlertKind.ALERT.value,
            "title": draft.title,
            "topic_id": topic_id,
            "area_ids": area_ids,
            "emergency": draft.emergency,
            "channels": list(draft.channels),
            "content": checked,
            "status": AlertStatus.DRAFT.value,
            "created_by": agent.id,
            "created_at": now,
            "updated_at": now,
            **_cap_columns(cap),
        },
    )
    row = await _inserted(conn, alert_id)
    return Imported("drafted", f"A draft alert from {cap.sender} is ready for review.", row, created=True)


async def draft_follow_up(
    conn: AsyncConnection,
    agent: CurrentAgent,
    parent: AnyRow,
    kind: AlertKind,
    title: str,
    content: dict[str, dict[str, str]],
    cap: CapAlert,
    now: datetime,
) -> AnyRow:
    """An update or all-clear to the parent's recipients, as a DRAFT (service.follow_up sends at once). Sending it
    with service.send goes straight out (follow-ups need no approval) and the fan-out, seeing parent_id, stages it
    for exactly the people the parent reached."""
    texts = {language: ChannelText.model_validate(parts) for language, parts in content.items()}
    checked = service.check_content(texts, list(parent.channels))
    label = "Update" if kind == AlertKind.UPDATE else "All clear"
    alert_id = await alerts.insert_alert(
        conn,
        {
            "kind": kind.value,
            "parent_id": parent.id,
            "title": f"{label}: {title}"[:200],
            "topic_id": parent.topic_id,
            "area_ids": parent.area_ids,
            "emergency": parent.emergency,
            "channels": parent.channels,
            "content": checked,
            "status": AlertStatus.DRAFT.value,
            "created_by": agent.id,
            "created_at": now,
            "updated_at": now,
            **_cap_columns(cap),
        },
    )
    return await _inserted(conn, alert_id)


async def _inserted(conn: AsyncConnection, alert_id: int) -> AnyRow:
    row = await alerts.get(conn, alert_id)
    if row is None:  # inserted just now in this transaction: cannot happen
        raise RuntimeError(f"alert {alert_id} vanished in its own transaction")
    return row


async def _audit(conn: AsyncConnection, agent: CurrentAgent, cap: CapAlert, result: Imported, now: datetime) -> None:
    detail = {
        "sender": cap.sender,
        "identifier": cap.identifier,
        "msg_type": cap.msg_type,
        "outcome": result.outcome,
        "cancelled": result.cancelled,
    }
    if result.alert is not None:
        await audit.by_agent(conn, agent.id, "import_cap", "alert", result.alert.id, now, detail)
    else:  # nothing stored: recorded against the importing agent
        await audit.by_agent(conn, agent.id, "import_cap", "agent", agent.id, now, detail)
