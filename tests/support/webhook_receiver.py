"""A real webhook receiver on a local socket (aiohttp.web on 127.0.0.1, a free port): records every request the
hub makes, and can be scripted to answer with errors, drop the connection, hang, or redirect before it succeeds.

    async with WebhookReceiver() as receiver:
        receiver.push(Reply(500), Reply(503), Reply(drop=True))  # then 204 for everything after
        ... register receiver.url with allow_private ...
        await receiver.wait_for_successes(1)
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from aiohttp import web

PATH = "/hooks/carehub"


@dataclass(frozen=True)
class Reply:
    """How the receiver answers one request."""

    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    drop: bool = False  # reset the connection without answering
    hang: bool = False  # never answer (the hub's timeout ends it)


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]  # names lower-cased
    body: str
    answered: int | None  # the status sent back; None if the connection was dropped or hung

    @property
    def event_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def succeeded(self) -> bool:
        return self.answered is not None and 200 <= self.answered < 300


class WebhookReceiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._script: deque[Reply] = deque()
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """e.g. http://127.0.0.1:41234/hooks/carehub"""
        if self._url is None:
            raise RuntimeError("WebhookReceiver is not started")
        return self._url

    @property
    def port(self) -> int:
        return int(self.url.split(":")[2].split("/")[0])

    def push(self, *replies: Reply) -> None:
        """Answer the next requests like this (in order), then 204 again."""
        self._script.extend(replies)

    @property
    def successes(self) -> list[Received]:
        return [r for r in self.requests if r.succeeded]

    async def wait_for_successes(self, count: int, within: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + within
        while len(self.successes) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {within}s waiting for {count} successful deliveries; got "
                    f"{[(r.event_id, r.answered) for r in self.requests]}"
                )
            await asyncio.sleep(0.02)
        return self.successes

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._receive)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self._url = f"http://{host}:{port}{PATH}"

    async def stop(self) -> None:
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

    async def _receive(self, request: web.Request) -> web.StreamResponse:
        body = await request.text()
        reply = self._script.popleft() if self._script else Reply()
        headers = {k.lower(): v for k, v in request.headers.items()}
        if reply.drop or reply.hang:
            self.requests.append(Received(headers, body, None))
            if reply.hang:
                await asyncio.Event().wait()  # until the client gives up (handler cancellation)
            transport = request.transport
            if transport is not None:
                transport.abort()  # a reset, not a clean close
            raise asyncio.CancelledError  # keeps aiohttp from writing a response
        self.requests.append(Received(headers, body, reply.status))
        return web.Response(status=reply.status, headers=reply.headers, text=reply.body)
