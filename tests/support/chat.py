"""Test clients for web chat: a resident on a real WebSocket (the websockets library), and an agent reading the
live event stream (server-sent events over real HTTP). Both wait on frames with deadlines, never sleep."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

Frame = dict[str, Any]
WAIT = 10.0


def new_cid() -> str:
    return secrets.token_urlsafe(16)


@dataclass
class Resident:
    """One widget's worth of protocol: a socket, the frames it got, and what it would keep in localStorage."""

    ws: ClientConnection
    token: str | None = None
    last_seq: int = 0
    frames: list[Frame] = field(default_factory=list)

    @property
    def reference(self) -> str:
        """The ticket reference of the conversation this socket opened (from its session frame)."""
        session = next(f for f in self.frames if f["type"] == "session")
        reference: str = session["conversation"]["reference"]
        return reference

    async def send(self, **frame: Any) -> None:
        await self.ws.send(json.dumps(frame))

    async def hello(self, *, lang: str = "en") -> Frame:
        await self.send(type="hello", token=self.token, last_seq=self.last_seq, lang=lang)
        return await self.expect("welcome")

    async def say(self, body: str, *, cid: str | None = None, **first: Any) -> Frame:
        """Send a message and wait for its ack (the session frame first, if this opens the conversation)."""
        cid = cid or new_cid()
        await self.send(type="message", cid=cid, body=body, **first)
        return await self.expect("ack", cid=cid)

    async def next(self, within: float = WAIT) -> Frame:
        raw = await asyncio.wait_for(self.ws.recv(), within)
        frame: Frame = json.loads(raw)
        self.frames.append(frame)
        if frame["type"] == "session":
            self.token = frame["token"]
        if frame["type"] in ("message", "ack"):
            self.last_seq = max(self.last_seq, frame["seq"])
        return frame

    async def expect(self, kind: str, within: float = WAIT, **match: Any) -> Frame:
        """The next frame of this kind (matching `match`); frames of other kinds on the way are kept in frames."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"no {kind} frame {match or ''} within {within}s; got {self.frames[-5:]}")
            frame = await self.next(left)
            if frame["type"] == kind and all(frame.get(k) == v for k, v in match.items()):
                return frame

    async def messages(self, count: int, within: float = WAIT) -> list[Frame]:
        return [await self.expect("message", within) for _ in range(count)]


@asynccontextmanager
async def resident(
    ws_url: str, *, token: str | None = None, last_seq: int = 0, origin: str | None = None
) -> AsyncIterator[Resident]:
    headers = {"Origin": origin} if origin else None
    async with connect(ws_url, compression=None, additional_headers=headers, open_timeout=WAIT) as ws:
        yield Resident(ws, token=token, last_seq=last_seq)


@dataclass
class AgentStream:
    """The agent's live stream: events as (name, data), gathered by a background reader."""

    events: list[tuple[str, Frame]] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self, response: httpx.Response) -> None:
        name = None
        async for line in response.aiter_lines():
            if line.startswith(": connected"):
                self.connected.set()
            elif line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: ") and name is not None:
                self.events.append((name, json.loads(line.removeprefix("data: "))))
                self._arrived.set()
                name = None

    async def wait_for(self, name: str, within: float = WAIT, **match: Any) -> Frame:
        deadline = asyncio.get_running_loop().time() + within
        seen = 0
        while True:
            for event_name, data in self.events[seen:]:
                if event_name == name and all(data.get(k) == v for k, v in match.items()):
                    return data
            seen = len(self.events)
            self._arrived.clear()
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"no {name} event {match} within {within}s; got {self.events[-5:]}")
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                continue


@asynccontextmanager
async def agent_stream(base_url: str, token: str) -> AsyncIterator[AgentStream]:
    stream = AgentStream()
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(WAIT, read=None)) as client,
        client.stream("GET", "/api/v1/events", headers={"Authorization": f"Bearer {token}"}) as response,
    ):
        assert response.status_code == 200, response.status_code
        reader = asyncio.create_task(stream.read(response))
        try:
            await asyncio.wait_for(stream.connected.wait(), WAIT)
            yield stream
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await reader


async def reply(client: httpx.AsyncClient, token: str, reference: str, body: str) -> Frame:
    response = await client.post(
        f"/api/v1/tickets/{reference}/replies", json={"body": body}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 201, response.text
    result: Frame = response.json()
    return result
