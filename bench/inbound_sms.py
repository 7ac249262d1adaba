"""Benchmark: the inbound SMS webhook (POST /webhooks/twilio/sms) of one `carehub serve` process on PostgreSQL and
Redis, against a bare FastAPI POST (bench/baseline_app.py) measured in the same run under the same wrk load; then
checks in the database that every request wrk sent was stored once and every sender has one ticket.

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
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from bench import _machine, _servers, _stores
from bench._servers import HOST, Server
from bench._wrk import DRAIN_LIMIT_S, WrkResult, ensure_wrk, run_wrk, share, wrk_version

SMS_PATH = "/webhooks/twilio/sms"
PUBLIC_URL = "https://bench.invalid"  # production refuses http; requests are signed against this URL
ACCOUNT_SID = "AC" + "b3" * 16
CITY_NUMBER = "+19055550100"
QUEUE_NAME = "carehub:queue"  # Settings.queue_name's default: the arq queue acknowledgements are enqueued to
REPO = Path(__file__).resolve().parents[1]
CAREHUB_BIN = Path(sys.executable).parent / "carehub"
RESULTS_FILE = Path(__file__).with_name("results") / "inbound_sms.json"

GOAL_RATIO = 0.20
GOAL_P99_MS = 100.0
WARMUP_SENDERS = 200  # a pool of their own, so the measured run still sees each of its senders' first text
BASELINE_POOL = 5_000  # the baseline stores nothing, so its requests may repeat
DRAIN_TIMEOUT_S = 30.0

TEXTS = (
    "Pothole on Kingston Rd just west of Brock, eastbound lane. Two cars hit it this morning.",
    "Garbage wasn't picked up on Finch Ave today",
    "Streetlight out at Liverpool and Glenanna, very dark at night",
    "When is the next green bin pickup for Amberlea?",
    "There's a fallen tree blocking the sidewalk on Whites Rd near the school. Kids are walking on the road.",
    "Water main break? Water coming up through the road on Dixie Rd",
    "Hi, I'd like to book a large item pickup (old couch). Address is 1234 Rosebank Rd.",
    "Noise complaint: construction started at 6am again on Bayly St",
    "Thanks!",
    "Yes",
    "Is the Chestnut Hill rec centre pool open on the holiday Monday?",
    "Parking ticket question - I paid it online but got a reminder letter. Ref 88123.",
)


@dataclass(frozen=True)
class SignedSms:
    sid: str
    sender: str
    signature: str
    body: str


def phone_pool(area_code: str, size: int) -> list[str]:
    return [f"+1{area_code}555{i:04d}" for i in range(size)]


def twilio_params(sid: str, sender: str, text: str) -> dict[str, str]:
    """The fields Twilio posts for an incoming SMS (as in tests/support/twilio.py)."""
    return {
        "ToCountry": "CA", "ToState": "ON", "SmsMessageSid": sid, "NumMedia": "0", "ToCity": "PICKERING",
        "FromZip": "", "SmsSid": sid, "FromState": "ON", "SmsStatus": "received", "FromCity": "AJAX", "Body": text,
        "FromCountry": "CA", "To": CITY_NUMBER, "MessagingServiceSid": "", "ToZip": "", "NumSegments": "1",
        "MessageSid": sid, "AccountSid": ACCOUNT_SID, "From": sender, "ApiVersion": "2010-04-01",
    }  # fmt: skip


def signed_sms(rng: random.Random, validator: RequestValidator, senders: Sequence[str], count: int) -> list[SignedSms]:
    """`count` texts, each with its own MessageSid, from senders drawn at random, signed as Twilio would."""
    url = PUBLIC_URL + SMS_PATH
    out = []
    for _ in range(count):
        sid = f"SM{rng.getrandbits(128):032x}"
        sender = rng.choice(senders)
        params = twilio_params(sid, sender, rng.choice(TEXTS))
        out.append(SignedSms(sid, sender, str(validator.compute_signature(url, params)), urlencode(params)))
    return out


def write_requests(path: Path, requests: Sequence[SignedSms]) -> Path:
    path.write_text("".join(f"{r.signature}\t{r.body}\n" for r in requests))
    return path


def sent_requests(requests: Sequence[SignedSms], result: WrkResult) -> list[SignedSms]:
    """The requests wrk wrote: the first n of each thread's share of the file."""
    threads = len(result.sent_per_thread)
    sent: list[SignedSms] = []
    for thread, n in enumerate(result.sent_per_thread):
        sent.extend(share(requests, thread, threads)[:n])
    return sent


