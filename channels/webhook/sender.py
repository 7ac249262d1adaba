"""Sends an event to a webhook endpoint: one signed HTTPS POST (Standard Webhooks headers) through aiohttp, to
checked addresses only, every outcome classified. Timeouts count as transient: receivers dedupe by webhook-id,
so sending an event again is safe, unlike a text or a mail."""

from __future__ import annotations

import logging
import time
from typing import ClassVar

import aiohttp
from yarl import URL

from channels.base import (
    ChannelKind,
    OutboundEnvelope,
    OutboundWebhook,
    PermanentSendError,
    SendResult,
    TransientSendError,
)
from channels.sms.twilio import parse_retry_after
from channels.webhook.addresses import GuardedResolver, RefusedAddress, check_address, literal_ip
from channels.webhook.signing import signature

log = logging.getLogger("carehub.webhooks")

USER_AGENT = "carehub-webhooks/1"
EXCERPT_BYTES = 4096  # of a response body: enough for an error message, never a whole page
EXCERPT_CHARS = 300
# Worth trying again later: timeout, too early, rate limited, and the server's own trouble (5xx).
_TRANSIENT_STATUSES = frozenset({408, 425, 429})


class TargetRefused(Exception):
    """A URL webhooks must not call: wrong scheme, or a literal address that is off limits."""


def check_target(url: str, *, allow_private: bool) -> URL:
    """The URL, if a webhook may be sent there: https (plain http only where an admin allowed private targets,
    i.e. inside the city's network), and a literal IP host must be public unless allowed. Host names are checked
    when they are resolved (GuardedResolver)."""
    target = URL(url)
    schemes = ("https", "http") if allow_private else ("https",)
    if target.scheme not in schemes:
        raise TargetRefused(
            f"refused: {target.scheme or 'no'} scheme; webhooks go over https "
            "(plain http only to endpoints allowed private targets)"
        )
    if not target.host:
        raise TargetRefused("refused: the URL has no host")
    if not allow_private and literal_ip(target.host) is not None:
        try:
            check_address(target.host, target.host.strip("[]"))
        except RefusedAddress as exc:
            raise TargetRefused(str(exc)) from None
    return target


class WebhookSender:
    """The ChannelSender for ChannelKind.WEBHOOK. Two connection pools: one whose resolver refuses private
    addresses (every endpoint, unless allowed), one that reaches anything (endpoints an admin allowed private)."""

    kind: ClassVar[ChannelKind] = ChannelKind.WEBHOOK

    def __init__(self, *, timeout: float) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._sessions: dict[bool, aiohttp.ClientSession] = {}
        self._resolvers: list[GuardedResolver] = []  # a connector closes only resolvers it made itself

    def _session(self, allow_private: bool) -> aiohttp.ClientSession:
        session = self._sessions.get(allow_private)
        if session is None or session.closed:
            # Created on first use, inside the running loop (aiohttp binds a session to its loop).
            resolver = None if allow_private else GuardedResolver()
            if resolver is not None:
                self._resolvers.append(resolver)
            connector = aiohttp.TCPConnector(resolver=resolver, limit=100, limit_per_host=10)
            session = aiohttp.ClientSession(connector=connector, timeout=self._timeout, trust_env=False)
            self._sessions[allow_private] = session
        return session

    async def send(self, env: OutboundEnvelope) -> SendResult:
        hook = env.webhook
        if hook is None:
            raise PermanentSendError("no webhook target was given for this delivery", code="no-target")
        try:
            url = check_target(hook.url, allow_private=hook.allow_private)
        except TargetRefused as exc:
            raise PermanentSendError(str(exc), code="refused-target") from None
        status, headers, excerpt = await self._post(url, hook, env.body)
        if 200 <= status < 300:
            return SendResult(provider_id=f"{env.outbox_id}:http-{status}")
        raise _failure(status, headers, excerpt)

    async def _post(self, url: URL, hook: OutboundWebhook, body: str) -> tuple[int, dict[str, str], str]:
        timestamp = int(time.time())
        headers = {
            "webhook-id": hook.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(hook.secret, hook.event_id, timestamp, body),
            "carehub-event-type": hook.event_type,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        try:
            async with self._session(hook.allow_private).post(
                url, data=body.encode(), headers=headers, allow_redirects=False
            ) as response:
                raw = await response.content.read(EXCERPT_BYTES)
                return response.status, dict(response.headers), raw.decode("utf-8", "replace")
        except RefusedAddress as exc:
            raise PermanentSendError(str(exc), code="refused-address") from None
        except aiohttp.InvalidURL as exc:
            raise PermanentSendError(f"invalid URL: {exc}", code="invalid-url") from None
        except TimeoutError:
            # The receiver may have the event already; sending it again is safe because receivers dedupe by
            # webhook-id (Standard Webhooks), so a timeout is retried like a refused connection.
            raise TransientSendError(f"no answer within {self._timeout.total:g} s", code="timeout") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise TransientSendError(f"connection failed: {_describe(exc)}", code="connection") from None

    async def aclose(self) -> None:
        for session in self._sessions.values():
            await session.close()
        for resolver in self._resolvers:
            await resolver.close()
        self._sessions.clear()
        self._resolvers.clear()


def _failure(status: int, headers: dict[str, str], excerpt: str) -> TransientSendError | PermanentSendError:
    said = " ".join(excerpt.split())[:EXCERPT_CHARS]
    message = f"the endpoint answered HTTP {status}" + (f": {said}" if said else "")
    if status in _TRANSIENT_STATUSES or status >= 500:
        retry_after = parse_retry_after(headers) if status in (429, 503) else None
        return TransientSendError(message, code=f"http-{status}", retry_after=retry_after)
    if 300 <= status < 400:
        where = headers.get("Location", "elsewhere")
        return PermanentSendError(
            f"the endpoint redirected to {where} (HTTP {status}); redirects are not followed: register the final URL",
            code=f"http-{status}",
        )
    return PermanentSendError(message, code=f"http-{status}")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
