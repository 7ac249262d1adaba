"""SMS through Twilio: check and read its webhooks (incoming texts, status callbacks), and send through its
REST API with the official twilio client, every failure classified as transient, permanent or ambiguous.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import aiohttp
from starlette.datastructures import ImmutableMultiDict
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from channels.base import (
    AmbiguousSendError,
    ChannelKind,
    DeliveryStatus,
    InboundMessage,
    InboundRequest,
    OutboundEnvelope,
    PermanentSendError,
    SendError,
    SendResult,
    StatusUpdate,
    TransientSendError,
    Unauthorized,
)
from channels.sms.numbers import to_e164

logger = logging.getLogger("carehub.sms.twilio")

SIGNATURE_HEADER = "x-twilio-signature"
OUTBOX_ID_PARAM = "d"  # the hub's StatusCallback URLs end in ?d={outbox_id}
OPTED_OUT_CODE = 21610
MAX_MEDIA = 10  # Twilio's own limit per message; bounds the loop over a NumMedia we did not choose

# Interim states map to None: they move nothing, and arrive out of order with the final ones anyway.
STATUS_MAP: Mapping[str, DeliveryStatus | None] = {
    "accepted": None,
    "scheduled": None,
    "queued": None,
    "sending": None,
    "receiving": None,
    "received": None,
    "partially_delivered": None,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}

# The request never left this machine: safe to send again.
_NOT_SENT_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectorError,  # refused, DNS, TLS handshake
    aiohttp.ConnectionTimeoutError,  # timed out while connecting
    aiohttp.InvalidURL,
)
# The request may have reached Twilio: sending again could text the resident twice.
# ServerDisconnectedError also covers a pooled keep-alive connection the server had already closed; that
# request never arrived, but it cannot be told apart from a drop after accept, so it stays ambiguous.
_MAYBE_SENT_ERRORS: tuple[type[BaseException], ...] = (
    TimeoutError,  # total timeout (asyncio.TimeoutError is TimeoutError on 3.11)
    aiohttp.ClientError,  # ServerDisconnectedError, ClientPayloadError, ClientOSError, SocketTimeoutError
    OSError,
    json.JSONDecodeError,  # a 2xx (accepted) whose body we could not read, so no sid
    UnicodeDecodeError,
)

# The last response's headers, per task: twilio's exceptions drop them, and Retry-After lives there.
_last_response_headers: ContextVar[Mapping[str, str] | None] = ContextVar("twilio_response_headers", default=None)


class _TwilioHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]  # twilio ships no type hints
    """twilio's aiohttp client with three problems fixed: it ignores its own timeout (and None tells aiohttp
    "no timeout at all"), it builds aiohttp.BasicAuth (deprecated: warns on every request), and it opens its
    ClientSession in __init__, outside any event loop. Also keeps each response's headers for Retry-After."""

    session: aiohttp.ClientSession | None

    def __init__(self, timeout: float) -> None:
        super().__init__(pool_connections=False, timeout=timeout)

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - twilio's signature, which this overrides
        allow_redirects: bool = False,
    ) -> Response:
        if self.session is None:
            self.session = aiohttp.ClientSession()
        headers = dict(headers or {})
        if auth is not None:
            headers["Authorization"] = aiohttp.encode_basic_auth(*auth)
        response: Response = await super().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            auth=None,
            timeout=timeout if timeout is not None else self.timeout,
            allow_redirects=allow_redirects,
        )
        _last_response_headers.set(response.headers)
        return response

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None


class TwilioWebhooks:
    """Checks and reads Twilio's SMS webhooks; shared by every adapter that receives Twilio's requests."""

    kind: ClassVar[ChannelKind] = ChannelKind.SMS

    def __init__(self, *, auth_token: str, default_region: str = "CA") -> None:
        self._validator = RequestValidator(auth_token)
        self._default_region = default_region

    def verify(self, req: InboundRequest) -> None:
        """Raise Unauthorized unless X-Twilio-Signature signs req.url and req.form with our auth token."""
        signature = req.headers.get(SIGNATURE_HEADER)
        if not signature:
            raise Unauthorized("no X-Twilio-Signature header")
        # JSON-bodied webhooks are signed over the URL only, with bodySHA256 standing in for the body; without
        # the raw body we cannot check that hash, and accepting would let any body ride on a signed URL.
        if "bodySHA256" in parse_qs(urlsplit(req.url).query):
            raise Unauthorized("bodySHA256-signed (JSON) webhooks are not accepted: the body cannot be checked")
        # validate() always computes two HMACs (the URL with and without its port); the URL exactly as
        # configured matches almost always, so try that one first and keep validate() for the rest.
        if hmac.compare_digest(self._validator.compute_signature(req.url, req.form), signature):
            return
        if not self._validator.validate(req.url, req.form, signature):
            raise Unauthorized("X-Twilio-Signature does not match this request")

    def parse_inbound(self, req: InboundRequest) -> list[InboundMessage]:
        """A resident's text (or MMS) to one of our numbers. Raises ValueError when it is not one."""
        form = req.form
        sid = form.get("MessageSid") or form.get("SmsSid")
        if not sid:
            raise ValueError("Twilio incoming message has no MessageSid (or SmsSid)")
        num_media = _int_field(form, "NumMedia", default=0)
        shown = range(min(num_media, MAX_MEDIA))
        meta: dict[str, object] = {
            "num_media": num_media,
            "media_urls": [form.get(f"MediaUrl{i}", "") for i in shown],
            "media_types": [form.get(f"MediaContentType{i}", "") for i in shown],
        }
        return [
            InboundMessage(
                channel=ChannelKind.SMS,
                provider_id=sid,
                from_address=self._address(form, "From"),
                to_address=self._address(form, "To"),
                body=form.get("Body", ""),
                meta=meta,
            )
        ]

    def parse_status(self, req: InboundRequest) -> StatusUpdate:
        """Twilio's word on a message we sent. Raises ValueError without a MessageSid."""
        form = req.form
        sid = form.get("MessageSid")
        if not sid:
            raise ValueError("Twilio status callback has no MessageSid")
        raw_status = form.get("MessageStatus", "")
        if raw_status not in STATUS_MAP:
            # Twilio adds states over time; an unknown one must not fail the callback (Twilio would retry it).
            logger.warning("Twilio status callback for %s with unknown MessageStatus %r", sid, raw_status)
        return StatusUpdate(
            provider_id=sid,
            status=STATUS_MAP.get(raw_status),
            outbox_id=_outbox_id(req.url),
            error_code=form.get("ErrorCode") or None,
            error_message=form.get("ErrorMessage") or None,
        )

    def _address(self, form: ImmutableMultiDict[str, str], name: str) -> str:
        raw = form.get(name)
        if not raw:
            raise ValueError(f"Twilio incoming message has no {name}")
        try:
            # The carrier already delivered from/to this number, so only refuse what is not a number at all.
            return to_e164(raw, self._default_region, require_valid=False)
        except ValueError as exc:
            raise ValueError(f"Twilio incoming message {name}: {exc}") from exc