@dataclass(frozen=True)
class Measured:
    """One server under load: the warm-up run, the measured run, and the CPU each process used during the latter."""

    name: str
    warmup: WrkResult
    run: WrkResult
    cpu_s: dict[str, float]

    def as_json(self) -> dict[str, Any]:
        per_request = {k: round(v / max(self.run.completed, 1) * 1000, 3) for k, v in self.cpu_s.items()}
        return {
            "warmup": self.warmup.as_json(),
            "run": self.run.as_json(),
            "cpu_s": {k: round(v, 2) for k, v in self.cpu_s.items()},
            "cpu_ms_per_request": per_request,
        }


def measure(name: str, server: Server, wrk: str, files: tuple[Path, Path], args: argparse.Namespace) -> Measured:
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
    run = run_wrk(wrk, url, files[1], duration_s=args.duration, **common)
    after = cpu_snapshot(server)
    cpu = {k: after[k] - before[k] for k in after} | {"wrk": run.cpu_s}
    return Measured(name, warmup, run, cpu)


def cpu_snapshot(server: Server) -> dict[str, float]:
    return {
        "server": server.cpu_seconds(),
        "postgres": _servers.cpu_seconds_of("postgres"),
        "redis": _servers.cpu_seconds_of("redis-server"),
    }


def base_env() -> dict[str, str]:
    """This environment without CAREHUB_* variables: only what a benchmark sets reaches the hub."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CAREHUB_")}


def run_baseline(wrk: str, workdir: Path, args: argparse.Namespace) -> Measured:
    rng = random.Random(args.seed)
    requests = signed_sms(rng, RequestValidator("baseline"), phone_pool("905", args.senders), BASELINE_POOL)
    files = (write_requests(workdir / "baseline-warmup.txt", requests), workdir / "baseline-run.txt")
    files[1].write_bytes(files[0].read_bytes())
    port = _servers.free_port()
    argv = [sys.executable, "-m", "bench.baseline_app", "--host", HOST, "--port", str(port)]
    with _servers.running(
        "baseline", argv, port=port, env=base_env(), cwd=REPO, log_path=workdir / "baseline.log"
    ) as s:
        return measure("baseline", s, wrk, files, args)


@dataclass
class Verification:
    sent: int = 0
    ok_responses: int = 0
    unanswered: int = 0
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


def wait_for_drain(database: str, expected: int) -> int:
    """Requests wrk abandoned at its deadline still commit in the hub: wait (bounded) until they have."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while True:
        stored = int(_stores.pg_scalar(database, "SELECT count(*) FROM messages WHERE direction = 'in'"))
        if stored >= expected or time.monotonic() > deadline:
            return stored
        time.sleep(0.1)


def verify(
    database: str, redis_url: str, hub: Measured, sent: list[SignedSms], measured: list[SignedSms]
) -> Verification:
    v = Verification(sent=len(sent))
    v.ok_responses = sum(r.statuses.get(200, 0) for r in (hub.warmup, hub.run))
    v.unanswered = hub.warmup.unanswered + hub.run.unanswered
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
        "CAREHUB_DATABASE_URL": _stores.sqlalchemy_url(database),
        "CAREHUB_DATABASE_POOL_SIZE": str(pool_size),
        "CAREHUB_REDIS_URL": redis_url,
    }


def run_hub(wrk: str, workdir: Path, args: argparse.Namespace, baseline_rps: float) -> tuple[Measured, Verification]:
    token = secrets.token_urlsafe(32)
    validator = RequestValidator(token)
    rng = random.Random(args.seed + 1)

    # Enough distinct requests for the hub to run as fast as the baseline did, and then some: never replayed.
    def pool_size(seconds: float) -> int:
        return math.ceil(baseline_rps * seconds * 1.25) + 2_000

    print("bench: hub: signing requests", flush=True)
    warm = signed_sms(rng, validator, phone_pool("289", WARMUP_SENDERS), pool_size(args.warmup))
    run = signed_sms(rng, validator, phone_pool("905", args.senders), pool_size(args.duration))
    files = (write_requests(workdir / "hub-warmup.txt", warm), write_requests(workdir / "hub-run.txt", run))
    with _stores.redis_database(f"bench-{secrets.token_hex(4)}") as redis_url, _stores.postgres_database() as db:
        env = hub_env(db, redis_url, token, args.connections)
        subprocess.run(
            [str(CAREHUB_BIN), "migrate"], env=env, cwd=workdir, check=True, timeout=120, capture_output=True
        )  # fmt: skip
        port = _servers.free_port()
        argv = [str(CAREHUB_BIN), "serve", "--host", HOST, "--port", str(port)]
        # cwd outside the repository: the hub must not read a developer's .env
        with _servers.running("hub", argv, port=port, env=env, cwd=workdir, log_path=workdir / "hub.log") as server:
            status, body = _servers.get(server.base_url + "/readyz")
            if status != 200:
                raise _servers.ServerFailed(f"hub /readyz answered {status}: {body.decode(errors='replace')}")
            hub = measure("hub", server, wrk, files, args)
            sent_warm, sent_run = sent_requests(warm, hub.warmup), sent_requests(run, hub.run)
            wait_for_drain(db, len(sent_warm) + len(sent_run))
        return hub, verify(db, redis_url, hub, sent_warm + sent_run, sent_run)


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


