"""Benchmark: the web chat socket (`/chat/ws`, docs/chat-protocol.md) of one `carehub serve` process on PostgreSQL
and Redis, with 5,000 concurrent sockets, against a bare FastAPI WebSocket echo endpoint (bench/_ws_echo.py) served
with the same uvicorn options and driven the same way in the same run. Measures memory per connection, round trips
per second at 1,000 and at 5,000 sockets, and the delivery latency from a resident's `send` to the
`message.created` event on an agent's live stream (`GET /api/v1/events`).

Both servers: uvicorn, one process, uvloop, httptools, websockets' sans-I/O implementation (`ws="websockets-sansio"`,
about half the memory per socket of the legacy one), 8 KiB frames, permessage-deflate offered (uvicorn's default).
The hub: `carehub migrate` then `carehub serve` on a fresh database (dropped afterwards), a claimed Redis DB index
(flushed afterwards), its own pub/sub channel prefix, CAREHUB_ENV=test, chat hours all week, and the per-resident
abuse limits raised out of reach (each benchmark socket sends hundreds of messages a minute; the limiter still runs).

Load: bench/_ws_load.py processes (websockets' asyncio client on uvloop, no compression offered, no client pings),
2 by default so the load uses both cores; each socket comes from its own address (X-Forwarded-For, trusted from
127.0.0.1 as behind the city's proxy) with the city website's Origin, as a widget would. Hub sockets say `hello`,
await `welcome`, and their first `message` opens a conversation (`session` + `ack`). Sequence, for each server:
warm-up (200 sockets, closed) and idle memory; 1,000 sockets, each doing round trips back to back for 10 s (echo:
the text back; hub: the `ack`); echo only, the same from one load process (is the client the limit?); up to 5,000
sockets and their memory; 10 s of round trips on all 5,000; then fixed rates (500/s, 100/s) spread over the 5,000.
Each message body carries its send time, so the agent stream reader (in this process) times its delivery.

Run: .venv/bin/python -m bench chat [--help]  (or: -m bench.chat)
Needs PostgreSQL on 127.0.0.1:5432 (trust, user postgres) and Redis on 127.0.0.1:6379. Prints a table and writes the
results to bench/results/chat.json; exits 1 when sockets fail to open, round trips fail or go unanswered, or the hub
stored fewer messages than it acknowledged; with --fail-on-goal, 2 when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any

import httpx
import uvloop

from bench import _machine, _profile, _servers, _stores
from bench._servers import HOST, Server
from bench._ws_echo import WS_PATH as ECHO_PATH
from bench._ws_load import DRAIN_S

REPO = Path(__file__).resolve().parents[1]
CAREHUB_BIN = Path(sys.executable).parent / "carehub"
RESULTS_FILE = Path(__file__).with_name("results") / "chat.json"
HUB_PATH = "/chat/ws"
EVENTS_PATH = "/api/v1/events"
# Browsers send the page's origin; the widget sits on the city's site (CAREHUB_CITY_WEBSITE, allowed by default).
ORIGIN = "https://www.pickering.ca"

GOAL_MEMORY_RATIO = 1.3
GOAL_THROUGHPUT_RATIO = 0.5
GOAL_P99_MS = 250.0

ANSWER_LIMIT = 64 * 1024 * 1024  # one answer line from a load process (latency samples included)
COMMAND_TIMEOUT_S = 300.0  # one command to the load processes (opening 5,000 conversations included)
SETTLE_S = 2.0  # before reading a server's memory
STREAM_QUIET_S = 1.0  # the agent stream has caught up when it shows nothing new for this long
STREAM_CATCH_UP_S = 120.0
# The limits a real resident never reaches but a benchmark socket (hundreds of messages a minute) does. The hub
# still runs its limiter on every message; it just never trips.
HUB_LIMITS = {
    "CAREHUB_CHAT_MESSAGES_PER_MINUTE": "1000000",
    "CAREHUB_CHAT_IP_MESSAGES_PER_MINUTE": "1000000",
    "CAREHUB_CHAT_IP_MAX_CONNECTIONS": "100000",
}

PROFILE_CATEGORIES: _profile.Categories = (
    ("websockets (frames, protocol)", ("websockets/",)),
    ("redis-py (pub/sub)", ("redis/",)),
    ("asyncpg (driver, protocol)", ("asyncpg/",)),
    *_profile.SQLALCHEMY_CATEGORIES,
    ("pydantic", ("pydantic/", "pydantic_core/")),
    ("carehub chat", ("carehub/chat/",)),
    ("carehub realtime", ("carehub/realtime/",)),
    ("carehub other", ("carehub/", "channels/")),
    ("uvicorn", ("uvicorn/",)),
    ("Starlette, FastAPI, anyio", ("starlette/", "fastapi/", "anyio/")),
    ("json", ("json/",)),
    ("logging", ("logging/",)),
    ("event loop (uvloop) and other stdlib", ("asyncio/",)),
)


# -- small helpers ----------------------------------------------------------------------------------------------


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and RssAnon of one process, in kB."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon"):
                out[key] = int(value.split()[0])
    return out


def pid_cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "max": float("nan")}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))], 2)

    return {"n": len(ordered), "p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": round(ordered[-1], 2)}


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def base_env() -> dict[str, str]:
    """This environment without CAREHUB_* variables: only what the benchmark sets reaches the hub."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CAREHUB_")}


