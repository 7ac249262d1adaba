"""Benchmark: outbound email through one `carehub worker` (arq on Redis, PostgreSQL, SmtpEmailAdapter's pool) to a
local aiosmtpd sink in a process of its own, against raw aiosmtplib sending comparable pre-built messages to the same
sink in the same run: 10 reused connections (the goal's baseline), 1 connection, and a new connection per mail.

Run: make bench  or  .venv/bin/python -m bench email_outbound [--help]  (or: -m bench.email_outbound)
Needs PostgreSQL on 127.0.0.1:5432 (trust, user postgres) and Redis on 127.0.0.1:6379. Prints a summary and writes
it to bench/results/email_outbound.json; exits 1 if a mail is missing, sent twice or left unsent, and (with
--fail-on-goal) 2 when the goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import aiosmtplib
from arq.connections import ArqRedis
from sqlalchemy import text

from bench import _machine, _profile, _servers, _stores
from bench._servers import HOST
from carehub.mail.ingest import accept, ack_context
from carehub.migrations import upgrade
from carehub.outbox.dispatch import ArqDispatcher, Job
from carehub.runtime import Runtime
from carehub.settings import Settings
from channels.base import ChannelKind, OutboundEmail, OutboundEnvelope
from channels.email.loops import outgoing_auto_headers
from channels.email.writer import compose_bytes
from tests.support.mail import resident_mail

REPO = Path(__file__).resolve().parents[1]
CAREHUB_BIN = Path(sys.executable).parent / "carehub"
RESULTS_FILE = Path(__file__).with_name("results") / "email_outbound.json"
QUEUE_NAME = "carehub:queue"
PUBLIC_URL = "https://bench.invalid"
GOAL_RATIO = 0.60
RAW_CONNECTIONS = 10  # as the worker's SMTP pool (CAREHUB_SMTP_POOL_SIZE's default)
STAGE_CONCURRENCY = 8
WAIT_S = 300.0
RESIDENT_TEXT = (
    "Hello,\n\nThe streetlight in front of 1867 Kingston Road has been out for three nights now, and the crossing "
    "there is very dark. Could someone come and fix it? My neighbour nearly missed a cyclist yesterday.\n\n"
    "Thank you,\nA resident\n"
)

_EVENT_LOOP = ("asyncio/base_events.py", "asyncio/events.py", "asyncio/tasks.py", "asyncio/futures.py", "selectors.py")

# What the worker's CPU goes to, by source file; the first match walking up from the running frame wins.
PROFILE_CATEGORIES: _profile.Categories = (
    ("aiosmtplib (SMTP client, socket writes)", ("aiosmtplib/",)),
    ("stdlib email: composing + flattening the MIME message", ("email/",)),
    ("Jinja2 (templates)", ("jinja2/",)),
    ("arq + redis-py (jobs, socket writes)", ("arq/", "redis/")),
    ("asyncpg (driver, protocol, socket writes)", ("asyncpg/",)),
    *_profile.SQLALCHEMY_CATEGORIES,
    ("logging (arq's per-job lines)", ("logging/",)),
    ("carehub + channels code", ("carehub/", "channels/", "workers/")),
    # Transport writes (asyncio/selector_events.py) are left to the library that wrote: on loopback the send
    # syscall is where the kernel does the delivery work, and it is paid per round trip.
    ("event loop and other stdlib", _EVENT_LOOP),
)


class SinkProcess:
    """bench/_smtp_sink.py in its own process group; commands go over its stdin, one answer line each."""

    def __init__(self, log_path: Path) -> None:
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench._smtp_sink"], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._log, text=True, start_new_session=True,
        )  # fmt: skip
        line = self._readline()
        if not line.startswith("listening on "):
            raise _servers.ServerFailed(f"SMTP sink said {line!r}; log {log_path}")
        self.port = int(line.rsplit(":", 1)[1])

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        return self.proc.stdin, self.proc.stdout

    def _readline(self) -> str:
        line = self._pipes()[1].readline().strip()
        if not line:
            raise _servers.ServerFailed(f"SMTP sink exited ({self.proc.poll()})")
        return line

    def ask(self, command: str) -> list[str]:
        stdin, _ = self._pipes()
        stdin.write(command + "\n")
        stdin.flush()
        return self._readline().split()

    def reset(self) -> None:
        self.ask("reset")

    def wait_for(self, count: int, within: float = WAIT_S) -> tuple[float, int]:
        """(monotonic time the count-th message arrived, connections since the reset)."""
        answer = self.ask(f"wait {count} {within}")
        if answer[0] != "done":
            raise _servers.ServerFailed(f"SMTP sink received {answer[-1]} of {count} messages within {within:.0f} s")
        return float(answer[2]), int(answer[3])

    def stats(self) -> dict[str, int]:
        _, messages, ids, size, connections = self.ask("stats")
        return {
            "messages": int(messages),
            "distinct_message_ids": int(ids),
            "bytes": int(size),
            "connections": int(connections),
        }

    def cpu_seconds(self) -> float:
        return _servers.group_cpu_seconds(self.proc.pid)

    def close(self) -> None:
        _servers.stop(self.proc)
        self._log.close()


@contextmanager
def smtp_sink(log_path: Path) -> Iterator[SinkProcess]:
    sink = SinkProcess(log_path)
    try:
        yield sink
    finally:
        sink.close()


@dataclass(frozen=True)
class Measured:
    """One sender's run of `mails` messages: from its first send (or enqueue) to the sink holding the last."""

    name: str
    mails: int
    seconds: float
    cpu_s: dict[str, float]
    connections: int
    """TCP connections the sink accepted during the run."""

    @property
    def mails_per_s(self) -> float:
        return round(self.mails / self.seconds, 1) if self.seconds > 0 else 0.0

    @property
    def cpu_ms_per_mail(self) -> dict[str, float]:
        return {k: round(v / max(self.mails, 1) * 1000, 3) for k, v in self.cpu_s.items()}

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {"mails_per_s": self.mails_per_s, "cpu_ms_per_mail": self.cpu_ms_per_mail}