class TwilioSmsAdapter(TwilioWebhooks):
    """The production SMS adapter: Twilio webhooks in, Twilio's Messages API out."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str | None,
        messaging_service_sid: str | None,
        api_base: str | None = None,
        timeout: float = 10.0,
        default_region: str = "CA",
    ) -> None:
        super().__init__(auth_token=auth_token, default_region=default_region)
        if not (from_number or messaging_service_sid):
            raise ValueError("Twilio needs a from_number or a messaging_service_sid to send from")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self._from_number = from_number
        self._messaging_service_sid = messaging_service_sid
        self._http = _TwilioHttpClient(timeout=timeout)
        self._client = Client(account_sid, auth_token, http_client=self._http)
        if api_base is not None:
            self._client.api.base_url = api_base

    async def send(self, env: OutboundEnvelope) -> SendResult:
        """Hand one SMS to Twilio. Raises TransientSendError, PermanentSendError or AmbiguousSendError."""
        optional: dict[str, str] = {}
        if self._from_number:
            optional["from_"] = self._from_number
        if self._messaging_service_sid:
            optional["messaging_service_sid"] = self._messaging_service_sid
        if env.status_callback_url:
            optional["status_callback"] = env.status_callback_url
        _last_response_headers.set(None)
        try:
            message: Any = await self._client.messages.create_async(to=env.to, body=env.body, **optional)
        except (TwilioRestException, TwilioServiceException) as exc:
            raise _rest_error(exc, _last_response_headers.get()) from exc
        except _NOT_SENT_ERRORS as exc:
            raise TransientSendError(f"could not reach Twilio: {_describe(exc)}", code="connect") from exc
        except _MAYBE_SENT_ERRORS as exc:
            raise AmbiguousSendError(
                f"Twilio may have accepted the message: {_describe(exc)}", code="no-response"
            ) from exc
        sid = getattr(message, "sid", None)
        if not isinstance(sid, str) or not sid:
            raise AmbiguousSendError("Twilio answered 2xx without a message sid", code="no-sid")
        return SendResult(provider_id=sid)

    async def aclose(self) -> None:
        await self._http.close()


def _rest_error(exc: TwilioRestException | TwilioServiceException, headers: Mapping[str, str] | None) -> SendError:
    status = int(exc.status)
    code = exc.code
    if isinstance(exc, TwilioServiceException):
        text = f"{exc.title}: {exc.detail}" if exc.detail else str(exc.title)
    else:
        text = str(exc.msg).removeprefix("Unable to create record: ")  # twilio's prefix, on every create
    message = f"Twilio answered {status}" + (f" (error {code})" if code else "") + f": {text}"
    if status == 429:
        return TransientSendError(message, code="429", retry_after=parse_retry_after(headers))
    if status >= 500:
        return TransientSendError(message, code=str(code or status))
    if status in (401, 403) and code != OPTED_OUT_CODE:
        # Our credentials, not the message, are wrong (e.g. mid-rotation): keep it and retry, don't lose it.
        return TransientSendError(message, code=str(code or status))
    if code == OPTED_OUT_CODE:
        return PermanentSendError(message, code=str(OPTED_OUT_CODE), opted_out=True)
    return PermanentSendError(message, code=str(code or status))


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None."""
    value = (headers or {}).get("Retry-After", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _int_field(form: ImmutableMultiDict[str, str], name: str, *, default: int) -> int:
    raw = form.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit():
        raise ValueError(f"Twilio field {name} is not a count: {raw!r}")
    return int(raw)


def _outbox_id(url: str) -> int | None:
    values = parse_qs(urlsplit(url).query).get(OUTBOX_ID_PARAM, [])
    if len(values) != 1 or not values[0].isascii() or not values[0].isdigit():
        return None
    return int(values[0])
