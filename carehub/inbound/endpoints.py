"""Provider webhooks: Twilio inbound SMS and delivery status callbacks. Signature first, then parse, then store."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from starlette.datastructures import ImmutableMultiDict

from carehub.agents.auth import RuntimeDep
from carehub.alerts.fallback import stage_fallback
from carehub.alerts.fanout import enqueue_paced
from carehub.clock import utcnow
from carehub.inbound.service import receive
from carehub.outbox import repository as outbox
from carehub.problems import Problem
from carehub.runtime import Runtime
from carehub.settings import Settings
from carehub.subscriptions import service as subscriptions
from carehub.subscriptions.keywords import handle_keyword
from channels.base import ChannelAdapter, ChannelKind, DeliveryStatus, InboundRequest, Unauthorized

T = TypeVar("T")
router = APIRouter(prefix="/webhooks/twilio", tags=["webhooks"])
log = logging.getLogger("carehub.webhooks")

FAILED = (DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED)
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
MAX_FIELDS = 200


async def provider_request(request: Request, settings: Settings) -> InboundRequest:
    """The request as the provider signed it: our public URL (not the one behind a proxy) and the form fields."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise Problem(
            415,
            f"Expected application/x-www-form-urlencoded as Twilio sends it, got '{content_type or 'nothing'}'.",
        )
    body = await request.body()
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Problem(400, f"The form body could not be read: {exc}.") from exc
    url = settings.public_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    return InboundRequest(url=url, headers=request.headers, form=ImmutableMultiDict(pairs))


@router.post("/sms", response_class=Response, responses={200: {"content": {"text/xml": {}}}})
async def inbound_sms(request: Request) -> Response:
    """A resident's text. Answers with empty TwiML once the message is committed (or was already stored)."""
    rt: Runtime = request.app.state.runtime  # not a dependency: this is the hot path, and DI costs per request
    adapter, req = await verified_sms_request(request, rt)
    messages = parsed(adapter.parse_inbound, req)
    for message in messages:
        if await handle_keyword(rt, message):  # STOP, HELP, JOIN...: answered by text, never a ticket
            continue
        if await receive(rt, message) is None:
            log.info("duplicate inbound sms %s ignored", message.provider_id)
    return Response(EMPTY_TWIML, media_type="text/xml")


@router.post("/status", status_code=204, response_class=Response)
async def delivery_status(request: Request, rt: RuntimeDep) -> Response:
    """Twilio's word on a message we sent. Moves the delivery forward only; late or repeated callbacks are no-ops."""
    adapter, req = await verified_sms_request(request, rt)
    update = parsed(adapter.parse_status, req)
    if update is None or update.status is None:
        return Response(status_code=204)
    async with rt.transaction() as tx:
        now = utcnow()
        moved = await outbox.apply_status(tx.conn, ChannelKind.SMS, update, now)
        fallback = []
        if moved is not None and update.status in FAILED and update.error_code != "21610":
            fallback = await stage_fallback(tx.conn, rt, moved, now)  # an alert that could not reach the phone
        if moved is not None and update.error_code == "21610":
            target = await outbox.address_of(tx.conn, moved)
            if target is not None:  # the carrier's opt-out ends subscriptions too, and is recorded (CASL)
                await subscriptions.opt_out(
                    tx.conn,
                    channel=target[0],
                    address=target[1],
                    method=subscriptions.Method.PROVIDER_OPT_OUT,
                    wording="Twilio error 21610: the recipient has opted out",
                    now=now,
                    provider_id=update.provider_id,
                )
    await enqueue_paced(rt, fallback)
    return Response(status_code=204)


async def verified_sms_request(request: Request, rt: Runtime) -> tuple[ChannelAdapter, InboundRequest]:
    """The request, proven to come from Twilio (403 otherwise, before anything is parsed or stored)."""
    adapter = rt.sms_adapter
    req = await provider_request(request, rt.settings)
    try:
        adapter.verify(req)
    except Unauthorized as exc:
        raise Problem(
            403,
            "The X-Twilio-Signature header does not match this request. Check that CAREHUB_PUBLIC_URL is exactly "
            "the URL Twilio calls and that CAREHUB_TWILIO_AUTH_TOKEN is the account's auth token.",
        ) from exc
    return adapter, req


def parsed(parse: Callable[[InboundRequest], T], req: InboundRequest) -> T:
    try:
        return parse(req)
    except ValueError as exc:
        raise Problem(400, str(exc)) from exc