# ---------------------------------------------------------------- carehub: one worker


def worker_env(database: str, redis_url: str, sink_port: int, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREHUB_")}
    return env | {
        "CAREHUB_ENV": "production",
        "CAREHUB_PUBLIC_URL": PUBLIC_URL,
        "CAREHUB_TWILIO_AUTH_TOKEN": secrets.token_urlsafe(32),
        "CAREHUB_EMAIL_WEBHOOK_SECRET": secrets.token_urlsafe(32),
        "CAREHUB_DATABASE_URL": _stores.sqlalchemy_url(database),
        "CAREHUB_REDIS_URL": redis_url,
        "CAREHUB_SMTP_HOST": HOST,
        "CAREHUB_SMTP_PORT": str(sink_port),
        "CAREHUB_SMTP_TLS": "none",
        "CAREHUB_DATA_DIR": str(data_dir),
        # The rows are staged well before they are enqueued: the sweeper must not enqueue them on its own.
        "CAREHUB_SWEEP_GRACE_SECONDS": "3600",
    }


def settings_from(env: dict[str, str]) -> Settings:
    """The worker's settings, for the staging done in this process (no .env, only these variables)."""
    fields: dict[str, Any] = {k.removeprefix("CAREHUB_").lower(): v for k, v in env.items() if k.startswith("CAREHUB_")}
    return Settings(_env_file=None, **fields | {"redis_url": None})


async def stage_acknowledgements(settings: Settings, count: int) -> list[int]:
    """`count` residents each write in for the first time: `count` email tickets, each with its acknowledgement
    staged in the outbox (no dispatcher here, so nothing is enqueued). Returns the outbox ids, oldest first."""
    rt = Runtime.create(settings)
    await rt.open_hot_pool()
    slots = asyncio.Semaphore(STAGE_CONCURRENCY)

    async def one(i: int) -> bool:
        raw = resident_mail(f"resident{i}@mail.example", f"Streetlight out on Kingston Rd (#{i})", RESIDENT_TEXT)
        async with slots:
            return (await accept(rt, raw, source="webhook")).acknowledged

    try:
        acknowledged = await asyncio.gather(*(one(i) for i in range(count)))
        if not all(acknowledged):
            raise _servers.ServerFailed(f"only {sum(acknowledged)} of {count} staged emails were acknowledged")
        async with rt.transaction() as tx:
            rows = await tx.conn.execute(text("SELECT id FROM outbox WHERE channel = 'email' ORDER BY id"))
            return [int(r.id) for r in rows]
    finally:
        await rt.aclose()


def settings_database(settings: Settings) -> str:
    return settings.database_url.rsplit("/", 1)[1]


async def enqueue(redis_url: str, outbox_ids: Sequence[int]) -> None:
    """As the hub does after its commit: ArqDispatcher, every job in one pipeline, in batches of the default
    CAREHUB_DELIVERY_BATCH_SIZE (the rows are due together, as an alert's fan-out is)."""
    batch_size = Settings.model_fields["delivery_batch_size"].default
    dispatcher = ArqDispatcher(ArqRedis.from_url(redis_url), QUEUE_NAME, batch_size=batch_size)
    try:
        await dispatcher.enqueue([Job(i) for i in outbox_ids])
    finally:
        await dispatcher.aclose()


def wait_sent(database: str, ids: Sequence[int], within: float = 60.0) -> int:
    """Wait (bounded) until every row in `ids` is recorded sent; returns how many are."""
    deadline = time.monotonic() + within
    while True:
        sent = int(
            _stores.pg_scalar(database, "SELECT count(*) FROM outbox WHERE status = 'sent' AND id = ANY($1)", list(ids))
        )
        if sent == len(ids) or time.monotonic() > deadline:
            return sent
        time.sleep(0.05)


@dataclass(frozen=True)
class WorkerRun:
    warmup: Measured
    run: Measured
    sent: int
    """Rows of the measured run recorded "sent" once the sink had them all."""
    statuses: dict[str, int]
    sink: dict[str, int]


@contextmanager
def worker_process(env: dict[str, str], workdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """One `carehub worker`, cwd outside the repository (no developer's .env); SIGTERM, then SIGKILL, at the end."""
    with (workdir / "worker.log").open("wb") as log:
        proc = subprocess.Popen(
            [str(CAREHUB_BIN), "worker"], env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            yield proc
        finally:
            _servers.stop(proc)


def cpu_snapshot(worker_pid: int, sink: SinkProcess) -> dict[str, float]:
    return {
        "worker": _servers.group_cpu_seconds(worker_pid),
        "postgres": _servers.cpu_seconds_of("postgres"),
        "redis": _servers.cpu_seconds_of("redis-server"),
        "sink": sink.cpu_seconds(),
    }


def through_worker(
    name: str, database: str, redis_url: str, ids: Sequence[int], sink: SinkProcess, worker_pid: int
) -> Measured:
    """Enqueue `ids` at once; the time until the sink has them all; CPU until every row is recorded sent."""
    sink.reset()
    before = cpu_snapshot(worker_pid, sink)
    started = time.monotonic()
    asyncio.run(enqueue(redis_url, ids))
    arrived, connections = sink.wait_for(len(ids))
    wait_sent(database, ids)
    after = cpu_snapshot(worker_pid, sink)
    return Measured(name, len(ids), arrived - started, {k: after[k] - before[k] for k in after}, connections)


def run_worker_phase(
    env: dict[str, str],
    workdir: Path,
    sink: SinkProcess,
    ids: list[int],
    args: argparse.Namespace,
    profile_file: Path,
) -> WorkerRun:
    database = settings_database(settings_from(env))
    redis_url = env["CAREHUB_REDIS_URL"]
    warm_ids, run_ids = ids[: args.warmup], ids[args.warmup :]
    with worker_process(env, workdir) as worker:
        print(f"bench: carehub worker: warm-up {len(warm_ids)} mails (includes its start)", flush=True)
        warmup = through_worker("carehub warm-up", database, redis_url, warm_ids, sink, worker.pid)
        profile: AbstractContextManager[None] = nullcontext()
        if args.profile:
            # Long enough for the run at the warm-up's pace (idle samples are not recorded, so overrunning is harmless).
            expected = len(run_ids) / max(warmup.mails_per_s, 1.0)
            profile = _profile.sampling(args.py_spy, worker.pid, max(2.0, expected), profile_file)
        print(f"bench: carehub worker: {len(run_ids)} mails", flush=True)
        with profile:
            run = through_worker("carehub worker", database, redis_url, run_ids, sink, worker.pid)
        sink_stats = sink.stats()
    sent = wait_sent(database, run_ids, within=0.0)
    rows = _stores.pg_query(database, "SELECT status, count(*) FROM outbox GROUP BY status ORDER BY status")
    return WorkerRun(warmup, run, sent, {str(r[0]): int(r[1]) for r in rows}, sink_stats)


# ---------------------------------------------------------------- baseline: raw aiosmtplib


def raw_messages(settings: Settings, count: int) -> list[tuple[str, bytes]]:
    """`count` acknowledgements like the worker's (same templates, headers, threading, From), each to its own
    resident with its own Message-ID, composed and flattened to bytes beforehand: only sending is left."""
    rt = Runtime.create(settings)
    text, html = rt.templates.render_email("ack", "en", **ack_context(rt, "PKR-000123"))
    domain = settings.email_from_address.rpartition("@")[2]
    messages = []
    for i in range(count):
        to = f"resident{i}@mail.example"
        resident_id = f"<raw.{i}.resident@mail.example>"
        email = OutboundEmail(
            message_id=f"<raw.{i}.{secrets.token_hex(4)}@{domain}>",
            subject=f"Re: Streetlight out on Kingston Rd (#{i}) [PKR-{i:06d}]",
            text=text,
            html=html,
            in_reply_to=resident_id,
            references=(resident_id,),
            headers=outgoing_auto_headers("auto-replied", settings.email_from_address),
        )
        envelope = OutboundEnvelope(outbox_id=i, channel=ChannelKind.EMAIL, to=to, body=text, email=email)
        data = compose_bytes(envelope, from_address=settings.email_from_address, from_name=settings.email_from_name)
        messages.append((to, data))
    return messages


def _client(port: int, local_hostname: str) -> aiosmtplib.SMTP:
    return aiosmtplib.SMTP(
        hostname=HOST, port=port, local_hostname=local_hostname, use_tls=False, start_tls=False, timeout=30
    )


async def send_pooled(
    port: int, local_hostname: str, sender: str, messages: list[tuple[str, bytes]], connections: int
) -> float:
    """`connections` connections opened first, then each sends the next message until none is left; returns the
    monotonic time of the first send."""
    clients = [_client(port, local_hostname) for _ in range(connections)]
    await asyncio.gather(*(c.connect() for c in clients))
    queue = iter(messages)

    async def drain(client: aiosmtplib.SMTP) -> None:
        for to, data in queue:
            await client.sendmail(sender, [to], data)

    started = time.monotonic()
    await asyncio.gather(*(drain(c) for c in clients))
    await asyncio.gather(*(c.quit() for c in clients))
    return started


async def send_new_connection_each(
    port: int, local_hostname: str, sender: str, messages: list[tuple[str, bytes]]
) -> float:
    """Connect, send one message, QUIT, for every message; RAW_CONNECTIONS of these at a time."""
    queue = iter(messages)

    async def drain() -> None:
        for to, data in queue:
            client = _client(port, local_hostname)
            await client.connect()
            await client.sendmail(sender, [to], data)
            await client.quit()

    started = time.monotonic()
    await asyncio.gather(*(drain() for _ in range(RAW_CONNECTIONS)))
    return started


def raw_run(name: str, sink: SinkProcess, send: Callable[[], Coroutine[Any, Any, float]], mails: int) -> Measured:
    sink.reset()
    sink_before, cpu_before = sink.cpu_seconds(), time.process_time()
    started = asyncio.run(send())
    arrived, connections = sink.wait_for(mails)
    cpu = {"client": time.process_time() - cpu_before, "sink": sink.cpu_seconds() - sink_before}
    return Measured(name, mails, arrived - started, cpu, connections)


def run_raw_phase(
    settings: Settings, sink: SinkProcess, args: argparse.Namespace
) -> tuple[list[Measured], list[list[float]], int]:
    messages = raw_messages(settings, args.mails)
    local = socket.getfqdn()  # once, as SmtpEmailAdapter keeps it after its first connection
    port, sender = sink.port, settings.email_from_address
    print("bench: raw aiosmtplib: warm-up", flush=True)
    raw_run(
        "raw warm-up",
        sink,
        lambda: send_pooled(port, local, sender, messages[: args.warmup], RAW_CONNECTIONS),
        args.warmup,
    )
    runs: list[Measured] = []
    trial_rates: list[list[float]] = []
    for name, send in (
        (
            f"raw aiosmtplib, {RAW_CONNECTIONS} connections",
            lambda: send_pooled(port, local, sender, messages, RAW_CONNECTIONS),
        ),
        ("raw aiosmtplib, 1 connection", lambda: send_pooled(port, local, sender, messages, 1)),
        (
            f"raw aiosmtplib, new connection per mail ({RAW_CONNECTIONS} at a time)",
            lambda: send_new_connection_each(port, local, sender, messages),
        ),
    ):
        print(f"bench: {name}: {args.mails} mails, {args.raw_trials} trial(s)", flush=True)
        trials = [raw_run(name, sink, send, args.mails) for _ in range(args.raw_trials)]
        # The median trial: a few seconds each, so one disturbed by other work on the machine would swing the goal.
        median = sorted(trials, key=lambda m: m.mails_per_s)[len(trials) // 2]
        runs.append(median)
        trial_rates.append([m.mails_per_s for m in trials])
    return runs, trial_rates, sum(len(m) for _, m in messages) // max(len(messages), 1)


# ---------------------------------------------------------------- report


def row(m: Measured, cpu_keys: Sequence[str]) -> str:
    cpu = " / ".join(f"{m.cpu_ms_per_mail.get(k, 0.0):.3f}" for k in cpu_keys)
    return f"{m.name:<52}{m.mails:>7,}{m.seconds:>9.2f}{m.mails_per_s:>10,.0f}{m.connections:>7}   {cpu}"


def summary_text(
    result: dict[str, Any], worker: WorkerRun, raw: list[Measured], profile: _profile.Profile | None
) -> str:
    cfg, goal = result["config"], result["goal"]
    lines = [
        f"Outbound email: {cfg['mails']:,} acknowledgements after {cfg['warmup']} warm-up, one `carehub worker` "
        f"(max_jobs {cfg['worker_max_jobs']}, SMTP pool {cfg['smtp_pool_size']}) vs raw aiosmtplib, to one aiosmtpd "
        f"sink process; mail size ≈ {cfg['carehub_mail_bytes']:,} B (carehub) / {cfg['raw_mail_bytes']:,} B (raw)",
        f"{'':<52}{'mails':>7}{'s':>9}{'mails/s':>10}{'conns':>7}   CPU ms/mail",
        row(worker.run, ("worker", "postgres", "redis", "sink")) + "  (worker / postgres / redis / sink)",
    ]
    lines += [row(m, ("client", "sink")) + "  (client / sink)" for m in raw]
    lines.append(
        f"raw: median of {cfg['raw_trials']} trials each; mails/s of every trial: "
        + "; ".join(", ".join(f"{r:,.0f}" for r in t["trials_mails_per_s"]) for t in result["raw"])
    )
    lines.append(
        f"carehub / raw ({RAW_CONNECTIONS} connections): {goal['ratio']:.1%} (goal >= {GOAL_RATIO:.0%}: "
        f"{'met' if goal['met'] else 'MISSED'}); vs 1 connection {goal['vs_one_connection']:.1%}, vs a new connection "
        f"per mail {goal['vs_new_connection_each']:.1%}"
        + ("" if result["ok"] else "; the run FAILED (below): not valid")
    )
    lines.append(f"outbox after the run: {worker.statuses}; sink: {worker.sink}")
    if profile is not None:
        lines += _profile.report_lines(profile, "worker", worker.run.cpu_ms_per_mail["worker"], "mail")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.email_outbound", description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=3000, help="mails per measured run (default 3000)")
    parser.add_argument("--warmup", type=int, default=300, help="mails before each side's runs (default 300)")
    parser.add_argument("--raw-trials", type=int, default=3, help="trials per raw mode; the median counts (default 3)")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE)
    parser.add_argument("--fail-on-goal", action="store_true", help="exit 2 when the goal is missed")
    parser.add_argument("--profile", action="store_true", help="sample the worker with py-spy during its run")
    parser.add_argument("--py-spy", help="py-spy binary for --profile (default: on PATH)")
    args = parser.parse_args(argv)
    if args.mails < 1 or args.warmup < 1 or args.raw_trials < 1:
        parser.error("--mails, --warmup and --raw-trials must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.profile:
        args.py_spy = _profile.find_py_spy(args.py_spy)
    load_before = os.getloadavg()
    profile_file = args.output.with_name(args.output.stem + ".worker-pyspy.txt")
    profile_file.parent.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="carehub-bench-") as tmp,
        _stores.postgres_database() as database,
        _stores.redis_database(f"bench-{secrets.token_hex(4)}") as redis_url,
        smtp_sink(Path(tmp) / "sink.log") as sink,
    ):
        workdir = Path(tmp)
        env = worker_env(database, redis_url, sink.port, workdir / "data")
        settings = settings_from(env)
        upgrade(settings)
        print(f"bench: staging {args.warmup + args.mails:,} acknowledgements (ingesting residents' first mails)")
        ids = asyncio.run(stage_acknowledgements(settings, args.warmup + args.mails))
        try:
            worker = run_worker_phase(env, workdir, sink, ids, args, profile_file)
        except Exception:
            log = workdir / "worker.log"
            if log.exists():
                print("bench: worker log (last 40 lines):\n" + "\n".join(log.read_text().splitlines()[-40:]))
            raise
        raw, raw_trials, raw_bytes = run_raw_phase(settings, sink, args)
    failures = []
    if worker.sent != args.mails:
        failures.append(f"{worker.sent} of {args.mails} outbox rows recorded sent")
    if worker.sink["messages"] != args.mails or worker.sink["distinct_message_ids"] != args.mails:
        failures.append(f"the sink got {worker.sink} for {args.mails} mails: some missing or sent twice")
    if worker.statuses != {"sent": len(ids)}:
        failures.append(f"outbox rows not all sent: {worker.statuses}")
    baseline, one, each = raw
    goal = {
        "ratio": round(worker.run.mails_per_s / baseline.mails_per_s, 4),
        "goal": GOAL_RATIO,
        "met": worker.run.mails_per_s / baseline.mails_per_s >= GOAL_RATIO,
        "vs_one_connection": round(worker.run.mails_per_s / one.mails_per_s, 4),
        "vs_new_connection_each": round(worker.run.mails_per_s / each.mails_per_s, 4),
    }
    profiled = _profile.summarise(profile_file, PROFILE_CATEGORIES) if args.profile else None
    result: dict[str, Any] = {
        "benchmark": "email_outbound",
        "ok": not failures,
        "failures": failures,
        "machine": _machine.describe(
            postgresql=str(_stores.pg_scalar("postgres", "SHOW server_version")),
            redis=_stores.redis_version(),
            aiosmtplib=aiosmtplib.__version__,
            load_average_before=" ".join(f"{x:.2f}" for x in load_before),
        ),
        "config": {
            "mails": args.mails,
            "warmup": args.warmup,
            "worker_max_jobs": settings.worker_max_jobs,
            "smtp_pool_size": settings.smtp_pool_size,
            "raw_connections": RAW_CONNECTIONS,
            "raw_trials": args.raw_trials,
            "carehub_mail_bytes": worker.sink["bytes"] // max(worker.sink["messages"], 1),
            "raw_mail_bytes": raw_bytes,
            "profiled": args.profile,
        },
        "goal": goal,
        "carehub": {
            "warmup": worker.warmup.as_json(),
            "run": worker.run.as_json(),
            "outbox_statuses": worker.statuses,
            "sink": worker.sink,
            "profile": profiled.as_json() if profiled else None,
        },
        "raw": [m.as_json() | {"trials_mails_per_s": t} for m, t in zip(raw, raw_trials, strict=True)],
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(summary_text(result, worker, raw, profiled))
    print(f"bench: results in {args.output}")
    if failures:
        print("bench: FAILED\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    if args.fail_on_goal and not goal["met"]:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
