"""Alerts over the API (/api/v1/alerts): communications staff and admins compose, preview, send, approve, cancel
and follow up; supervisors may read. Every write is idempotent (Idempotency-Key on creation; sending, approving
and cancelling twice change nothing the second time)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub import audit
from carehub.agents.auth import CurrentAgent, RuntimeDep, require_role
from carehub.alerts import preview, report, service
from carehub.alerts import repository as alerts
from carehub.alerts.runner import start_fanout
from carehub.alerts.service import AlertDraft, AlertTemplateIn, FollowUp
from carehub.clock import utcnow
from carehub.db import AnyRow
from carehub.models import Role
from carehub.problems import Problem
from carehub.runtime import Runtime

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])
Writer = Annotated[CurrentAgent, Depends(require_role(Role.COMMUNICATIONS, Role.ADMIN))]
Reader = Annotated[CurrentAgent, Depends(require_role(Role.COMMUNICATIONS, Role.ADMIN, Role.SUPERVISOR))]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=128, description="Retrying with it creates nothing new."),
]
PAGE_LIMIT = 500


class AlertPublic(BaseModel):
    id: int
    kind: str
    parent_id: int | None
    title: str
    topic_id: int | None
    area_ids: list[int]
    emergency: bool
    channels: list[str]
    content: dict[str, dict[str, str]]
    status: str
    scheduled_for: datetime | None
    created_by: int
    approved_by: int | None
    approved_at: datetime | None
    cancelled_at: datetime | None
    started_at: datetime | None
    staged_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    report: dict[str, Any] | None = None


def _public(alert: AnyRow, report: dict[str, Any] | None = None) -> AlertPublic:
    return AlertPublic.model_validate({**alert._mapping, "report": report})


class AlertTemplatePublic(BaseModel):
    id: int
    name: str
    topic: str | None
    channels: list[str]
    content: dict[str, dict[str, str]]
    updated_at: datetime


def _template(row: AnyRow) -> AlertTemplatePublic:
    return AlertTemplatePublic.model_validate(dict(row._mapping))


@router.get("/templates")
async def list_templates(rt: RuntimeDep, agent: Writer) -> list[AlertTemplatePublic]:
    """Starting points for alerts: the composer fills its fields from one; [bracketed] parts must be replaced."""
    async with rt.transaction() as tx:
        return [_template(t) for t in await alerts.templates(tx.conn)]


@router.post("/templates", status_code=status.HTTP_201_CREATED)
async def create_template(payload: AlertTemplateIn, rt: RuntimeDep, agent: Writer) -> AlertTemplatePublic:
    return await _save_template(rt, agent, None, payload)


@router.put("/templates/{template_id}")
async def update_template(
    template_id: int, payload: AlertTemplateIn, rt: RuntimeDep, agent: Writer
) -> AlertTemplatePublic:
    return await _save_template(rt, agent, template_id, payload)


async def _save_template(
    rt: Runtime, agent: CurrentAgent, template_id: int | None, payload: AlertTemplateIn
) -> AlertTemplatePublic:
    try:
        async with rt.transaction() as tx:
            saved = await service.save_template(tx.conn, agent, template_id, payload, utcnow())
            found = await alerts.template(tx.conn, saved)
    except IntegrityError:
        raise Problem(409, f"There is already an alert template named '{payload.name}'.") from None
    if found is None:  # deleted by someone else between the two statements
        raise Problem(404, f"There is no alert template {saved}.")
    return _template(found)


@router.delete("/templates/{template_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_template(template_id: int, rt: RuntimeDep, agent: Writer) -> Response:
    async with rt.transaction() as tx:
        if not await alerts.delete_template(tx.conn, template_id):
            raise Problem(404, f"There is no alert template {template_id}.")
        await audit.by_agent(tx.conn, agent.id, "delete_alert_template", "alert_template", template_id, utcnow())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/preview")
async def preview_draft(draft: AlertDraft, rt: RuntimeDep, agent: Writer) -> dict[str, Any]:
    """The composer's figures for a draft not saved yet: SMS encoding and segments per language, reading grade,
    audience per channel, total segments and time to deliver."""
    content = service.check_content(draft.content, list(draft.channels))
    async with rt.transaction() as tx:
        topic_id, area_ids = await service.audience_ids(tx.conn, draft)
        unsaved = preview.UnsavedAlert(topic_id, area_ids, list(draft.channels), content, draft.emergency)
        return await preview.preview(tx.conn, rt.settings, unsaved, utcnow())


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_alert(
    draft: AlertDraft, response: Response, rt: RuntimeDep, agent: Writer, idempotency_key: IdempotencyKey = None
) -> AlertPublic:
    """A draft alert. With an Idempotency-Key seen before from the same person: the alert it made (200)."""
    async with rt.transaction() as tx:
        alert, created = await service.create(tx.conn, agent, draft, idempotency_key, utcnow())
    if not created:
        response.status_code = status.HTTP_200_OK
    return _public(alert)


@router.get("")
async def list_alerts(
    rt: RuntimeDep,
    agent: Reader,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
) -> list[AlertPublic]:
    async with rt.transaction() as tx:
        return [_public(a) for a in await alerts.list_alerts(tx.conn, limit=limit, before_id=before)]


@router.get("/{alert_id}")
async def get_alert(alert_id: int, rt: RuntimeDep, agent: Reader) -> AlertPublic:
    """The alert and its live delivery report (counts per channel and status, progress, ETA)."""
    async with rt.transaction() as tx:
        alert = await _alert(tx.conn, alert_id)
        return _public(alert, await report.report(tx.conn, alert, utcnow()))


@router.get("/{alert_id}/preview")
async def preview_alert(alert_id: int, rt: RuntimeDep, agent: Writer) -> dict[str, Any]:
    async with rt.transaction() as tx:
        return await preview.preview(tx.conn, rt.settings, await _alert(tx.conn, alert_id), utcnow())


async def _then_fan_out(rt: Runtime, alert_id: int, start: bool) -> AlertPublic:
    if start:
        await start_fanout(rt, alert_id)
    async with rt.transaction() as tx:
        alert = await _alert(tx.conn, alert_id)
        return _public(alert, await report.report(tx.conn, alert, utcnow()))


@router.post("/{alert_id}/send")
async def send_alert(alert_id: int, rt: RuntimeDep, agent: Writer) -> AlertPublic:
    """Send a draft now, at its send_at, or (emergency, all residents) to a second person for approval."""
    async with rt.transaction() as tx:
        start = await service.send(tx.conn, rt.settings, agent, alert_id, utcnow())
    return await _then_fan_out(rt, alert_id, start)


@router.post("/{alert_id}/approve")
async def approve_alert(alert_id: int, rt: RuntimeDep, agent: Writer) -> AlertPublic:
    async with rt.transaction() as tx:
        start = await service.approve(tx.conn, agent, alert_id, utcnow())
    return await _then_fan_out(rt, alert_id, start)


@router.post("/{alert_id}/cancel")
async def cancel_alert(alert_id: int, rt: RuntimeDep, agent: Writer) -> AlertPublic:
    """Stop it: deliveries not yet handed to a provider are cancelled at once."""
    async with rt.transaction() as tx:
        await service.cancel(tx.conn, agent, alert_id, utcnow())
    return await _then_fan_out(rt, alert_id, False)


@router.post("/{alert_id}/updates", status_code=status.HTTP_201_CREATED)
async def follow_up_alert(
    alert_id: int,
    payload: FollowUp,
    response: Response,
    rt: RuntimeDep,
    agent: Writer,
    idempotency_key: IdempotencyKey = None,
) -> AlertPublic:
    """An update or an all-clear to everyone the alert reached, now."""
    async with rt.transaction() as tx:
        alert, created = await service.follow_up(tx.conn, agent, alert_id, payload, idempotency_key, utcnow())
    if not created:
        response.status_code = status.HTTP_200_OK
    return await _then_fan_out(rt, alert.id, created)


@router.get("/{alert_id}/deliveries")
async def list_deliveries(
    alert_id: int,
    rt: RuntimeDep,
    agent: Writer,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT)] = 100,
) -> dict[str, Any]:
    """Per-recipient detail, by cursor (`after` = the last id seen). Reading residents' numbers is audited."""
    async with rt.transaction() as tx:
        await _alert(tx.conn, alert_id)
        rows = await alerts.deliveries(tx.conn, alert_id, after_id=after, limit=limit + 1)
        page = rows[:limit]
        await audit.by_agent(
            tx.conn, agent.id, "read_alert_deliveries", "alert", alert_id, utcnow(), {"after": after, "n": len(page)}
        )
    return {
        "items": [dict(r._mapping) for r in page],
        "next_after": page[-1].id if len(rows) > limit else None,
    }


