"""Benchmark: the inbound SMS webhook (POST /webhooks/twilio/sms) of one `carehub serve` process on PostgreSQL and
Redis, against a bare FastAPI POST (bench/baseline_app.py) measured in the same run under the same wrk load; then
checks in the database that every request was stored once, answered 200, and that every sender has one ticket.

Run: make bench  (starts Redis + PostgreSQL first)  or  .venv/bin/python -m bench.inbound_sms [--help]
Needs PostgreSQL on 127.0.0.1:5432 (trust, user postgres) and Redis on 127.0.0.1:6379; installs wrk (Debian) if
missing. Prints a summary and writes it to bench/results/inbound_sms.json; exits 1 on any non-2xx response, socket
error or lost/extra message, and (with --fail-on-goal) 2 when the goal is missed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import secrets
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from twilio.request_validator import RequestValidator

from bench import _machine, _profile, _servers, _stores
from bench._servers import HOST, Server
from bench._sms_requests import SMS_PATH, SignedSms, phone_pool, sent_requests, signed_sms, write_requests
from bench._wrk import DRAIN_LIMIT_S, WrkResult, ensure_wrk, run_wrk, wrk_version

PUBLIC_URL = "https://bench.invalid"  # production refuses http; requests are signed against this URL
QUEUE_NAME = "carehub:queue"  # Settings.queue_name's default: the arq queue acknowledgements are enqueued to
REPO = Path(__file__).resolve().parents[1]
CAREHUB_BIN = Path(sys.executable).parent / "carehub"
RESULTS_FILE = Path(__file__).with_name("results") / "inbound_sms.json"

GOAL_RATIO = 0.20
GOAL_P99_MS = 100.0
WARMUP_SENDERS = 200  # a pool of their own, so the measured run still sees each of its senders' first text
BASELINE_POOL = 5_000  # the baseline stores nothing, so its requests may repeat
QUIET_TIMEOUT_S = 15.0

# What the hub's CPU goes to, by source file; the first match walking up from the running frame wins.
PROFILE_CATEGORIES: _profile.Categories = (
    ("anyio worker threads (sync dependency)", ("threading.py", "anyio/to_thread.py")),
    ("twilio signature check", ("twilio/",)),
    ("phonenumbers (E.164)", ("phonenumbers/",)),
    ("Jinja2 (acknowledgement text)", ("jinja2/",)),
    ("arq + redis-py (enqueue ack)", ("arq/", "redis/")),
    ("asyncpg (driver, protocol)", ("asyncpg/",)),
    ("SQLAlchemy: cache keys", ("sqlalchemy/sql/cache_key.py",)),
    ("SQLAlchemy: compiled SQL + parameters", ("sqlalchemy/sql/compiler.py",)),
    ("SQLAlchemy: building statements", ("sqlalchemy/sql/", "<sqlalchemy generated")),
    ("SQLAlchemy: execution, results, pool", ("sqlalchemy/engine/", "sqlalchemy/pool/", "sqlalchemy/dialects/")),
    ("SQLAlchemy: asyncio adaptation (greenlet)", ("sqlalchemy/ext/asyncio/", "sqlalchemy/util/concurrency.py")),
    ("SQLAlchemy: other", ("sqlalchemy/",)),
    ("carehub + channels code", ("carehub/", "channels/")),
    ("HTTP: uvicorn, Starlette, FastAPI, anyio", ("uvicorn/", "starlette/", "fastapi/", "anyio/")),
    ("event loop (uvloop) and other stdlib", ("asyncio/",)),
)


@dataclass(frozen=True)
class Measured:
    """One server under load: the warm-up run, the measured run, and the CPU each process used during the latter."""

    name: str
    warmup: WrkResult
    run: WrkResult
    cpu_s: dict[str, float]

    @property
    def cpu_ms_per_request(self) -> dict[str, float]:
        return {k: round(v / max(self.run.completed, 1) * 1000, 3) for k, v in self.cpu_s.items()}

    def as_json(self) -> dict[str, Any]:
        return {
            "warmup": self.warmup.as_json(),
            "run": self.run.as_json(),
            "cpu_s": {k: round(v, 2) for k, v in self.cpu_s.items()},
            "cpu_ms_per_request": self.cpu_ms_per_request,
        }


def cpu_snapshot(server: Server) -> dict[str, float]:
    # postgres and redis-server: every process of that name, so other work on the machine shows up here too.
    return {
        "server": server.cpu_seconds(),
        "postgres": _servers.cpu_seconds_of("postgres"),
        "redis": _servers.cpu_seconds_of("redis-server"),
    }


def measure(
    name: str,
    server: Server,
    wrk: str,
    files: tuple[Path, Path],
    args: argparse.Namespace,
    profile: AbstractContextManager[None] | None = None,
) -> Measured:
    """Warm up, then the measured run; `profile` (if any) samples the server during the measured run."""
    common: dict[str, Any] = {
        "connections": args.connections,
        "threads": args.threads,
        "cycle": name == "baseline",
        "workdir": files[0].parent,
    }
    url = server.base_url + SMS_PATH
    print(f"bench: {name}: warm-up {args.warmup} s", flush=True)
    warmup = run_wrk(wrk, url, files[0], duration_s=args.warmup, **common)
    print(f"bench: {name}: {args.duration} s at {args.connections} connections", flush=True)
    before = cpu_snapshot(server)
    with profile or nullcontext():
        run = run_wrk(wrk, url, files[1], duration_s=args.duration, **common)
    after = cpu_snapshot(server)
    cpu = {k: after[k] - before[k] for k in after} | {"wrk": run.cpu_s}
    return Measured(name, warmup, run, cpu)


def base_env() -> dict[str, str]:
    """This environment without CAREHUB_* variables: only what a benchmark sets reaches the hub."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CAREHUB_")}


