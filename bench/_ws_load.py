"""The chat benchmark's load generator: one process holding many WebSocket clients (websockets' asyncio client on
uvloop), driven by bench/chat.py over stdin/stdout, one JSON command per line and one JSON answer per line. The
benchmark runs several of these so the load uses both cores.

Modes: `echo` (send a frame, await the same text back: bench/_ws_echo.py) and `hub` (the chat protocol of
docs/chat-protocol.md: `hello` then `welcome`; a `message` frame is answered by its `ack`, the first one also by
`session`). Every frame's body starts with "<tag> <send time, monotonic ns>", so whoever sees it later (the agent
stream reader in bench/chat.py, on the same machine and clock) can tell its delivery latency.

Commands: connect {count, concurrency, compression}, first {concurrency, tag}, loop {duration, use, tag},
rate {rate, duration, tag}, close {concurrency}, exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import resource
import secrets
import sys
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

RTT_TIMEOUT_S = 30.0  # one round trip slower than this counts as an error (and the benchmark stays bounded)
OPEN_TIMEOUT_S = 30.0
DRAIN_S = 60.0  # after a timed run, how long in-flight round trips may take to finish
MAX_SAMPLES = 50_000  # latencies returned per command (a uniform sample beyond that)
MAX_PROBLEMS = 8  # examples of each kind of unexpected frame or error kept for the report
FILLER = "The streetlight on the corner of King and Main has been out since Tuesday night, please send someone."


class Unexpected(Exception):
    """The server answered something the protocol does not allow here."""


@dataclass
class Conn:
    index: int
    ws: ClientConnection
    sent: int = 0
    exchanged: bool = False
    token: str | None = None
    abandoned: set[str] = field(default_factory=set)
    """Round trips given up on (the drain ended): their answers may still come, and are skipped when they do."""


@dataclass
class Stats:
    rng: random.Random
    completed: int = 0
    late: int = 0  # completed after the window closed
    sent: int = 0
    abandoned: int = 0  # unanswered when the drain ended
    stale: int = 0  # answers to earlier, abandoned round trips, skipped
    rtts_ms: list[float] = field(default_factory=list)
    seen: int = 0  # latencies offered to the reservoir
    errors: Counter[str] = field(default_factory=Counter)
    problems: dict[str, list[str]] = field(default_factory=dict)
    per_conn: Counter[int] = field(default_factory=Counter)

    def rtt(self, ms: float) -> None:
        self.seen += 1
        if len(self.rtts_ms) < MAX_SAMPLES:
            self.rtts_ms.append(round(ms, 3))
        else:
            slot = self.rng.randrange(self.seen)
            if slot < MAX_SAMPLES:
                self.rtts_ms[slot] = round(ms, 3)

    def error(self, kind: str, example: str) -> None:
        self.errors[kind] += 1
        examples = self.problems.setdefault(kind, [])
        if len(examples) < MAX_PROBLEMS:
            examples.append(example[:300])

    def as_json(self) -> dict[str, Any]:
        return {
            "completed": self.completed,
            "late": self.late,
            "sent": self.sent,
            "abandoned": self.abandoned,
            "stale_answers_skipped": self.stale,
            "rtts_ms": self.rtts_ms,
            "errors": dict(self.errors),
            "problems": self.problems,
        }


def _classify(exc: BaseException) -> str:
    if isinstance(exc, ConnectionClosed):
        rcvd = exc.rcvd
        return f"closed {rcvd.code} {rcvd.reason}" if rcvd is not None else "closed (no close frame)"
    if isinstance(exc, InvalidStatus):
        return f"handshake HTTP {exc.response.status_code}"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, Unexpected):
        return str(exc).split(":", 1)[0]
    return type(exc).__name__


class Load:
    def __init__(self, url: str, mode: str, worker: int, origin: str | None, forwarded: bool, body_chars: int):
        self.url = url
        self.mode = mode
        self.worker = worker
        self.origin = origin
        self.forwarded = forwarded
        self.body_chars = body_chars
        self.conns: list[Conn] = []
        self.rng = random.Random(worker)
        self.opened = 0
        # Client ids are unique across runs too: the hub treats a first message whose cid opened a conversation in
        # the last 15 minutes as that conversation's resent first message (and answers with its session).
        self.run = secrets.token_hex(4)

    # -- one socket ---------------------------------------------------------------------------------------------

    def _headers(self, index: int) -> dict[str, str]:
        # Residents come from many addresses behind the city's proxy; uvicorn trusts X-Forwarded-For from 127.0.0.1.
        if not self.forwarded:
            return {}
        return {"X-Forwarded-For": f"10.{self.worker % 250}.{index // 250 % 250}.{index % 250 + 1}"}

    async def _open(self, index: int, compression: str | None, stats: Stats, extensions: Counter[str]) -> None:
        try:
            async with asyncio.timeout(OPEN_TIMEOUT_S):
                ws = await connect(
                    self.url,
                    compression=compression,
                    ping_interval=None,  # browsers send no pings; the widget's keep-alive is the protocol's `ping`
                    close_timeout=2,
                    origin=Origin(self.origin) if self.origin else None,
                    additional_headers=self._headers(index),
                )
                negotiated = ws.response.headers.get("Sec-WebSocket-Extensions") if ws.response else None
                extensions[negotiated or "none"] += 1
                if self.mode == "hub":
                    await ws.send(json.dumps({"type": "hello", "token": None, "last_seq": 0, "lang": "en"}))
                    raw = await ws.recv()
                    frame = json.loads(raw)
                    if frame.get("type") != "welcome":
                        await ws.close()
                        raise Unexpected(f"expected welcome after hello, got {frame.get('type')}: {raw!s}")
        except Exception as exc:  # every failure is counted and reported, none stops the run
            stats.error(_classify(exc), repr(exc))
            return
        self.conns.append(Conn(index, ws))
        stats.completed += 1

    async def _round_trip(self, conn: Conn, tag: str, stats: Stats) -> float:
        """Send one message and await its answer (echo: the same text; hub: its `ack`); the round trip in ms."""
        n = conn.sent
        conn.sent += 1
        cid = f"{self.run}-w{self.worker}-c{conn.index:05d}-n{n}"  # 22+ characters: the hub wants 16 or more
        t0 = time.monotonic_ns()
        head = f"{tag} {t0} {cid} "
        body = head + FILLER[: max(self.body_chars - len(head), 0)]
        text = json.dumps({"type": "message", "cid": cid, "body": body})
        stats.sent += 1
        key = text if self.mode == "echo" else cid
        try:
            async with asyncio.timeout(RTT_TIMEOUT_S):
                await self._exchange(conn, text, cid, stats)
        except asyncio.CancelledError:
            conn.abandoned.add(key)
            stats.abandoned += 1
            raise
        except TimeoutError:
            conn.abandoned.add(key)
            raise
        conn.exchanged = True
        return (time.monotonic_ns() - t0) / 1e6

    async def _exchange(self, conn: Conn, text: str, cid: str, stats: Stats) -> None:
        await conn.ws.send(text)
        if self.mode == "echo":
            while True:
                reply = await conn.ws.recv()
                if reply == text:
                    return
                if reply in conn.abandoned:
                    conn.abandoned.discard(str(reply))
                    stats.stale += 1
                    continue
                stats.error("echo: other text", str(reply))
        else:
            while True:
                raw = await conn.ws.recv()
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "ack":
                    if frame.get("cid") == cid:
                        return
                    if frame.get("cid") in conn.abandoned:
                        conn.abandoned.discard(frame["cid"])
                        stats.stale += 1
                        continue
                    raise Unexpected(f"ack for another cid: expected {cid}, got {raw!s}")
                if kind == "session":
                    conn.token = frame.get("token")
                elif kind == "error":
                    if frame.get("cid") in conn.abandoned:
                        continue
                    raise Unexpected(f"error {frame.get('code')}: {raw!s}")
                elif kind not in ("message", "typing", "read", "availability", "pong"):
                    stats.error(f"unexpected frame {kind}", str(raw))

    async def _one(self, conn: Conn, tag: str, stats: Stats, deadline_ns: int | None = None) -> bool:
        """One round trip, counted into `stats`; False if the socket is no longer usable."""
        try:
            ms = await self._round_trip(conn, tag, stats)
        except Exception as exc:  # counted and reported
            stats.error(_classify(exc), repr(exc))
            return not isinstance(exc, ConnectionClosed)
        if deadline_ns is not None and time.monotonic_ns() > deadline_ns:
            stats.late += 1
            return True
        stats.completed += 1
        stats.per_conn[conn.index] += 1
        stats.rtt(ms)
        return True

    # -- commands -----------------------------------------------------------------------------------------------

    async def _bounded(self, jobs: Sequence[Callable[[], Awaitable[Any]]], concurrency: int) -> None:
        queue = deque(jobs)

        async def runner() -> None:
            while queue:
                await queue.popleft()()

        await asyncio.gather(*(runner() for _ in range(max(1, min(concurrency, len(jobs))))))

    async def connect(self, count: int, concurrency: int, compression: str | None) -> dict[str, Any]:
        stats = Stats(self.rng)
        extensions: Counter[str] = Counter()
        start = time.monotonic()
        first = self.opened
        self.opened += count
        jobs = [partial(self._open, i, compression, stats, extensions) for i in range(first, first + count)]
        await self._bounded(jobs, concurrency)
        return stats.as_json() | {"elapsed_s": time.monotonic() - start, "extensions": dict(extensions)}

    async def first(self, concurrency: int, tag: str) -> dict[str, Any]:
        """One round trip on every socket that has not exchanged a message yet (hub: opens its conversation)."""
        stats = Stats(self.rng)
        start = time.monotonic()
        fresh = [c for c in self.conns if not c.exchanged]
        await self._bounded([partial(self._one, c, tag, stats) for c in fresh], concurrency)
        tokens = sum(1 for c in fresh if c.token)
        return stats.as_json() | {"elapsed_s": time.monotonic() - start, "sockets": len(fresh), "sessions": tokens}

    async def loop(self, duration: float, use: int, tag: str) -> dict[str, Any]:
        """Closed loop: each of the first `use` sockets does round trips back to back for `duration` seconds."""
        stats = Stats(self.rng)
        conns = self.conns[:use] if use else self.conns
        start = time.monotonic_ns()
        deadline = start + int(duration * 1e9)

        async def run(conn: Conn) -> None:
            while time.monotonic_ns() < deadline:
                if not await self._one(conn, tag, stats, deadline):
                    return

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(duration + DRAIN_S):
                await asyncio.gather(*(run(c) for c in conns))
        idle = sum(1 for c in conns if stats.per_conn[c.index] == 0)
        return stats.as_json() | {"window_s": duration, "sockets": len(conns), "sockets_without_round_trip": idle}

    async def rate(self, rate: float, duration: float, tag: str) -> dict[str, Any]:
        """Open loop: a message every 1/`rate` s for `duration` s, each on the next socket not awaiting an answer."""
        stats = Stats(self.rng)
        free = deque(self.conns)
        tasks: set[asyncio.Task[None]] = set()
        skipped = 0
        max_lag_ms = 0.0
        loop = asyncio.get_running_loop()
        start = loop.time()
        total = int(rate * duration)

        async def send(conn: Conn) -> None:
            if await self._one(conn, tag, stats):
                free.append(conn)

        for i in range(total):
            at = start + i / rate
            delay = at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                max_lag_ms = max(max_lag_ms, -delay * 1000)
            if not free:
                skipped += 1
                continue
            task = asyncio.create_task(send(free.popleft()))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_S):
                await asyncio.gather(*tasks)
        return stats.as_json() | {
            "window_s": duration,
            "scheduled": total,
            "skipped_no_free_socket": skipped,
            "max_schedule_lag_ms": round(max_lag_ms, 1),
        }

    async def close(self, concurrency: int) -> dict[str, Any]:
        start = time.monotonic()

        async def close_one(conn: Conn) -> None:
            with contextlib.suppress(Exception):
                await conn.ws.close()

        await self._bounded([partial(close_one, c) for c in self.conns], concurrency)
        closed = len(self.conns)
        self.conns.clear()
        return {"closed": closed, "elapsed_s": time.monotonic() - start}


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def serve(load: Load) -> None:
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return  # the benchmark went away
        cmd = json.loads(line)
        name = cmd.pop("cmd")
        if name == "exit":
            await load.close(200)
            return
        handlers: dict[str, Callable[..., Awaitable[dict[str, Any]]]] = {
            "connect": load.connect,
            "first": load.first,
            "loop": load.loop,
            "rate": load.rate,
            "close": load.close,
        }
        result = await handlers[name](**cmd)
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench._ws_load", description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="ws://127.0.0.1:PORT/PATH")
    parser.add_argument("--mode", choices=("echo", "hub"), required=True)
    parser.add_argument("--worker", type=int, default=0, help="this process's number (in cids and addresses)")
    parser.add_argument("--origin", help="Origin header to send (default none)")
    parser.add_argument("--same-address", action="store_true", help="no X-Forwarded-For: every socket from 127.0.0.1")
    parser.add_argument("--body-chars", type=int, default=100, help="length of each message body")
    args = parser.parse_args(argv)
    if not args.url.startswith("ws://127.0.0.1:"):
        raise SystemExit("bench._ws_load only talks to 127.0.0.1")
    raise_fd_limit()
    load = Load(args.url, args.mode, args.worker, args.origin, not args.same_address, args.body_chars)
    uvloop.run(serve(load))


if __name__ == "__main__":
    main()
