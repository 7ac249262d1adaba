"""The chat wire protocol (docs/chat-protocol.md): the frames a resident's widget sends, validated, and the frames
the hub sends back, built as JSON text once and passed on as is."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

WS_MAX_FRAME_BYTES = 8 * 1024  # a 2,000-character message is at most ~8 KB of UTF-8 JSON; larger closes with 1009
# How uvicorn serves WebSockets for the hub (carehub serve, and the tests' live hub): the sans-I/O implementation
# (about half the memory per socket of the legacy one), the frame limit, and no permessage-deflate (chat frames are
# a few hundred bytes: compressing them saves little and costs ~40 KB per socket). docs/benchmarks.md measures it.
WS_SERVER_OPTIONS: dict[str, Any] = {
    "ws": "websockets-sansio",
    "ws_max_size": WS_MAX_FRAME_BYTES,
    "ws_per_message_deflate": False,
}
HELLO_TIMEOUT_SECONDS = 10.0

# At least 96 bits of randomness in practice: a first message's client id finds its conversation again for a while.
ClientId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{16,64}$")]


class _Frame(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Hello(_Frame):
    type: Literal["hello"]
    token: str | None = Field(default=None, max_length=200)
    last_seq: int = Field(default=0, ge=0)
    lang: str = Field(default="en", max_length=16)


class SendMessage(_Frame):
    type: Literal["message"]
    cid: ClientId
    body: str = Field(max_length=20_000)  # the configured limit (chat_max_chars) is checked with a kind answer
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=32)


class Typing(_Frame):
    type: Literal["typing"]
    on: bool


class Read(_Frame):
    type: Literal["read"]
    seq: int = Field(ge=0)


class Handoff(_Frame):
    type: Literal["handoff"]
    channel: Literal["email", "sms"]
    address: str = Field(min_length=1, max_length=320)


class Close(_Frame):
    type: Literal["close"]
    transcript: str | None = Field(default=None, max_length=320)


class Ping(_Frame):
    type: Literal["ping"]


ClientFrame = Annotated[SendMessage | Typing | Read | Handoff | Close | Ping | Hello, Field(discriminator="type")]
_CLIENT_FRAME: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)


class BadFrame(Exception):
    pass


def parse(text: str) -> ClientFrame:
    try:
        return _CLIENT_FRAME.validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BadFrame(f"{where}: {first['msg']}" if where else first["msg"]) from None


def frame(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, **fields}, ensure_ascii=False, separators=(",", ":"), default=_iso)


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def message_frame(*, seq: int, cid: str | None, sender: str, name: str | None, body: str, at: datetime) -> str:
    return frame("message", seq=seq, cid=cid, **{"from": sender}, name=name, body=body, at=at)


def ack_frame(cid: str, seq: int, at: datetime) -> str:
    """The commonest frame, built without the JSON encoder: a client id is [A-Za-z0-9_-] (validated), so it needs
    no escaping."""
    return f'{{"type":"ack","cid":"{cid}","seq":{seq},"at":"{_iso(at)}"}}'


PONG = frame("pong")