def run_baseline(wrk: str, workdir: Path, args: argparse.Namespace) -> Measured:
    rng = random.Random(args.seed)
    validator = RequestValidator("baseline")  # not checked: the same bytes on the wire as the hub's requests
    requests = signed_sms(rng, validator, PUBLIC_URL, phone_pool("905", args.senders), BASELINE_POOL)
    files = (write_requests(workdir / "baseline-warmup.txt", requests), workdir / "baseline-run.txt")
    files[1].write_bytes(files[0].read_bytes())
    port = _servers.free_port()
    argv = [sys.executable, "-m", "bench.baseline_app", "--host", HOST, "--port", str(port)]
    log_path = workdir / "baseline.log"
    with _servers.running("baseline", argv, port=port, env=base_env(), cwd=REPO, log_path=log_path) as server:
        return measure("baseline", server, wrk, files, args)


@dataclass
class Verification:
    """What the database and the queue hold after the hub's run, against what wrk sent and was answered."""

    sent: int = 0
    ok_responses: int = 0
    stored_inbound: int = 0
    missing: int = 0
    unexpected: int = 0
    distinct_senders: int = 0
    tickets: int = 0
    senders_with_several_tickets: int = 0
    acks_staged: int = 0
    acks_enqueued: int = 0
    measured_new_ticket_share: float = 0.0
    problems: list[str] = field(default_factory=list)


def verify(
    database: str, redis_url: str, hub: Measured, sent: list[SignedSms], measured: list[SignedSms]
) -> Verification:
    v = Verification(sent=len(sent))
    v.ok_responses = sum(r.statuses.get(200, 0) for r in (hub.warmup, hub.run))
    stored = {str(r[0]) for r in _stores.pg_query(database, "SELECT provider_id FROM messages WHERE direction = 'in'")}
    sids = {r.sid for r in sent}
    v.stored_inbound = int(_stores.pg_scalar(database, "SELECT count(*) FROM messages WHERE direction = 'in'"))
    v.missing = len(sids - stored)
    v.unexpected = len(stored - sids)
    v.distinct_senders = len({r.sender for r in sent})
    v.tickets = int(_stores.pg_scalar(database, "SELECT count(*) FROM tickets"))
    v.senders_with_several_tickets = int(
        _stores.pg_scalar(
            database, "SELECT count(*) FROM (SELECT address_id FROM tickets GROUP BY address_id HAVING count(*) > 1) s"
        )
    )
    v.acks_staged = int(_stores.pg_scalar(database, "SELECT count(*) FROM outbox"))
    v.acks_enqueued = _stores.redis_sorted_set_size(redis_url, QUEUE_NAME)
    v.measured_new_ticket_share = round(len({r.sender for r in measured}) / max(len(measured), 1), 3)
    checks = (
        (v.stored_inbound == v.ok_responses, f"{v.stored_inbound} inbound messages stored for {v.ok_responses} 200s"),
        (v.stored_inbound == v.sent, f"{v.stored_inbound} inbound messages stored for {v.sent} requests sent"),
        (v.missing == 0, f"{v.missing} sent MessageSids not stored"),
        (v.unexpected == 0, f"{v.unexpected} stored MessageSids never sent"),
        (v.tickets == v.distinct_senders, f"{v.tickets} tickets for {v.distinct_senders} distinct senders"),
        (v.senders_with_several_tickets == 0, f"{v.senders_with_several_tickets} senders with several tickets"),
        (v.acks_staged == v.tickets, f"{v.acks_staged} acknowledgements staged for {v.tickets} new tickets"),
        (v.acks_enqueued == v.acks_staged, f"{v.acks_enqueued} arq jobs queued for {v.acks_staged} staged acks"),
    )
    v.problems = [text for ok, text in checks if not ok]
    return v


