"""Request body size limits, enforced before a handler reads the body (pure ASGI, so it costs nothing per request)."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carehub.problems import PROBLEM_JSON, problem_body


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Answer 413 problem+json for bodies over the limit, whether declared by Content-Length or streamed."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        per_path: dict[str, int] | None = None,
        per_prefix: dict[str, int] | None = None,
    ) -> None:
        self.app = app
        self.limit = limit
        self.per_path = per_path or {}
        self.per_prefix = per_prefix or {}

    def limit_for(self, path: str) -> int:
        """The exact path's limit, else the first matching prefix's, else the default."""
        if path in self.per_path:
            return self.per_path[path]
        return next((v for prefix, v in self.per_prefix.items() if path.startswith(prefix)), self.limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await self._reject(send, 400, "Content-Length is not a number.", scope["path"])
                    return
                if declared > limit:
                    await self._reject(
                        send, 413, f"The body is {declared} bytes; the limit here is {limit}.", scope["path"]
                    )
                    return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._reject(send, 413, f"The body is over the limit here of {limit} bytes.", scope["path"])

    @staticmethod
    async def _reject(send: Send, status: int, detail: str, path: str) -> None:
        body = json.dumps(problem_body(status, detail, instance=path)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