CSV_COLUMNS = ("id", "channel", "to_address", "language", "status", "attempts", "error_code", "last_error",
               "fallback_of_id", "sent_at", "updated_at")  # fmt: skip


@router.get("/{alert_id}/deliveries.csv", response_class=StreamingResponse)
async def export_deliveries(alert_id: int, rt: RuntimeDep, agent: Writer) -> StreamingResponse:
    """Every delivery as CSV, streamed page by page (an alert to the whole city is tens of thousands of rows)."""
    async with rt.transaction() as tx:
        await _alert(tx.conn, alert_id)
        await audit.by_agent(tx.conn, agent.id, "export_alert_deliveries", "alert", alert_id, utcnow())

    async def rows() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        after = 0
        while True:
            async with rt.transaction() as tx:
                page = await alerts.deliveries(tx.conn, alert_id, after_id=after, limit=PAGE_LIMIT)
            for r in page:
                writer.writerow(["" if r._mapping[c] is None else r._mapping[c] for c in CSV_COLUMNS])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if len(page) < PAGE_LIMIT:
                return
            after = page[-1].id

    filename = f"alert-{alert_id}-deliveries.csv"
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def _alert(conn: AsyncConnection, alert_id: int) -> AnyRow:
    alert = await alerts.get(conn, alert_id)
    if alert is None:
        raise Problem(404, f"There is no alert {alert_id}.")
    return alert
