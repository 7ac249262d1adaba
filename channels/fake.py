"""A recording channel adapter for unit tests: remembers what it was asked to send, fails on cue, and reads a
plain test form ("id", "from", "to", "body"; "status", "outbox_id" for status updates) as webhooks.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable
from typing import ClassVar

from channels.base import (
    ChannelKind,
    DeliveryStatus,
    InboundMessage,
    InboundRequest,
    OutboundEnvelope,
    SendResult,
    StatusUpdate,
    Unauthorized,
)


class RecordingAdapter:
    """Records every send; `fail_next` scripts errors for the next sends; `gate` can hold sends in flight.

    kind is a class variable (the adapter contract says so): use RecordingAdapter.for_kind(kind) for
    email or chat.
    """

    kind: ClassVar[ChannelKind] = ChannelKind.SMS

    def __init__(self) -> None:
        self.attempts: list[OutboundEnvelope] = []  # every send call, failed ones included
        self.sent: list[OutboundEnvelope] = []  # only the ones that returned a SendResult
        self.results: list[SendResult] = []
        self.reject_webhooks = False
        self.closed = False
        # Cleared, sends wait (after being recorded as attempts) until it is set again.
        self.gate = asyncio.Event()
        self.gate.set()
        self._failures: deque[BaseException] = deque()
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()

    @classmethod
    def for_kind(cls, kind: ChannelKind) -> RecordingAdapter:
        return _BY_KIND[kind]()

    def fail_next(self, error: BaseException, times: int = 1) -> None:
        """Raise `error` from the next `times` sends (after those already scripted)."""
        self._failures.extend([error] * times)

    async def send(self, env: OutboundEnvelope) -> SendResult:
        await self._record(self.attempts, env)
        await self.gate.wait()
        if self._failures:
            raise self._failures.popleft()
        result = SendResult(provider_id=f"fake-{self.kind}-{next(self._ids)}")
        self.results.append(result)
        await self._record(self.sent, env)
        return result

    # A bounded wait is what these are for; asyncio.timeout does the bounding inside.
    async def wait_for_sent(self, n: int, timeout: float = 5.0) -> list[OutboundEnvelope]:  # noqa: ASYNC109
        await self._wait_until(lambda: len(self.sent) >= n, timeout)
        return list(self.sent)

    async def wait_for_attempts(self, n: int, timeout: float = 5.0) -> list[OutboundEnvelope]:  # noqa: ASYNC109
        await self._wait_until(lambda: len(self.attempts) >= n, timeout)
        return list(self.attempts)

    def verify(self, req: InboundRequest) -> None:
        if self.reject_webhooks:
            raise Unauthorized("RecordingAdapter.reject_webhooks is set")

    def parse_inbound(self, req: InboundRequest) -> list[InboundMessage]:
        form = req.form
        missing = [name for name in ("id", "from", "to") if not form.get(name)]
        if missing:
            raise ValueError(f"fake inbound form lacks {', '.join(missing)}")
        return [
            InboundMessage(
                channel=self.kind,
                provider_id=form["id"],
                from_address=form["from"],
                to_address=form["to"],
                body=form.get("body", ""),
            )
        ]

    def parse_status(self, req: InboundRequest) -> StatusUpdate | None:
        form = req.form
        if not form.get("id"):
            raise ValueError("fake status form lacks id")
        raw_status, raw_outbox = form.get("status"), form.get("outbox_id")
        return StatusUpdate(
            provider_id=form["id"],
            status=DeliveryStatus(raw_status) if raw_status else None,
            outbox_id=int(raw_outbox) if raw_outbox else None,
            error_code=form.get("error_code") or None,
        )

    async def aclose(self) -> None:
        self.closed = True

    async def _record(self, into: list[OutboundEnvelope], env: OutboundEnvelope) -> None:
        async with self._changed:
            into.append(env)
            self._changed.notify_all()

    async def _wait_until(self, predicate: Callable[[], bool], limit: float) -> None:
        async with asyncio.timeout(limit), self._changed:
            await self._changed.wait_for(predicate)


class RecordingEmailAdapter(RecordingAdapter):
    kind: ClassVar[ChannelKind] = ChannelKind.EMAIL


class RecordingChatAdapter(RecordingAdapter):
    kind: ClassVar[ChannelKind] = ChannelKind.CHAT


_BY_KIND: dict[ChannelKind, Callable[[], RecordingAdapter]] = {
    ChannelKind.SMS: RecordingAdapter,
    ChannelKind.EMAIL: RecordingEmailAdapter,
    ChannelKind.CHAT: RecordingChatAdapter,
}
