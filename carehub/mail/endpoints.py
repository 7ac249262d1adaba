"""Email over HTTP: the raw-MIME webhook relays post to, the unprocessable archive staff review, attachments."""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel

from carehub import audit
from carehub.agents.auth import CurrentAgent, RuntimeDep, TicketAgent, require_role
from carehub.blobs import BlobMissing, key_for
from carehub.clock import utcnow
from carehub.mail import repository as mail
from carehub.mail.ingest import accept, parse, process
from carehub.models import InboundEmailStatus, Role
from carehub.problems import Problem
from carehub.runtime import Runtime
from carehub.tickets.reference import format_reference

webhook = APIRouter(prefix="/webhooks", tags=["webhooks"])
archive = APIRouter(prefix="/api/v1", tags=["email"])
MAIL_CONTENT_TYPES = frozenset({"message/rfc822", "application/octet-stream"})
ArchiveReader = Annotated[CurrentAgent, Depends(require_role(Role.SUPERVISOR, Role.ADMIN))]


class EmailAccepted(BaseModel):
    id: int
    status: InboundEmailStatus
    reason: str | None
    ticket: str | None
    acknowledged: bool


def download(data: bytes, filename: str, media_type: str) -> Response:
    """Bytes a browser saves and never renders in our origin (the content may be hostile). The filename header is
    one any browser reads right (RFC 6266): an ASCII fallback, and the real name UTF-8 encoded."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename)
    disposition = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
    return Response(
        data,
        media_type=media_type,
        headers={"Content-Disposition": disposition, "X-Content-Type-Options": "nosniff"},
    )


@webhook.post("/email", status_code=status.HTTP_202_ACCEPTED)
async def inbound_email(request: Request, rt: RuntimeDep) -> EmailAccepted:
    """One raw RFC 5322 message as the body (Content-Type: message/rfc822), from a relay or a mail provider,
    with 'Authorization: Bearer <CAREHUB_EMAIL_WEBHOOK_SECRET>'. 202 means stored: retry only on other answers."""
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    expected = rt.settings.email_webhook_secret.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(secret.strip().encode(), expected):
        raise Problem(401, "Send the email webhook secret as 'Authorization: Bearer <secret>'.")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in MAIL_CONTENT_TYPES:
        raise Problem(415, f"Send the raw message as message/rfc822, not '{content_type or 'nothing'}'.")
    raw = await request.body()
    if not raw:
        raise Problem(400, "The body is empty: send the raw message, headers first.")
    envelope_from = request.headers.get("x-envelope-from")
    outcome = await accept(rt, raw, source="webhook", envelope_from=envelope_from)
    return EmailAccepted(
        id=outcome.inbound_id,
        status=outcome.status,
        reason=outcome.reason,
        ticket=None if outcome.ticket_id is None else format_reference(rt.settings.ticket_prefix, outcome.ticket_id),
        acknowledged=outcome.acknowledged,
    )


class InboundEmailPublic(BaseModel):
    id: int
    received_at: datetime
    source: str
    envelope_from: str | None
    envelope_to: str | None
    size: int
    status: InboundEmailStatus
    reason: str | None
    header_message_id: str | None
    subject: str | None
    from_address: str | None
    ticket_id: int | None
    outbox_id: int | None
    attempts: int
    processed_at: datetime | None


class InboundEmailPage(BaseModel):
    items: list[InboundEmailPublic]
    next_cursor: str | None


@archive.get("/inbound-emails")
async def list_inbound_emails(
    rt: RuntimeDep,
    _agent: ArchiveReader,
    status_: Annotated[InboundEmailStatus | None, Query(alias="status")] = None,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,12}$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> InboundEmailPage:
    """Every email as received, newest first; status=unprocessable is the archive of mail that needs a person."""
    async with rt.transaction() as tx:
        rows = await mail.list_inbound(tx.conn, status_, int(cursor) if cursor else None, limit + 1)
    items = [InboundEmailPublic.model_validate(r._mapping) for r in rows[:limit]]
    return InboundEmailPage(items=items, next_cursor=str(items[-1].id) if len(rows) > limit else None)


@archive.get("/inbound-emails/{inbound_id}")
async def get_inbound_email(inbound_id: int, rt: RuntimeDep, _agent: ArchiveReader) -> InboundEmailPublic:
    async with rt.transaction() as tx:
        row = await mail.get_inbound(tx.conn, inbound_id)
    if row is None:
        raise Problem(404, f"There is no inbound email {inbound_id}.")
    return InboundEmailPublic.model_validate(row._mapping)


@archive.get("/inbound-emails/{inbound_id}/raw", response_class=Response)
async def raw_inbound_email(inbound_id: int, rt: RuntimeDep, agent: ArchiveReader) -> Response:
    """The message exactly as it arrived, as a download (never rendered: it may be hostile). Audited."""
    async with rt.transaction() as tx:
        raw = await mail.raw_of(tx.conn, inbound_id)
        if raw is None:
            raise Problem(404, f"There is no inbound email {inbound_id}.")
        await audit.record(
            tx.conn,
            actor=audit.agent_actor(agent.id),
            action="export",
            entity_type="inbound_email",
            entity_id=inbound_id,
            now=utcnow(),
        )
    return download(raw, f"inbound-{inbound_id}.eml", "message/rfc822")


@archive.post("/inbound-emails/{inbound_id}/retry")
async def retry_inbound_email(inbound_id: int, rt: RuntimeDep, agent: ArchiveReader) -> InboundEmailPublic:
    """Process an archived message again (after a fix or a configuration change)."""
    async with rt.transaction() as tx:
        if not await mail.requeue(tx.conn, inbound_id):
            raise Problem(409, f"Inbound email {inbound_id} is not in the unprocessable archive.")
        await audit.record(
            tx.conn,
            actor=audit.agent_actor(agent.id),
            action="retry",
            entity_type="inbound_email",
            entity_id=inbound_id,
            now=utcnow(),
        )
    await process(rt, inbound_id)
    return await get_inbound_email(inbound_id, rt, agent)


@archive.get("/attachments/{attachment_id}", response_class=Response)
async def download_attachment(attachment_id: int, rt: RuntimeDep, agent: TicketAgent) -> Response:
    """An attachment's bytes, always as a download (the browser must not render it in our origin). Audited."""
    async with rt.transaction() as tx:
        row = await mail.attachment(tx.conn, attachment_id)
        if row is None or not agent.can_see(row.team):
            raise Problem(404, f"There is no attachment {attachment_id} on a ticket of your teams.")
        await audit.agent_on_ticket(
            tx.conn, agent.id, "download", row.ticket_id, utcnow(), {"attachment": attachment_id}
        )
    try:
        data = await rt.blobs.get(row.blob_key)
    except BlobMissing:
        data = await _extract_again(rt, row.blob_key, (row.meta or {}).get("inbound_email_id"))
    return download(data, row.filename, "application/octet-stream")


async def _extract_again(rt: Runtime, blob_key: str, inbound_id: int | None) -> bytes:
    """The blob store lost an attachment (a crash before the disk had it): take it from the raw message again."""
    async with rt.transaction() as tx:
        raw = None if inbound_id is None else await mail.raw_of(tx.conn, inbound_id)
    if raw is not None:
        for attachment in (await parse(rt, raw)).attachments:
            if key_for(attachment.content) == blob_key:
                await rt.blobs.put(attachment.content)
                return attachment.content
    raise Problem(410, "This attachment's file is gone and could not be recovered from the original message.")