def merge(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The load processes' answers to one command, as one."""
    out: dict[str, Any] = {"errors": Counter(), "problems": {}, "rtts_ms": [], "extensions": Counter()}
    for r in results:
        for key, value in r.items():
            if key == "errors":
                out["errors"].update(value)
            elif key == "extensions":
                out["extensions"].update(value)
            elif key == "problems":
                for kind, examples in value.items():
                    out["problems"].setdefault(kind, []).extend(examples[:3])
            elif key == "rtts_ms":
                out["rtts_ms"].extend(value)
            elif key in ("elapsed_s", "window_s", "max_schedule_lag_ms"):
                out[key] = max(out.get(key, 0.0), value)
            elif isinstance(value, int | float):
                out[key] = out.get(key, 0) + value
    out["errors"] = dict(out["errors"])
    out["extensions"] = dict(out["extensions"])
    return out


# -- the load processes -----------------------------------------------------------------------------------------


class LoadProcesses:
    """bench._ws_load processes, one JSON command per line in, one JSON answer per line out."""

    def __init__(self, procs: list[asyncio.subprocess.Process]):
        self.procs = procs
        self.sockets = [0] * len(procs)

    @classmethod
    async def start(cls, n: int, url: str, mode: str, args: argparse.Namespace, log: IO[bytes]) -> LoadProcesses:
        procs = []
        for i in range(n):
            argv = [sys.executable, "-m", "bench._ws_load", "--url", url, "--mode", mode, "--worker", str(i)]
            argv += ["--origin", ORIGIN, "--body-chars", str(args.body_chars)]
            procs.append(
                await asyncio.create_subprocess_exec(
                    *argv, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, limit=ANSWER_LIMIT
                )
            )
        return cls(procs)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def cpu_seconds(self) -> float:
        return sum(pid_cpu_seconds(pid) for pid in self.pids)

    async def _call(self, proc: asyncio.subprocess.Process, cmd: dict[str, Any]) -> dict[str, Any]:
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await proc.stdin.drain()
        line = await asyncio.wait_for(proc.stdout.readline(), COMMAND_TIMEOUT_S)
        if not line:
            raise RuntimeError(f"load process {proc.pid} exited ({await proc.wait()}) during {cmd['cmd']}")
        result: dict[str, Any] = json.loads(line)
        return result

    async def each(self, cmds: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
        """Send each process its command (None: none) at once; the merged answers."""
        calls = [self._call(p, c) for p, c in zip(self.procs, cmds, strict=True) if c is not None]
        return merge(await asyncio.gather(*calls))

    async def all(self, cmd: dict[str, Any]) -> dict[str, Any]:
        return await self.each([cmd] * len(self.procs))

    async def open_to(self, targets: Sequence[int], concurrency: int, compression: str | None = None) -> dict[str, Any]:
        """Open sockets until process i holds targets[i]; then one round trip on each new one (hub: opens its
        conversation). Batches of `concurrency` sockets in flight across the processes."""
        per = max(1, concurrency // len(self.procs))
        counts = [max(0, t - have) for t, have in zip(targets, self.sockets, strict=True)]
        opened = await self.each(
            [{"cmd": "connect", "count": c, "concurrency": per, "compression": compression} if c else None
             for c in counts]
        )  # fmt: skip
        self.sockets = [have + c for have, c in zip(self.sockets, counts, strict=True)]
        first = await self.each([{"cmd": "first", "concurrency": per, "tag": "open"} if c else None for c in counts])
        return {"connect": opened, "first": first}

    async def close_all(self) -> None:
        await self.all({"cmd": "close", "concurrency": 100})
        self.sockets = [0] * len(self.procs)

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.returncode is None and proc.stdin is not None:
                with contextlib.suppress(Exception):
                    proc.stdin.write(b'{"cmd": "exit"}\n')
                    await proc.stdin.drain()
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def rate_key(rate: int, args: argparse.Namespace) -> str:
    return "rate_fixed" if rate == args.rate else f"rate_{rate}"


def rate_tag(rate: int, args: argparse.Namespace) -> str:
    return "r_fixed" if rate == args.rate else f"r_{rate}"


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


# -- the agent stream -------------------------------------------------------------------------------------------


@dataclass
class AgentStream:
    """One agent's live stream (SSE): the latency of every resident message it shows, by the tag in its body."""

    base_url: str
    token: str
    latencies: dict[str, list[float]] = field(default_factory=dict)
    events: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    content_type: str = ""
    reconnects: int = 0

    def _dispatch(self, event: str, data: str, arrived_ns: int) -> None:
        try:
            payload = json.loads(data)
        except ValueError:
            self.events["(not JSON)"] += 1
            if len(self.problems) < 5:
                self.problems.append(f"event {event!r} with data that is not JSON: {data[:200]}")
            return
        if isinstance(payload, dict) and not event:
            event = str(payload.get("type") or payload.get("event") or "")
        self.events[event or "(unnamed)"] += 1
        if event != "message.created" or not isinstance(payload, dict):
            return
        body = payload.get("body")
        if body is None and isinstance(payload.get("data"), dict):
            body = payload["data"].get("body")
        parts = str(body or "").split(" ", 2)
        if len(parts) >= 2 and parts[1].isdigit():
            self.latencies.setdefault(parts[0], []).append((arrived_ns - int(parts[1])) / 1e6)

    async def run(self) -> None:
        """Read the stream until cancelled; when the hub ends it (e.g. `overflow`: this reader fell behind), count
        that and connect again, as the agent console does."""
        while True:
            await self._read_once()
            self.reconnects += 1
            await asyncio.sleep(0.1)

    async def _read_once(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
        timeout = httpx.Timeout(10.0, read=None)
        async with (
            httpx.AsyncClient(base_url=self.base_url, timeout=timeout) as client,
            client.stream("GET", EVENTS_PATH, headers=headers) as response,
        ):
            self.content_type = response.headers.get("content-type", "")
            if response.status_code != 200:
                body = (await response.aread()).decode(errors="replace")[:300]
                raise RuntimeError(f"GET {EVENTS_PATH} answered {response.status_code}: {body}")
            self.connected.set()
            event, data = "", list[str]()
            async for line in response.aiter_lines():
                if line == "":
                    if data:
                        self._dispatch(event, "\n".join(data), time.monotonic_ns())
                    event, data = "", []
                elif line.startswith(":"):
                    self.events["(comment)"] += 1
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].removeprefix(" "))


# -- one server under load --------------------------------------------------------------------------------------


@dataclass
class Phase:
    """One timed run: the merged load answers, and the CPU each party used during it."""

    result: dict[str, Any]
    cpu_s: dict[str, float]
    window_s: float

    @property
    def rate(self) -> float:
        return float(self.result.get("completed", 0)) / self.window_s

    def as_json(self) -> dict[str, Any]:
        r = {k: v for k, v in self.result.items() if k != "rtts_ms"}
        return r | {
            "rate_per_s": round(self.rate, 1),
            "rtt_ms": percentiles(self.result.get("rtts_ms", [])),
            "cpu_s": {k: round(v, 2) for k, v in self.cpu_s.items()},
        }


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    def __init__(self, server: Server, load: LoadProcesses):
        self.server, self.load = server, load

    def snapshot(self) -> dict[str, float]:
        return {
            "server": self.server.cpu_seconds(),
            "clients": self.load.cpu_seconds(),
            "bench": pid_cpu_seconds(os.getpid()),
            "postgres": _servers.cpu_seconds_of("postgres"),
            "redis": _servers.cpu_seconds_of("redis-server"),
            "machine": machine_busy_seconds(),
        }


async def timed(
    meter: CpuMeter, window_s: float, call: Callable[[], Any], profile: AbstractContextManager[None] | None = None
) -> Phase:
    before = meter.snapshot()
    with profile or nullcontext():
        result = await call()
    after = meter.snapshot()
    return Phase(result, {k: after[k] - before[k] for k in after}, window_s)


async def catch_up(stream: AgentStream | None, lag: dict[str, float], step: str) -> None:
    """Wait (bounded) until the agent stream has shown everything: no new event for a second. How long that took
    is how far the stream had fallen behind the sockets at the end of `step`."""
    if stream is None:
        return
    loop = asyncio.get_running_loop()
    start = last_change = loop.time()
    seen = -1
    while loop.time() - start < STREAM_CATCH_UP_S:
        now_seen = stream.events.total()
        if now_seen != seen:
            seen, last_change = now_seen, loop.time()
        elif loop.time() - last_change >= STREAM_QUIET_S:
            break
        await asyncio.sleep(0.05)
    lag[step] = round(last_change - start, 2)


async def drive(
    name: str, server: Server, url: str, mode: str, args: argparse.Namespace, workdir: Path, stream: AgentStream | None
) -> dict[str, Any]:
    """The same sequence for the echo and the hub: warm up, 1,000 sockets (closed loop), up to N sockets (memory,
    closed loop), a fixed moderate rate, close."""
    pid = server.proc.pid
    k = args.clients
    lag: dict[str, float] = {}
    out: dict[str, Any] = {"memory_kb": {"start": memory_kb(pid)}, "stream_catch_up_s": lag}
    with (workdir / f"{name}-load.log").open("ab") as log:
        load = await LoadProcesses.start(k, url, mode, args, log)
        meter = CpuMeter(server, load)
        try:
            print(f"bench: {name}: warm-up ({args.warmup_sockets} sockets)", flush=True)
            warm = await load.open_to(split(args.warmup_sockets, k), args.open_concurrency)
            warm_loop = await load.all({"cmd": "loop", "duration": args.warmup, "use": 0, "tag": "warm"})
            out["extensions_negotiated"] = warm["connect"]["extensions"]
            out["warm_acked"] = {
                "first": warm["first"]["completed"],
                "loop": warm_loop["completed"] + warm_loop["late"],
            }
            await load.close_all()
            await catch_up(stream, lag, "warm-up")
            await asyncio.sleep(SETTLE_S)
            out["memory_kb"]["idle"] = memory_kb(pid)

            small = args.small
            print(f"bench: {name}: opening {small:,} sockets", flush=True)
            setup = [await load.open_to(split(small, k), args.open_concurrency)]
            await catch_up(stream, lag, "open_small")
            await asyncio.sleep(SETTLE_S)
            out["memory_kb"][str(small)] = memory_kb(pid)
            print(f"bench: {name}: closed loop, {small:,} sockets, {args.duration} s", flush=True)
            cmd = {"cmd": "loop", "duration": args.duration, "use": 0, "tag": "t_small"}
            profile = None
            if args.profile and mode == "hub":
                profile = _profile.sampling(args.py_spy, pid, args.duration, workdir / "hub-pyspy.txt")
            out["loop_small"] = await timed(meter, args.duration, partial(load.all, cmd), profile)
            await catch_up(stream, lag, "loop_small")

            if mode == "echo" and k > 1 and not args.skip_client_check:
                # Is the load generator the limit? The same 1,000 round-trip loops from one process instead of k.
                print(f"bench: {name}: closed loop, {small:,} sockets from ONE load process", flush=True)
                await load.open_to([small, *load.sockets[1:]], args.open_concurrency)
                one = {"cmd": "loop", "duration": args.check_duration, "use": small, "tag": "t_one"}
                out["loop_small_one_process"] = await timed(
                    meter, args.check_duration, lambda: load.each([one] + [None] * (k - 1))
                )

            n = args.sockets
            print(f"bench: {name}: opening up to {n:,} sockets", flush=True)
            setup.append(await load.open_to(split(n, k), args.open_concurrency))
            out["setup"] = setup
            await catch_up(stream, lag, "open_large")
            await asyncio.sleep(SETTLE_S)
            out["memory_kb"][str(n)] = memory_kb(pid)
            out["sockets_open"] = sum(load.sockets)

            print(f"bench: {name}: closed loop, {n:,} sockets, {args.duration} s", flush=True)
            cmd = {"cmd": "loop", "duration": args.duration, "use": 0, "tag": "t_large"}
            out["loop_large"] = await timed(meter, args.duration, partial(load.all, cmd))
            await catch_up(stream, lag, "loop_large")

            for rate in [args.rate, *args.extra_rates]:
                key, tag = rate_key(rate, args), rate_tag(rate, args)
                print(f"bench: {name}: {rate:,} messages/s over {n:,} sockets, {args.duration} s", flush=True)
                cmd = {"cmd": "rate", "rate": rate / k, "duration": args.duration, "tag": tag}
                out[key] = await timed(meter, args.duration, partial(load.all, cmd))
                await catch_up(stream, lag, key)
            print(f"bench: {name}: closing", flush=True)
            await load.close_all()
        finally:
            await load.stop()
    return out


async def deflate_probe(server: Server, url: str, mode: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Memory per socket when the client offers permessage-deflate, as every browser does."""
    pid = server.proc.pid
    k = args.clients
    with (workdir / "deflate-load.log").open("ab") as log:
        load = await LoadProcesses.start(k, url, mode, args, log)
        try:
            warm = await load.open_to(split(args.warmup_sockets, k), args.open_concurrency, "deflate")
            await load.close_all()
            await asyncio.sleep(SETTLE_S)
            idle = memory_kb(pid)
            opened = await load.open_to(split(args.deflate_sockets, k), args.open_concurrency, "deflate")
            await asyncio.sleep(SETTLE_S)
            full = memory_kb(pid)
            await load.close_all()
        finally:
            await load.stop()
    return {
        "first_messages_acked": warm["first"]["completed"] + opened["first"]["completed"],
        "sockets": args.deflate_sockets,
        "extensions_negotiated": warm["connect"]["extensions"],
        "errors": opened["connect"]["errors"] | opened["first"]["errors"],
        "memory_kb": {"idle": idle, str(args.deflate_sockets): full},
        "kb_per_socket": round((full["VmRSS"] - idle["VmRSS"]) / args.deflate_sockets, 1),
    }


# -- servers ----------------------------------------------------------------------------------------------------


def run_echo(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    port = _servers.free_port()
    argv = [sys.executable, "-m", "bench._ws_echo", "--host", HOST, "--port", str(port)]
    url = f"ws://{HOST}:{port}{ECHO_PATH}"
    with _servers.running("echo", argv, port=port, env=base_env(), cwd=REPO, log_path=workdir / "echo.log") as server:
        result = uvloop.run(drive("echo", server, url, "echo", args, workdir, None))
    if args.deflate_sockets:
        print(f"bench: echo: {args.deflate_sockets:,} sockets offering permessage-deflate (fresh server)", flush=True)
        port = _servers.free_port()
        argv = [sys.executable, "-m", "bench._ws_echo", "--host", HOST, "--port", str(port)]
        url = f"ws://{HOST}:{port}{ECHO_PATH}"
        log_path = workdir / "echo-deflate.log"
        with _servers.running("echo", argv, port=port, env=base_env(), cwd=REPO, log_path=log_path) as server:
            result["deflate"] = uvloop.run(deflate_probe(server, url, "echo", args, workdir))
    return result


def hub_env(database: str, redis_url: str) -> dict[str, str]:
    return (
        base_env()
        | {
            "CAREHUB_ENV": "test",
            "CAREHUB_DATABASE_URL": _stores.sqlalchemy_url(database),
            "CAREHUB_REDIS_URL": redis_url,
            "CAREHUB_REALTIME_PREFIX": f"bench-{secrets.token_hex(4)}",
            # A resident may chat at any hour of the benchmark (the default is office hours).
            "CAREHUB_CHAT_HOURS": "mon-sun 00:00-23:59",
        }
        | HUB_LIMITS
    )


def carehub(env: dict[str, str], workdir: Path, *command: str) -> str:
    done = subprocess.run(
        [str(CAREHUB_BIN), *command], env=env, cwd=workdir, timeout=120, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise _servers.ServerFailed(f"carehub {' '.join(command)} exited {done.returncode}:\n{done.stderr}")
    return done.stdout


async def with_stream(
    server: Server, token: str, body: Callable[[AgentStream], Any]
) -> tuple[dict[str, Any], AgentStream]:
    stream = AgentStream(server.base_url, token)
    task = asyncio.create_task(stream.run())
    try:
        async with asyncio.timeout(10):
            waiter = asyncio.create_task(stream.connected.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                task.result()  # raises what went wrong
        result: dict[str, Any] = await body(stream)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    return result, stream


def run_hub(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    owner = f"bench-chat-{secrets.token_hex(4)}"
    with _stores.redis_database(owner) as redis_url, _stores.postgres_database() as db:
        env = hub_env(db, redis_url)
        carehub(env, workdir, "migrate")
        printed = carehub(env, workdir, "create-agent", "--email", "bench@city.test", "--name", "Bench")
        token = printed.strip().rsplit(": ", 1)[-1].split()[-1]
        port = _servers.free_port()
        argv = shlex_split(args.hub_command) if args.hub_command else [str(CAREHUB_BIN), "serve"]
        argv += ["--host", HOST, "--port", str(port)]
        url = f"ws://{HOST}:{port}{HUB_PATH}"
        # cwd outside the repository: the hub must not read a developer's .env
        with _servers.running("hub", argv, port=port, env=env, cwd=workdir, log_path=workdir / "hub.log") as server:
            result, stream = uvloop.run(
                with_stream(server, token, lambda s: drive("hub", server, url, "hub", args, workdir, s))
            )
        result["stream"] = {
            "content_type": stream.content_type,
            "events": dict(stream.events),
            "problems": stream.problems,
            "latency_ms": {tag: percentiles(v) for tag, v in stream.latencies.items()},
            "delivered": {tag: len(v) for tag, v in stream.latencies.items()},
            "reconnects": stream.reconnects,
        }
        if args.deflate_sockets:
            print(
                f"bench: hub: {args.deflate_sockets:,} sockets offering permessage-deflate (fresh server)", flush=True
            )
            port = _servers.free_port()
            argv = [*argv[:-1], str(port)]
            url = f"ws://{HOST}:{port}{HUB_PATH}"
            log_path = workdir / "hub-deflate.log"
            with _servers.running("hub", argv, port=port, env=env, cwd=workdir, log_path=log_path) as server:
                result["deflate"], _ = uvloop.run(
                    with_stream(server, token, lambda s: deflate_probe(server, url, "hub", args, workdir))
                )
        result["stored"] = {
            "tickets": int(_stores.pg_scalar(db, "SELECT count(*) FROM tickets")),
            "resident_messages": int(_stores.pg_scalar(db, "SELECT count(*) FROM messages WHERE direction = 'in'")),
            "messages": int(_stores.pg_scalar(db, "SELECT count(*) FROM messages")),
        }
    return result


def shlex_split(command: str) -> list[str]:
    import shlex

    return shlex.split(command)


# -- report -----------------------------------------------------------------------------------------------------


def kb_per_socket(r: dict[str, Any], n: int) -> float:
    m = r["memory_kb"]
    return float(m[str(n)]["VmRSS"] - m["idle"]["VmRSS"]) / n


def slope_kb(r: dict[str, Any], small: int, n: int) -> float:
    m = r["memory_kb"]
    return float(m[str(n)]["VmRSS"] - m[str(small)]["VmRSS"]) / max(n - small, 1)


def setup_rates(r: dict[str, Any]) -> dict[str, float]:
    connect = sum(s["connect"]["completed"] for s in r["setup"])
    connect_s = sum(s["connect"]["elapsed_s"] for s in r["setup"])
    first = sum(s["first"]["completed"] for s in r["setup"])
    first_s = sum(s["first"]["elapsed_s"] for s in r["setup"])
    return {
        "sockets": connect,
        "sockets_per_s": round(connect / max(connect_s, 1e-9), 1),
        "first_messages": first,
        "first_messages_per_s": round(first / max(first_s, 1e-9), 1),
    }


def acknowledged(r: dict[str, Any]) -> tuple[int, int]:
    """(conversations opened, resident messages acknowledged) over a whole hub run, its deflate probe included."""
    opened = r["warm_acked"]["first"] + sum(s["first"]["completed"] for s in r["setup"])
    opened += r.get("deflate", {}).get("first_messages_acked", 0)
    acked = opened + r["warm_acked"]["loop"]
    acked += sum(p.result["completed"] + p.result["late"] for p in r.values() if isinstance(p, Phase))
    return opened, acked


def failures_of(name: str, r: dict[str, Any], args: argparse.Namespace) -> list[str]:
    out = []
    if "stored" in r:
        opened, acked = acknowledged(r)
        stored = r["stored"]
        if stored["tickets"] != opened:
            out.append(f"{name}: {stored['tickets']:,} tickets stored for {opened:,} conversations opened")
        if stored["resident_messages"] < acked:
            out.append(f"{name}: {stored['resident_messages']:,} resident messages stored, {acked:,} acknowledged")
    for i, s in enumerate(r["setup"]):
        for step in ("connect", "first"):
            if s[step]["errors"]:
                out.append(f"{name} set-up {i} {step}: errors {s[step]['errors']} e.g. {s[step]['problems']}")
    if r.get("sockets_open", 0) != args.sockets:
        out.append(f"{name}: {r.get('sockets_open')} sockets open, not {args.sockets}")
    for key, phase in r.items():
        if not isinstance(phase, Phase):
            continue
        res = phase.result
        if res["errors"]:
            out.append(f"{name} {key}: errors {res['errors']} e.g. {res['problems']}")
        if res.get("abandoned"):
            out.append(f"{name} {key}: {res['abandoned']} round trips unanswered {DRAIN_S:.0f} s after the window")
    return out


def fmt(x: float, unit: str = "") -> str:
    if x != x:  # NaN
        return "-"
    return f"{x:,.1f}{unit}" if abs(x) < 100 else f"{x:,.0f}{unit}"


def cpu_line(p: Phase) -> str:
    c = p.cpu_s
    w = p.window_s
    parts = ("server", "clients", "postgres", "redis", "bench")
    other = c["machine"] - sum(c[k] for k in parts)
    # The rest of the machine, from /proc/stat less the processes above (approximate: tick-sampled counters).
    return " / ".join(f"{k} {c[k] / w:.0%}" for k in parts) + f" / rest of machine ~{max(other, 0.0) / w:.0%}"


def cpu_per_trip(p: Phase) -> str:
    done = max(p.result["completed"], 1)
    us = {k: v / done * 1e6 for k, v in p.cpu_s.items()}
    return (
        f"server {us['server']:.0f} us, postgres {us['postgres']:.0f} us, redis {us['redis']:.0f} us, "
        f"load processes {us['clients']:.0f} us; whole machine busy {p.cpu_s['machine'] / p.window_s:.0%} "
        f"(of {os.cpu_count()} cores = {100 * (os.cpu_count() or 1)}%)"
    )


def report(result: dict[str, Any], echo: dict[str, Any], hub: dict[str, Any], args: argparse.Namespace) -> str:
    n, small = args.sockets, args.small
    mem_e, mem_h = kb_per_socket(echo, n), kb_per_socket(hub, n)
    thr_e, thr_h = echo["loop_small"].rate, hub["loop_small"].rate
    big_e, big_h = echo["loop_large"].rate, hub["loop_large"].rate
    lat = hub["stream"]["latency_ms"]
    nan = percentiles([])
    fixed, during, during_big = lat.get("r_fixed", nan), lat.get("t_small", nan), lat.get("t_large", nan)
    goal = result["goal"]

    def qs(p: dict[str, float]) -> str:
        return " / ".join(fmt(p[q]) for q in ("p50", "p95", "p99"))

    def met(ok: bool | None) -> str:
        return "-" if ok is None else ("met" if ok else "MISSED")

    rows: list[tuple[str, str, str, str, str, str]] = [
        ("metric", "echo", "hub", "hub/echo", "goal", "met?"),
        (f"memory per socket, KB ({n:,} open vs idle)", fmt(mem_e), fmt(mem_h), f"{mem_h / mem_e:.2f}x",
         f"<= {GOAL_MEMORY_RATIO}x", met(goal["memory_met"])),
        (f"  same, slope {small:,} -> {n:,} sockets", fmt(slope_kb(echo, small, n)), fmt(slope_kb(hub, small, n)),
         f"{slope_kb(hub, small, n) / slope_kb(echo, small, n):.2f}x", "", ""),
        (f"round trips/s, {n:,} sockets", fmt(big_e), fmt(big_h), f"{big_h / big_e:.1%}",
         f">= {GOAL_THROUGHPUT_RATIO:.0%}", met(goal["throughput_met"])),
        (f"round trips/s, {small:,} sockets", fmt(thr_e), fmt(thr_h), f"{thr_h / thr_e:.1%}", "", ""),
    ]  # fmt: skip
    rates = [(rate_key(rate, args), f"{rate}/s") for rate in [args.rate, *args.extra_rates]]
    for key, label in (("loop_small", f"{small:,}"), ("loop_large", f"{n:,}"), *rates):
        e, h = echo[key].as_json()["rtt_ms"], hub[key].as_json()["rtt_ms"]
        rows.append((f"round trip p50 / p99 ms, {label}", f"{fmt(e['p50'])} / {fmt(e['p99'])}",
                     f"{fmt(h['p50'])} / {fmt(h['p99'])}", "", "", ""))  # fmt: skip
    rows += [
        (f"resident -> agent stream p50/p95/p99 ms, {args.rate}/s", "", qs(fixed), "", f"p99 < {GOAL_P99_MS:.0f}",
         met(goal["latency_met"])),
        *[(f"  same, at {r}/s", "", qs(lat.get(rate_tag(r, args), nan)), "", "", "") for r in args.extra_rates],
        (f"  same, during the {small:,}-socket closed loop", "", qs(during), "", "", ""),
        (f"  same, during the {n:,}-socket closed loop", "", qs(during_big), "", "", ""),
        ("set-up: sockets opened/s (connect + hello/welcome)", fmt(setup_rates(echo)["sockets_per_s"]),
         fmt(setup_rates(hub)["sockets_per_s"]), "", "", ""),
        ("set-up: first messages/s (hub: conversations opened)", fmt(setup_rates(echo)["first_messages_per_s"]),
         fmt(setup_rates(hub)["first_messages_per_s"]), "", "", ""),
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    lines = [
        f"Web chat socket: {n:,} sockets (and {small:,} in a closed loop of their own), {args.clients} load processes, "
        f"{args.duration} s per run, bodies of {args.body_chars} chars; uvicorn websockets-sansio, uvloop, httptools"
    ]
    for i, row in enumerate(rows):
        lines.append("  ".join(c.ljust(widths[j]) if j == 0 else c.rjust(widths[j]) for j, c in enumerate(row)))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    for name, r in (("echo", echo), ("hub", hub)):
        m = r["memory_kb"]
        lines.append(
            f"{name}: VmRSS MB start {m['start']['VmRSS'] / 1024:.1f}, "
            f"idle after warm-up {m['idle']['VmRSS'] / 1024:.1f}, {small:,} open {m[str(small)]['VmRSS'] / 1024:.1f}, "
            f"{n:,} open {m[str(n)]['VmRSS'] / 1024:.1f}; "
            f"extensions negotiated (clients offer none): {r['extensions_negotiated']}"
        )
        for key, phase in r.items():
            if isinstance(phase, Phase):
                res = phase.result
                lines.append(
                    f"  {key}: CPU (share of one core) {cpu_line(phase)}; sent {res['sent']:,}, "
                    f"answered in window {res['completed']:,}, after {res['late']:,}, "
                    f"unanswered {res['abandoned']:,}"
                    + (
                        f", sockets without a round trip {res['sockets_without_round_trip']:,}"
                        if res.get("sockets_without_round_trip")
                        else ""
                    )
                )
        if "deflate" in r:
            d = r["deflate"]
            lines.append(
                f"  offering permessage-deflate (as browsers do): {d['kb_per_socket']:.1f} KB per socket over "
                f"{d['sockets']:,}; negotiated {d['extensions_negotiated']}; errors {d['errors'] or 'none'}"
            )
    one = echo.get("loop_small_one_process")
    if one is not None:
        lines.append(
            f"client check: echo, {small:,} sockets from 1 load process {one.rate:,.0f} round trips/s "
            f"(CPU {cpu_line(one)}) vs {args.clients} processes {thr_e:,.0f}"
        )
    lines.append(f"  echo CPU per round trip, {small:,} sockets: {cpu_per_trip(echo['loop_small'])}")
    lines.append(f"  hub CPU per round trip, {small:,} sockets: {cpu_per_trip(hub['loop_small'])}")
    s = hub["stream"]
    tagged = [("t_small", "loop_small"), ("t_large", "loop_large")]
    tagged += [(rate_tag(rate, args), rate_key(rate, args)) for rate in [args.rate, *args.extra_rates]]
    sent = {tag: hub[key].result["sent"] for tag, key in tagged}
    lines.append(
        f"agent stream ({s['content_type']}): events {s['events']}; reconnects {s['reconnects']}; "
        "resident messages shown / sent: "
        + ", ".join(f"{tag} {s['delivered'].get(tag, 0):,}/{sent[tag]:,}" for tag in sent)
    )
    overflows = s["events"].get("overflow", 0)
    if overflows:
        lines.append(
            f"agent stream: the hub ended it {overflows} time(s) with `overflow` (its backlog for this reader "
            "passed its limit); the reader reconnected each time, and missed what came in between"
        )
    lines.append(f"agent stream: seconds to catch up after each step: {hub['stream_catch_up_s']}")
    opened, acked = acknowledged(hub)
    lines.append(
        f"hub stored: {hub['stored']}; conversations opened {opened:,}, resident messages acknowledged {acked:,} "
        "(stored may be more: messages sent but not yet acknowledged when a run ended)"
    )
    if "profile" in hub:
        lines += _profile.report_lines(hub["profile"], "hub", hub["profile_cpu_ms"], "round trip")
    return "\n".join(lines)


def side_summary(name: str, r: dict[str, Any], args: argparse.Namespace) -> str:
    """One server's numbers, for a run of one side only (--only)."""
    lines = [
        f"{name}: memory per socket {kb_per_socket(r, args.sockets):.1f} KB ({args.sockets:,} open vs idle), "
        f"slope {slope_kb(r, args.small, args.sockets):.1f} KB; set-up {setup_rates(r)}; "
        f"extensions {r['extensions_negotiated']}"
    ]
    for key, p in r.items():
        if isinstance(p, Phase):
            lines.append(
                f"  {key}: {p.rate:,.0f}/s, round trip ms {percentiles(p.result['rtts_ms'])}, "
                f"errors {p.result['errors'] or 'none'}; CPU {cpu_line(p)}"
            )
    if "stream" in r:
        lines.append(f"  agent stream: {r['stream']}; catch-up s {r['stream_catch_up_s']}")
    if "deflate" in r:
        lines.append(f"  deflate: {r['deflate']}")
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench chat", description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=5_000, help="concurrent sockets (default 5000)")
    parser.add_argument("--small", type=int, default=1_000, help="sockets of the smaller closed loop (default 1000)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per timed run (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="closed-loop warm-up seconds (default 2)")
    parser.add_argument("--warmup-sockets", type=int, default=200)
    parser.add_argument("--rate", type=int, default=500, help="the fixed moderate rate, messages/s (default 500)")
    parser.add_argument(
        "--extra-rates",
        type=lambda text: [int(x) for x in text.split(",") if x],
        default=[100],
        help="more fixed rates to report (comma-separated, default 100; '' for none)",
    )
    parser.add_argument("--clients", type=int, default=2, help="load processes (default 2: the machine's cores)")
    parser.add_argument("--open-concurrency", type=int, default=200, help="sockets being opened at once")
    parser.add_argument("--body-chars", type=int, default=100, help="message body length (default 100)")
    parser.add_argument("--check-duration", type=float, default=5.0, help="seconds of the one-process client check")
    parser.add_argument("--skip-client-check", action="store_true")
    parser.add_argument("--deflate-sockets", type=int, default=1_000, help="0: skip the permessage-deflate probe")
    parser.add_argument("--only", choices=("echo", "hub"), help="run one side only (no ratios)")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE)
    parser.add_argument("--fail-on-goal", action="store_true", help="exit 2 when a goal is missed")
    parser.add_argument("--profile", action="store_true", help="py-spy the hub during its 1,000-socket closed loop")
    parser.add_argument("--py-spy", help="py-spy binary for --profile (default: on PATH)")
    parser.add_argument("--hub-command", help="run this instead of `carehub serve` (--host and --port appended)")
    return parser.parse_args(argv)


def phases_json(r: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.as_json() if isinstance(v, Phase) else v) for k, v in r.items() if k != "profile"}


@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="carehub-bench-chat-") as tmp:
        yield Path(tmp)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.profile:
        args.py_spy = _profile.find_py_spy(args.py_spy)
    raise_fd_limit()
    load_before = os.getloadavg()
    echo: dict[str, Any] = {}
    hub: dict[str, Any] = {}
    with workspace() as workdir:
        try:
            if args.only != "hub":
                echo = run_echo(args, workdir)
            if args.only != "echo":
                hub = run_hub(args, workdir)
        except Exception:
            for log in sorted(workdir.glob("*.log")):
                print(f"bench: {log.name} (last 30 lines):\n" + "\n".join(log.read_text().splitlines()[-30:]))
            raise
        if args.profile and hub:
            profile = _profile.summarise(workdir / "hub-pyspy.txt", PROFILE_CATEGORIES)
            hub["profile"] = profile
            phase: Phase = hub["loop_small"]
            hub["profile_cpu_ms"] = phase.cpu_s["server"] * 1000 / max(phase.result["completed"], 1)
    failures = (failures_of("echo", echo, args) if echo else []) + (failures_of("hub", hub, args) if hub else [])
    result: dict[str, Any] = {
        "benchmark": "chat",
        "ok": not failures,
        "failures": failures,
        "machine": _machine.describe(
            postgresql=str(_stores.pg_scalar("postgres", "SHOW server_version")),
            redis=_stores.redis_version(),
            websockets=_machine._library_version("websockets"),
            load_average_before=" ".join(f"{x:.2f}" for x in load_before),
        ),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "echo": phases_json(echo),
        "hub": phases_json(hub) | ({"profile": hub["profile"].as_json()} if "profile" in hub else {}),
    }
    goal: dict[str, Any] = {"memory_met": None, "throughput_met": None, "latency_met": None}
    if echo and hub:
        mem_ratio = kb_per_socket(hub, args.sockets) / kb_per_socket(echo, args.sockets)
        # The goal is the scenario: all 5,000 sockets exchanging messages (1,000 is reported beside it).
        thr_ratio = hub["loop_large"].rate / echo["loop_large"].rate
        p99 = hub["stream"]["latency_ms"].get("r_fixed", percentiles([]))["p99"]
        shown = hub["stream"]["delivered"].get("r_fixed", 0)
        sent = hub["rate_fixed"].result["sent"]
        goal = {
            "memory_ratio": round(mem_ratio, 3),
            "memory_met": mem_ratio <= GOAL_MEMORY_RATIO,
            "throughput_ratio": round(thr_ratio, 3),
            "throughput_met": thr_ratio >= GOAL_THROUGHPUT_RATIO,
            "latency_p99_ms": p99,
            "latency_shown_of_sent": [shown, sent],
            # every message of the fixed-rate run must reach the stream, or its percentiles leave out the lost ones
            "latency_met": p99 < GOAL_P99_MS and shown >= sent,
        }
    result["goal"] = goal
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print("machine: " + json.dumps(result["machine"]))
    if echo and hub:
        print(report(result, echo, hub, args))
    else:
        print(side_summary("echo" if echo else "hub", echo or hub, args))
    print(f"bench: results in {args.output}")
    if failures:
        print("bench: FAILED\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    if args.fail_on_goal and not all(goal[k] for k in ("memory_met", "throughput_met", "latency_met")):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