def summary_text(result: dict[str, Any], baseline: Measured, hub: Measured, v: Verification) -> str:
    cfg, goal = result["config"], result["goal"]
    cpu_b, cpu_h = baseline.as_json()["cpu_ms_per_request"], hub.as_json()["cpu_ms_per_request"]
    lines = [
        f"Inbound SMS webhook: {cfg['connections']} connections, {cfg['duration_s']} s after {cfg['warmup_s']} s "
        f"warm-up, wrk {cfg['wrk_threads']} thread(s), {cfg['senders']} senders",
        f"{'':<26}{'req/s':>10}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'requests':>10}{'non-2xx':>9}",
        row("bare FastAPI POST", baseline.run),
        row("carehub inbound SMS", hub.run),
        f"hub / baseline: {goal['ratio']:.1%} (goal >= {GOAL_RATIO:.0%}: {'met' if goal['ratio_met'] else 'MISSED'});"
        f" hub p99 {hub.run.latency_ms['p99']:.1f} ms (goal < {GOAL_P99_MS:.0f} ms: "
        f"{'met' if goal['p99_met'] else 'MISSED'})",
        "CPU ms per request (server / postgres / redis / wrk): "
        f"baseline {cpu_b['server']:.3f} / {cpu_b['postgres']:.3f} / {cpu_b['redis']:.3f} / {cpu_b['wrk']:.3f}; "
        f"hub {cpu_h['server']:.3f} / {cpu_h['postgres']:.3f} / {cpu_h['redis']:.3f} / {cpu_h['wrk']:.3f}",
        f"Stored: {v.stored_inbound:,} inbound messages for {v.sent:,} requests sent and {v.ok_responses:,} answered "
        f"200 (warm-up included); "
        f"{v.tickets:,} tickets for {v.distinct_senders:,} distinct senders; {v.acks_staged:,} acks staged, "
        f"{v.acks_enqueued:,} queued in arq; new tickets in the measured run: {v.measured_new_ticket_share:.1%}",
    ]
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
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="carehub-bench-") as tmp:
        workdir = Path(tmp)
        baseline = run_baseline(wrk, workdir, args)
        failures = load_failures(baseline)
        if failures:
            raise SystemExit("bench: FAILED\n  " + "\n  ".join(failures))
        try:
            hub, verification = run_hub(wrk, workdir, args, baseline.run.rps)
        except Exception:
            log = workdir / "hub.log"
            if log.exists():
                print("bench: hub log (last 40 lines):\n" + "\n".join(log.read_text().splitlines()[-40:]))
            raise
    failures = load_failures(hub) + verification.problems
    ratio = hub.run.rps / baseline.run.rps
    p99 = hub.run.latency_ms["p99"]
    goal = {"ratio": round(ratio, 4), "ratio_met": ratio >= GOAL_RATIO, "p99_ms": p99, "p99_met": p99 < GOAL_P99_MS}
    result: dict[str, Any] = {
        "benchmark": "inbound_sms",
        "ok": not failures,
        "failures": failures,
        "machine": _machine.describe(
            postgresql=str(_stores.pg_scalar("postgres", "SHOW server_version")),
            redis=_stores.redis_version(),
            wrk=wrk_version(wrk),
        ),
        "config": {
            "connections": args.connections,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "wrk_threads": args.threads,
            "senders": args.senders,
            "hub_database_pool_size": args.connections,
            "seed": args.seed,
        },
        "goal": goal | {"ratio_goal": GOAL_RATIO, "p99_goal_ms": GOAL_P99_MS},
        "baseline": baseline.as_json(),
        "hub": hub.as_json(),
        "verification": verification.__dict__,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(summary_text(result, baseline, hub, verification))
    print(f"bench: results in {args.output}")
    if failures:
        print("bench: FAILED\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    if args.fail_on_goal and not (goal["ratio_met"] and goal["p99_met"]):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
