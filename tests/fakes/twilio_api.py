"""A fake Twilio REST API (Messages.json) on a real local socket: checks requests against Twilio's OpenAPI
spec, answers like Twilio, can be scripted to fail, and sends signed webhooks (status callbacks) to the hub.

    async with FakeTwilioApi(account_sid, auth_token) as fake:
        fake.push(error(400, 21211, "Invalid 'To' Phone Number"), hang())
        client.api.base_url = fake.base_url

Run on its own (for tests that kill processes): python -m tests.fakes.twilio_api --port 0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import re
import secrets
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from multidict import MultiDict, MultiDictProxy
from twilio.request_validator import RequestValidator

from tests.support.corpus import TWILIO

DEFAULT_SPEC_PATH = TWILIO / "openapi" / "twilio_api_v2010.json"
MESSAGES_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
API_VERSION = "2010-04-01"
# Twilio fills "from" from the Messaging Service's sender pool; any fixed number will do for a fake.
SERVICE_POOL_SENDER = "+15005550006"

logger = logging.getLogger("tests.fakes.twilio_api")


# ---------------------------------------------------------------- scripted behaviours


class BehaviourKind(StrEnum):
    ACCEPT = "accept"
    ERROR = "error"
    HANG = "hang"
    DROP_AFTER_ACCEPT = "drop_after_accept"


@dataclass(frozen=True)
class Behaviour:
    """What the fake does with one well-formed request."""

    kind: BehaviourKind
    status: int = 201
    code: int | None = None
    message: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)


def accept() -> Behaviour:
    return Behaviour(BehaviourKind.ACCEPT)


def error(status: int, code: int, message: str) -> Behaviour:
    """A Twilio error answer, e.g. error(400, 21211, "Invalid 'To' Phone Number")."""
    return Behaviour(BehaviourKind.ERROR, status=status, code=code, message=message)


def rate_limited(retry_after: float | None = None) -> Behaviour:
    headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
    return Behaviour(BehaviourKind.ERROR, status=429, code=20429, message="Too Many Requests", headers=headers)


def server_error(status: int = 500) -> Behaviour:
    message = "Service Unavailable" if status == 503 else "Internal Server Error"
    return Behaviour(BehaviourKind.ERROR, status=status, code=20000 + status, message=message)


def hang() -> Behaviour:
    """Hold the request without answering until release_hung() (then 503) or the client gives up."""
    return Behaviour(BehaviourKind.HANG)


def drop_after_accept() -> Behaviour:
    """Record the message as accepted, then close the connection without a response: the ambiguous case."""
    return Behaviour(BehaviourKind.DROP_AFTER_ACCEPT)


# ---------------------------------------------------------------- records


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    params: tuple[tuple[str, str], ...]
    authorized: bool
    outcome: str  # "accepted", "error 400/21211", "unauthorized", "spec violation", "hang", "dropped"


@dataclass(frozen=True)
class AcceptedMessage:
    sid: str
    account_sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str | None
    status_callback: str | None
    media_urls: tuple[str, ...] = ()
    # When the fake accepted it (time.monotonic(): one clock for every process on the machine), to measure rates.
    received_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class SignedWebhook:
    """A webhook as Twilio would send it: POST these form fields to url with these headers."""

    url: str
    fields: tuple[tuple[str, str], ...]
    headers: Mapping[str, str]
    message_sid: str


# Posts a SignedWebhook somewhere and returns (HTTP status, body text).
WebhookSender = Callable[[SignedWebhook], Awaitable[tuple[int, str]]]


@dataclass(frozen=True)
class WebhookDelivery:
    """What the hub answered to a webhook the fake sent it."""

    message_sid: str
    status: int
    text: str


# ---------------------------------------------------------------- the spec


@dataclass(frozen=True)
class CreateMessageSpec:
    """The parts of the OpenAPI spec's CreateMessage operation that the fake enforces."""

    properties: Mapping[str, Mapping[str, Any]]
    required: frozenset[str]
    account_sid_pattern: re.Pattern[str]
    content_types: frozenset[str]