def hub_env(database: str, redis_url: str, token: str, pool_size: int) -> dict[str, str]:
    return base_env() | {
        "CAREHUB_ENV": "production",
        "CAREHUB_PUBLIC_URL": PUBLIC_URL,
        "CAREHUB_TWILIO_AUTH_TOKEN": token,
        # Production refuses the development placeholders for the other channels' secrets too.
        "CAREHUB_EMAIL_WEBHOOK_SECRET": secrets.token_urlsafe(32),
        "CAREHUB_CHAT_TOKEN_SECRET": secrets.token_urlsafe(32),
        "CAREHUB_ALERTS_LINK_SECRET": secrets.token_urlsafe(32),
        "CAREHUB_SMTP_HOST": "127.0.0.1",  # required in production; no worker runs here, so nothing is mailed
        "CAREHUB_DATABASE_URL": _stores.sqlalchemy_url(database),
        "CAREHUB_DATABASE_POOL_SIZE": str(pool_size),
        "CAREHUB_REDIS_URL": redis_url,
    }


@dataclass(frozen=True)
class HubRun:
    measured: Measured
    verification: Verification
    database_per_request: dict[str, float]
    """pg_stat_database counters over the whole hub phase (warm-up included), per request sent."""
    hub_sessions_opened: int
    profile: _profile.Profile | None


def run_hub(wrk: str, workdir: Path, args: argparse.Namespace, baseline_rps: float) -> HubRun:
    token = secrets.token_urlsafe(32)
    validator = RequestValidator(token)
    rng = random.Random(args.seed + 1)

    # Enough distinct requests for the hub to run as fast as the baseline did, and then some: never replayed.
    def pool_size(seconds: float) -> int:
        return math.ceil(baseline_rps * seconds * 1.25) + 2_000

    print("bench: hub: signing requests", flush=True)
    warm = signed_sms(rng, validator, PUBLIC_URL, phone_pool("289", WARMUP_SENDERS), pool_size(args.warmup))
    run = signed_sms(rng, validator, PUBLIC_URL, phone_pool("905", args.senders), pool_size(args.duration))
    files = (write_requests(workdir / "hub-warmup.txt", warm), write_requests(workdir / "hub-run.txt", run))
    profile_file = args.output.with_name(args.output.stem + ".hub-pyspy.txt")
    with _stores.redis_database(f"bench-{secrets.token_hex(4)}") as redis_url, _stores.postgres_database() as db:
        env = hub_env(db, redis_url, token, args.connections)
        migrate = subprocess.run(
            [str(CAREHUB_BIN), "migrate"], env=env, cwd=workdir, timeout=120, capture_output=True, text=True
        )
        if migrate.returncode != 0:
            raise _servers.ServerFailed(f"carehub migrate exited {migrate.returncode}:\n{migrate.stderr}")
        counters_before = _stores.pg_database_counters(db)
        port = _servers.free_port()
        argv = shlex.split(args.hub_command) if args.hub_command else [str(CAREHUB_BIN), "serve"]
        argv += ["--host", HOST, "--port", str(port)]
        # cwd outside the repository: the hub must not read a developer's .env
        with _servers.running("hub", argv, port=port, env=env, cwd=workdir, log_path=workdir / "hub.log") as server:
            status, body = _servers.get(server.base_url + "/readyz")
            if status != 200:
                raise _servers.ServerFailed(f"hub /readyz answered {status}: {body.decode(errors='replace')}")
            profile = None
            if args.profile:
                profile_file.parent.mkdir(parents=True, exist_ok=True)
                profile = _profile.sampling(args.py_spy, server.proc.pid, args.duration, profile_file)
            hub = measure("hub", server, wrk, files, args, profile)
        # Stopped: every pooled session has closed, so pg_stat_database holds all of the hub's counts.
        counters_after = _stores.pg_database_counters(db, quiet_timeout=QUIET_TIMEOUT_S)
        sent_warm, sent_run = sent_requests(warm, hub.warmup), sent_requests(run, hub.run)
        verification = verify(db, redis_url, hub, sent_warm + sent_run, sent_run)
    total_sent = max(len(sent_warm) + len(sent_run), 1)
    delta = {k: counters_after[k] - counters_before[k] for k in counters_after}
    return HubRun(
        measured=hub,
        verification=verification,
        database_per_request={k: round(v / total_sent, 2) for k, v in delta.items() if k != "sessions"},
        hub_sessions_opened=delta["sessions"] - 1,  # the after-snapshot's own session counts too
        profile=_profile.summarise(profile_file, PROFILE_CATEGORIES) if args.profile else None,
    )


