"""The resident's socket, /chat/ws, served straight from ASGI: the hub's busiest path skips the framework.

Every frame through a Starlette WebSocket passes its state checks and each middleware's wrapped send; measured
under load that was a tenth of the hub's time per message (docs/benchmarks.md). This is the handshake and the few
calls ChatSession needs, on the server's own receive and send; CarehubApp (carehub/app.py) routes /chat/ws here."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import Receive, Scope, Send

PATH = "/chat/ws"


class Disconnected(Exception):
    """The client went away (or closed): nothing more to read."""


class NotText(Exception):
    """A binary frame: the protocol is JSON text."""


class ChatSocket:
    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self.headers: Mapping[str, str] = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client")
        self.ip: str = client[0] if client else "unknown"
        self.open = False

    async def accept(self) -> bool:
        """Complete the handshake; False if the client left before it."""
        message = await self._receive()
        if message["type"] != "websocket.connect":
            return False
        await self._send({"type": "websocket.accept"})
        self.open = True
        return True

    async def refuse(self, code: int, reason: str) -> None:
        """Refuse the handshake (the server answers 403), e.g. for an origin that may not embed the chat."""
        message = await self._receive()
        if message["type"] == "websocket.connect":
            await self._send({"type": "websocket.close", "code": code, "reason": reason})

    async def receive_text(self) -> str:
        message = await self._receive()
        if message["type"] == "websocket.receive":
            text = message.get("text")
            if text is None:
                raise NotText
            return str(text)
        self.open = False
        raise Disconnected

    async def send_text(self, text: str) -> None:
        await self._send({"type": "websocket.send", "text": text})

    async def close(self, code: int, reason: str) -> None:
        if self.open:
            self.open = False
            await self._send({"type": "websocket.close", "code": code, "reason": reason})