def _resolve(spec: Mapping[str, Any], schema: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str):
        return schema
    node: Any = spec
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return _resolve(spec, node)


@lru_cache(maxsize=4)
def load_create_message_spec(path: Path = DEFAULT_SPEC_PATH) -> CreateMessageSpec:
    spec = json.loads(path.read_text(encoding="utf-8"))
    operation = spec["paths"][MESSAGES_PATH]["post"]
    content = operation["requestBody"]["content"]
    body_schema = content["application/x-www-form-urlencoded"]["schema"]
    properties = {name: _resolve(spec, prop) for name, prop in body_schema["properties"].items()}
    (account_param,) = (p for p in operation["parameters"] if p["name"] == "AccountSid")
    return CreateMessageSpec(
        properties=properties,
        required=frozenset(body_schema.get("required", [])),
        account_sid_pattern=re.compile(account_param["schema"]["pattern"]),
        content_types=frozenset(content),
    )


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in {"http", "https"} and bool(parts.hostname) and "_" not in (parts.hostname or "")


def _value_problem(name: str, value: str, schema: Mapping[str, Any]) -> str | None:
    """Why `value` breaks the property's schema, or None. Form values are strings; typed ones are parsed."""
    kind = schema.get("type")
    if kind == "array":
        return _value_problem(name, value, schema.get("items", {}))
    if kind == "boolean" and value not in {"true", "false"}:
        return f"{name}={value!r} is not a boolean"
    if kind in {"integer", "number"}:
        try:
            float(value) if kind == "number" else int(value)
        except ValueError:
            return f"{name}={value!r} is not {'a number' if kind == 'number' else 'an integer'}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{name}={value!r} is not one of {schema['enum']}"
    if "pattern" in schema and re.search(schema["pattern"], value) is None:
        return f"{name}={value!r} does not match {schema['pattern']}"
    if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", math.inf):
        return f"{name}={value!r} has the wrong length"
    ignore_format = schema.get("x-twilio", {}).get("ignoreFormat", False)
    if schema.get("format") == "uri" and not ignore_format and not _is_http_url(value):
        return f"{name}={value!r} is not an http(s) URL with a valid hostname"
    return None


def spec_violations(spec: CreateMessageSpec, form: MultiDictProxy[str]) -> list[tuple[int, str]]:
    """(Twilio error code, description) for each way the form breaks the CreateMessage request body."""
    problems: list[tuple[int, str]] = []
    for name in sorted(set(form.keys())):
        schema = spec.properties.get(name)
        values = form.getall(name)
        if schema is None:
            problems.append((20001, f"unknown parameter {name!r}"))
            continue
        if schema.get("type") != "array" and len(values) > 1:
            problems.append((20001, f"{name} given {len(values)} times"))
        problems.extend((21601, p) for v in values if (p := _value_problem(name, v, schema)) is not None)
    for name in sorted(spec.required - set(form.keys())):
        problems.append((21604 if name == "To" else 20001, f"required parameter {name} is missing"))
    if not (form.get("From") or form.get("MessagingServiceSid")):
        problems.append((21603, "one of From or MessagingServiceSid is required"))
    if not (form.get("Body") or form.get("MediaUrl") or form.get("ContentSid")):
        problems.append((21602, "one of Body, MediaUrl or ContentSid is required"))
    return problems


# ---------------------------------------------------------------- message details


_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")