def load_failures(m: Measured) -> list[str]:
    failures = []
    for phase, r in (("warm-up", m.warmup), ("run", m.run)):
        if r.non_2xx:
            failures.append(f"{m.name} {phase}: {r.non_2xx} non-2xx responses {r.statuses}")
        if r.socket_errors:
            failures.append(f"{m.name} {phase}: socket errors {r.errors}")
        if r.unanswered:
            failures.append(f"{m.name} {phase}: {r.unanswered} requests unanswered {DRAIN_LIMIT_S} s after the window")
        if r.exhausted and m.name != "baseline":
            failures.append(f"{m.name} {phase}: used up its {r.sent} distinct requests before the deadline")
    return failures


def row(name: str, r: WrkResult) -> str:
    lat = r.latency_ms
    return (
        f"{name:<26}{r.rps:>10,.0f}{lat['p50']:>9.1f}{lat['p90']:>9.1f}{lat['p99']:>9.1f}{lat['max']:>9.1f}"
        f"{r.completed:>10,}{r.non_2xx:>9,}"
    )


def summary_text(result: dict[str, Any], baseline: Measured, hub: HubRun) -> str:
    cfg, goal, v, m = result["config"], result["goal"], hub.verification, hub.measured
    cpu_b, cpu_h = baseline.cpu_ms_per_request, m.cpu_ms_per_request
    db = hub.database_per_request
    lines = [
        f"Inbound SMS webhook: {cfg['connections']} connections, {cfg['duration_s']} s after {cfg['warmup_s']} s "
        f"warm-up, wrk {cfg['wrk_threads']} thread(s), {cfg['senders']} senders",
        f"{'':<26}{'req/s':>10}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'requests':>10}{'non-2xx':>9}",
        row("bare FastAPI POST", baseline.run),
        row("carehub inbound SMS", m.run),
        f"hub / baseline: {goal['ratio']:.1%} (goal >= {GOAL_RATIO:.0%}: {'met' if goal['ratio_met'] else 'MISSED'});"
        f" hub p99 {m.run.latency_ms['p99']:.1f} ms (goal < {GOAL_P99_MS:.0f} ms: "
        f"{'met' if goal['p99_met'] else 'MISSED'})" + ("" if result["ok"] else "; the run FAILED (below): not valid"),
        "CPU ms per request (server / postgres / redis / wrk): "
        f"baseline {cpu_b['server']:.3f} / {cpu_b['postgres']:.3f} / {cpu_b['redis']:.3f} / {cpu_b['wrk']:.3f}; "
        f"hub {cpu_h['server']:.3f} / {cpu_h['postgres']:.3f} / {cpu_h['redis']:.3f} / {cpu_h['wrk']:.3f}",
        f"PostgreSQL per hub request: {db['xact_commit']} commits, {db['tup_inserted']} rows inserted, "
        f"{db['tup_updated']} updated; {hub.hub_sessions_opened} sessions opened "
        f"(pool size {cfg['hub_database_pool_size']})",
        f"Stored: {v.stored_inbound:,} inbound messages for {v.sent:,} requests sent and {v.ok_responses:,} answered "
        f"200 (warm-up included); {v.tickets:,} tickets for {v.distinct_senders:,} distinct senders; "
        f"{v.acks_staged:,} acks staged, {v.acks_enqueued:,} queued in arq; "
        f"first texts (new tickets) in the measured run: {v.measured_new_ticket_share:.1%}",
    ]
    if hub.profile is not None:
        cpu_ms = m.cpu_ms_per_request["server"]
        lines.append(
            f"Hub profile: {hub.profile.samples} py-spy samples; share of samples (≈ CPU ms of the "
            f"{cpu_ms:.2f} per request)"
        )
        lines += [f"  {share:6.1%}  ≈{share * cpu_ms:5.2f} ms  {name}" for name, share in hub.profile.categories]
        lines.append("  most often running (self):")
        lines += [f"  {share:6.1%}  {name}" for name, share in hub.profile.own[:12]]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.inbound_sms", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="measured seconds per server (default 10)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds per server (default 3)")
    parser.add_argument("--connections", type=int, default=64, help="concurrent connections; also the hub's pool")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: it shares the 2 cores)")
    parser.add_argument("--senders", type=int, default=2_000, help="residents' phone numbers (default 2000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=RESULTS_FILE)
    parser.add_argument("--fail-on-goal", action="store_true", help="exit 2 when the goal is missed")
    parser.add_argument("--profile", action="store_true", help="sample the hub with py-spy during the measured run")
    parser.add_argument("--py-spy", help="py-spy binary for --profile (default: on PATH)")
    parser.add_argument(
        "--hub-command",
        help="run this instead of `carehub serve` (it gets --host and --port appended): to measure an experiment",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.profile:
        args.py_spy = _profile.find_py_spy(args.py_spy)
    wrk = ensure_wrk()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="carehub-bench-") as tmp:
        workdir = Path(tmp)
        baseline = run_baseline(wrk, workdir, args)
        failures = load_failures(baseline)
        if failures:
            raise SystemExit("bench: FAILED\n  " + "\n  ".join(failures))
        try:
            hub = run_hub(wrk, workdir, args, baseline.run.rps)
        except Exception:
            log = workdir / "hub.log"
            if log.exists():
                print("bench: hub log (last 40 lines):\n" + "\n".join(log.read_text().splitlines()[-40:]))
            raise
    failures = load_failures(hub.measured) + hub.verification.problems
    ratio = hub.measured.run.rps / baseline.run.rps
    p99 = hub.measured.run.latency_ms["p99"]
    goal = {"ratio": round(ratio, 4), "ratio_met": ratio >= GOAL_RATIO, "p99_ms": p99, "p99_met": p99 < GOAL_P99_MS}
    result: dict[str, Any] = {
        "benchmark": "inbound_sms",
        "ok": not failures,
        "failures": failures,
        "machine": _machine.describe(
            postgresql=str(_stores.pg_scalar("postgres", "SHOW server_version")),
            redis=_stores.redis_version(),
            wrk=wrk_version(wrk),
            load_average_before=" ".join(f"{x:.2f}" for x in load_before),
        ),
        "config": {
            "connections": args.connections,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "wrk_threads": args.threads,
            "senders": args.senders,
            "hub_database_pool_size": args.connections,
            "seed": args.seed,
            "profiled": args.profile,
            "hub_command": args.hub_command or "carehub serve",
        },
        "goal": goal | {"ratio_goal": GOAL_RATIO, "p99_goal_ms": GOAL_P99_MS},
        "baseline": baseline.as_json(),
        "hub": hub.measured.as_json()
        | {
            "database_per_request": hub.database_per_request,
            "database_sessions_opened": hub.hub_sessions_opened,
            "profile": hub.profile.as_json() if hub.profile else None,
        },
        "verification": asdict(hub.verification),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(summary_text(result, baseline, hub))
    print(f"bench: results in {args.output}")
    if failures:
        print("bench: FAILED\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    if args.fail_on_goal and not (goal["ratio_met"] and goal["p99_met"]):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
