"""CAP import over the API: POST /api/v1/alerts/cap with a CAP 1.2 message as the body turns it into a draft for
staff (or an update, an all-clear, a cancel), never a send. Communications staff and admins only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError

from carehub.agents.auth import RuntimeDep
from carehub.alerts.endpoints import AlertPublic, Writer
from carehub.cap import importer
from carehub.cap.parse import CapRejected, parse_cap
from carehub.clock import utcnow
from carehub.problems import Problem

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])
CAP_CONTENT_TYPES = ("application/cap+xml", "application/xml", "text/xml")
MAX_CAP_BYTES = 1_000_000


class CapImportPublic(BaseModel):
    outcome: str  # drafted, duplicate, not_for_city, ignored, cancelled, nothing_to_cancel
    detail: str
    alert: AlertPublic | None
    cancelled: list[int]  # our unsent alerts this message cancelled


async def _body(request: Request) -> bytes:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in CAP_CONTENT_TYPES:
        raise Problem(
            415, f"Send the CAP message as {', '.join(CAP_CONTENT_TYPES)}, not '{content_type or 'nothing'}'."
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_CAP_BYTES:
            raise Problem(413, f"CAP messages over {MAX_CAP_BYTES:,} bytes are refused.")
        chunks.append(chunk)
    if not size:
        raise Problem(400, "The body is empty: send the CAP XML.")
    return b"".join(chunks)


@router.post(
    "/cap",
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {"required": True, "content": {t: {"schema": {"type": "string"}} for t in CAP_CONTENT_TYPES}}
    },
)
async def import_cap(request: Request, response: Response, rt: RuntimeDep, agent: Writer) -> CapImportPublic:
    """Import one CAP 1.2 (CAP-CP) message, bare or in an EDXL-DE 1.0 envelope that carries only it. 201: a draft
    was made (an alert, an update or an all-clear), for staff to review and send. 200: nothing new (duplicate, not
    for the city, a test message, a cancel). 422: refused."""
    data = await _body(request)
    try:
        cap = parse_cap(data, max_bytes=MAX_CAP_BYTES)
    except CapRejected as rejected:
        raise Problem(422, rejected.reason) from None
    now = utcnow()
    try:
        async with rt.transaction() as tx:
            result = await importer.import_cap(tx.conn, rt.settings, agent, cap, now)
    except IntegrityError:  # the same message imported at the same moment: the other request's row is the one
        async with rt.transaction() as tx:
            result = await importer.duplicate(tx.conn, agent, cap, now)
    if not result.created:
        response.status_code = status.HTTP_200_OK
    alert: dict[str, Any] | None = None if result.alert is None else dict(result.alert._mapping)
    return CapImportPublic(
        outcome=result.outcome,
        detail=result.detail,
        alert=None if alert is None else AlertPublic.model_validate(alert),
        cancelled=result.cancelled,
    )