def count_segments(body: str) -> int:
    """SMS segments as carriers count them: GSM-7 160/153 septets, else UCS-2 70/67 code units."""
    if all(c in _GSM7_BASIC or c in _GSM7_EXTENDED for c in body):
        units, single, multi = sum(2 if c in _GSM7_EXTENDED else 1 for c in body), 160, 153
    else:
        units, single, multi = len(body.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else math.ceil(units / multi)


def new_sid(prefix: str = "SM") -> str:
    return prefix + secrets.token_hex(16)


def _twilio_error_body(status: int, code: int, message: str) -> dict[str, object]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _error_response(status: int, code: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(_twilio_error_body(status, code, message), status=status, headers=headers)


def _message_resource(msg: AcceptedMessage, now: datetime) -> dict[str, object]:
    uri = f"/{API_VERSION}/Accounts/{msg.account_sid}/Messages/{msg.sid}"
    stamp = format_datetime(now)
    return {
        "account_sid": msg.account_sid,
        "api_version": API_VERSION,
        "body": msg.body,
        "date_created": stamp,
        "date_sent": None,
        "date_updated": stamp,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": msg.from_,
        "messaging_service_sid": msg.messaging_service_sid,
        "num_media": str(len(msg.media_urls)),
        "num_segments": str(count_segments(msg.body or "")),
        "price": None,
        "price_unit": "USD",
        "sid": msg.sid,
        # Twilio answers "accepted" when a Messaging Service still has to pick the sender.
        "status": "queued" if msg.from_ else "accepted",
        "subresource_uris": {"media": f"{uri}/Media.json"},
        "to": msg.to,
        "uri": f"{uri}.json",
    }


# ---------------------------------------------------------------- the server


class FakeTwilioApi:
    """The fake API server. Behaviours pushed with push() apply, in order, to the next well-formed requests;
    with none queued, requests are accepted."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        spec_path: Path = DEFAULT_SPEC_PATH,
        webhook_sender: WebhookSender | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.requests: list[RecordedRequest] = []
        self.accepted: list[AcceptedMessage] = []
        self.violations: list[str] = []
        self.held = 0  # requests being held by hang() right now
        # None: webhooks go out over real HTTP (aiohttp); set it to reach an app served in-process.
        self.webhook_sender = webhook_sender
        self._spec = load_create_message_spec(spec_path)
        self._host = host
        self._port = port
        self._behaviours: deque[Behaviour] = deque()
        self._changed = asyncio.Condition()
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._base_url: str | None = None

    @property
    def base_url(self) -> str:
        """Where it listens, e.g. "http://127.0.0.1:41234": set it as the twilio client's api.base_url."""
        if self._base_url is None:
            raise RuntimeError("FakeTwilioApi is not started")
        return self._base_url

    # -- lifecycle

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(MESSAGES_PATH, self._create_message)
        app.router.add_get("/_fake/accepted", self._list_accepted)
        # handler_cancellation: a hung request must end when the client hangs up, like a real server's would.
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        sockets = self._runner.addresses
        host, port = sockets[0][:2]
        self._base_url = f"http://{host}:{port}"

    async def stop(self) -> None:
        self.release_hung()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- scripting and waiting

    def push(self, *behaviours: Behaviour) -> None:
        self._behaviours.extend(behaviours)

    def release_hung(self) -> None:
        """Let every held request finish (with a 503: a hung request is never accepted)."""
        self._release.set()
        # Held handlers wait on the event just set; later hang() behaviours wait on a fresh one.
        self._release = asyncio.Event()

    # A bounded wait is what these are for; asyncio.timeout does the bounding inside.
    async def wait_for(self, n_accepted: int, timeout: float = 5.0) -> list[AcceptedMessage]:  # noqa: ASYNC109
        """Wait until at least n_accepted messages were accepted; returns them all."""
        await self._wait_until(lambda: len(self.accepted) >= n_accepted, timeout)
        return list(self.accepted)

    async def wait_for_requests(
        self,
        n_requests: int,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[RecordedRequest]:
        """Wait until at least n_requests requests arrived (whatever became of them)."""
        await self._wait_until(lambda: len(self.requests) >= n_requests, timeout)
        return list(self.requests)

    async def _wait_until(self, predicate: Callable[[], bool], limit: float) -> None:
        async with asyncio.timeout(limit), self._changed:
            await self._changed.wait_for(predicate)

    async def _record(self, request: RecordedRequest, message: AcceptedMessage | None = None) -> None:
        async with self._changed:
            self.requests.append(request)
            if message is not None:
                self.accepted.append(message)
            self._changed.notify_all()

    # -- the API

    async def _create_message(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        params = tuple((k, str(v)) for k, v in form.items())
        text_form = MultiDictProxy(MultiDict(params))

        def record(outcome: str, *, authorized: bool = True) -> RecordedRequest:
            return RecordedRequest(request.method, request.path, params, authorized, outcome)

        path_sid = request.match_info["AccountSid"]
        if not self._authorized(request, path_sid):
            await self._record(record("unauthorized", authorized=False))
            return _error_response(401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'})

        problems = self._request_problems(request, path_sid, text_form)
        if problems:
            self.violations.extend(f"POST {request.path}: {p}" for _, p in problems)
            await self._record(record("spec violation"))
            code, first = problems[0]
            return _error_response(400, code, first)

        behaviour = self._behaviours.popleft() if self._behaviours else accept()
        if behaviour.kind is BehaviourKind.ERROR:
            await self._record(record(f"error {behaviour.status}/{behaviour.code}"))
            return _error_response(behaviour.status, behaviour.code or 0, behaviour.message, behaviour.headers)
        if behaviour.kind is BehaviourKind.HANG:
            self.held += 1
            try:
                await self._record(record("hang"))
                await self._release.wait()
            finally:
                self.held -= 1
            return _error_response(503, 20503, "Service Unavailable")

        message = self._message_from(path_sid, text_form)
        if behaviour.kind is BehaviourKind.DROP_AFTER_ACCEPT:
            await self._record(record("dropped"), message)
            return self._drop_connection(request)
        await self._record(record("accepted"), message)
        return web.json_response(_message_resource(message, datetime.now(UTC)), status=201)

    def _authorized(self, request: web.Request, path_sid: str) -> bool:
        header = request.headers.get("Authorization", "")
        try:
            auth = aiohttp.BasicAuth.decode(header)
        except ValueError:
            return False
        credentials_match = (auth.login, auth.password) == (self.account_sid, self.auth_token)
        return credentials_match and path_sid == self.account_sid

    def _request_problems(
        self, request: web.Request, path_sid: str, form: MultiDictProxy[str]
    ) -> list[tuple[int, str]]:
        problems: list[tuple[int, str]] = []
        if request.content_type not in self._spec.content_types:
            problems.append((20001, f"Content-Type {request.content_type!r} is not one the spec accepts"))
        if self._spec.account_sid_pattern.search(path_sid) is None:
            problems.append((20001, f"AccountSid {path_sid!r} in the path does not match the spec's pattern"))
        problems.extend(spec_violations(self._spec, form))
        return problems

    @staticmethod
    def _message_from(account_sid: str, form: MultiDictProxy[str]) -> AcceptedMessage:
        return AcceptedMessage(
            sid=new_sid(),
            account_sid=account_sid,
            to=form["To"],
            from_=form.get("From"),
            messaging_service_sid=form.get("MessagingServiceSid"),
            body=form.get("Body"),
            status_callback=form.get("StatusCallback"),
            media_urls=tuple(form.getall("MediaUrl", [])),
        )

    @staticmethod
    def _drop_connection(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            # abort (RST), not close: the client must not read a partial answer as a clean end.
            transport.abort()
        # Handler cancellation follows the lost connection; raising keeps aiohttp from writing a response.
        raise asyncio.CancelledError

    async def _list_accepted(self, request: web.Request) -> web.Response:
        return web.json_response([asdict(m) for m in self.accepted])

    # -- webhooks to the hub

    def status_callback(
        self, sid: str, status: str, error_code: int | str | None = None, *, url: str | None = None
    ) -> SignedWebhook:
        """The signed status callback Twilio would POST for an accepted message (to `url` if given)."""
        message = next((m for m in self.accepted if m.sid == sid), None)
        if message is None:
            raise KeyError(f"no accepted message {sid}")
        target = url or message.status_callback
        if target is None:
            raise ValueError(f"message {sid} was sent without a StatusCallback")
        fields = [
            ("AccountSid", message.account_sid),
            ("ApiVersion", API_VERSION),
            ("From", message.from_ or SERVICE_POOL_SENDER),
            ("MessageSid", sid),
            ("MessageStatus", status),
            ("SmsSid", sid),
            ("SmsStatus", status),
            ("To", message.to),
        ]
        if message.messaging_service_sid:
            fields.append(("MessagingServiceSid", message.messaging_service_sid))
        if error_code is not None:
            fields.append(("ErrorCode", str(error_code)))
        return self.sign(target, fields, message_sid=sid)

    def inbound_message(
        self,
        url: str,
        *,
        from_: str,
        to: str,
        body: str,
        media: Sequence[tuple[str, str]] = (),
        messaging_service_sid: str | None = None,
    ) -> SignedWebhook:
        """The signed webhook Twilio would POST when a resident texts `to`; media: (url, content type)."""
        sid = new_sid("MM" if media else "SM")
        fields = [
            ("AccountSid", self.account_sid),
            ("ApiVersion", API_VERSION),
            ("Body", body),
            ("From", from_),
            ("MessageSid", sid),
            ("NumMedia", str(len(media))),
            ("NumSegments", str(count_segments(body))),
            ("SmsMessageSid", sid),
            ("SmsSid", sid),
            ("SmsStatus", "received"),
            ("To", to),
        ]
        for i, (media_url, content_type) in enumerate(media):
            fields += [(f"MediaUrl{i}", media_url), (f"MediaContentType{i}", content_type)]
        if messaging_service_sid:
            fields.append(("MessagingServiceSid", messaging_service_sid))
        return self.sign(url, fields, message_sid=sid)

    def sign(self, url: str, fields: Sequence[tuple[str, str]], *, message_sid: str) -> SignedWebhook:
        """Attach the X-Twilio-Signature that Twilio would compute with our auth token."""
        signature = RequestValidator(self.auth_token).compute_signature(url, MultiDictProxy(MultiDict(fields)))
        headers = {"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1"}
        return SignedWebhook(url=url, fields=tuple(fields), headers=headers, message_sid=message_sid)

    async def send_status_callback(
        self, sid: str, status: str, error_code: int | str | None = None, *, url: str | None = None
    ) -> WebhookDelivery:
        """POST a signed status callback for an accepted message to its StatusCallback URL (or `url`)."""
        return await self.deliver(self.status_callback(sid, status, error_code, url=url))

    async def send_inbound_message(
        self,
        url: str,
        *,
        from_: str,
        to: str,
        body: str,
        media: Sequence[tuple[str, str]] = (),
        messaging_service_sid: str | None = None,
    ) -> WebhookDelivery:
        """POST a signed incoming-message webhook to `url`."""
        webhook = self.inbound_message(
            url, from_=from_, to=to, body=body, media=media, messaging_service_sid=messaging_service_sid
        )
        return await self.deliver(webhook)

    async def deliver(self, webhook: SignedWebhook) -> WebhookDelivery:
        """POST the webhook form-encoded, through webhook_sender if set (e.g. an in-process ASGI client)."""
        if self.webhook_sender is not None:
            status, text = await self.webhook_sender(webhook)
        else:
            if self._session is None:
                self._session = aiohttp.ClientSession()
            post = self._session.post(webhook.url, data=list(webhook.fields), headers=dict(webhook.headers))
            async with post as response:
                status, text = response.status, await response.text()
        return WebhookDelivery(message_sid=webhook.message_sid, status=status, text=text)


# ---------------------------------------------------------------- standalone


async def _serve(account_sid: str, auth_token: str, port: int) -> None:
    async with FakeTwilioApi(account_sid, auth_token, port=port) as fake:
        # The parent process reads this line to learn the OS-assigned port.
        sys.stdout.write(f"listening on {fake.base_url}\n")
        sys.stdout.flush()
        await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0, help="0: let the OS choose (printed on stdout)")
    parser.add_argument("--account-sid", default="AC" + "0" * 32)
    parser.add_argument("--auth-token", default="fake-twilio-auth-token")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.account_sid, args.auth_token, args.port))


if __name__ == "__main__":
    main()
