"""Benchmark: inbound email ingest (store raw, parse, thread, store the ticket state; PostgreSQL) over the shared email
corpus, pass after pass with new Message-IDs, against the bare standard-library parse of the same bytes (the floor)
and django-helpdesk's email-to-ticket path (bench/helpdesk_env.py), all measured in the same run.

Run: make bench  or  .venv/bin/python -m bench email_ingest [--help]  (or: -m bench.email_ingest)
Needs PostgreSQL on 127.0.0.1:5432 (trust, user postgres); makes django-helpdesk's venv under .bench/ on first use.
Prints a summary and writes it to bench/results/email_ingest.json; exits 1 if a measured pass took the duplicate
path or ended differently from the first, and (with --fail-on-goal) 2 when a goal is missed.
"""

from __future__ import annotations

import argparse
import email
import gc
import json
import os
import re
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from email import policy
from pathlib import Path
from typing import Any

import uvloop
from sqlalchemy import text

from bench import _machine, _profile, _servers, _stores
from bench.helpdesk_env import corpus_files, run_helpdesk
from bench.helpdesk_env import summary_text as helpdesk_summary
from carehub.app import GC_YOUNG_THRESHOLD
from carehub.blobs import DiskBlobStore
from carehub.mail.ingest import accept
from carehub.migrations import upgrade
from carehub.runtime import Runtime
from carehub.settings import Settings
from channels.email.mime import UnparseableEmail, parse_email

RESULTS_FILE = Path(__file__).with_name("results") / "email_ingest.json"
UNDER_BYTES = 1_000_000  # as bench/helpdesk_driver.py splits "under 1 MB"
GOAL_VS_HELPDESK_UNDER_1MB = 10.0
GOAL_VS_BARE_PARSE = 0.80

_EVENT_LOOP = ("asyncio/base_events.py", "asyncio/events.py", "asyncio/tasks.py", "asyncio/futures.py", "selectors.py")

# What the ingest's CPU goes to, by source file; the first match walking up from the running frame wins.
PROFILE_CATEGORIES: _profile.Categories = (
    ("nh3 (HTML sanitising)", ("nh3/",)),
    ("reply stripping (mail-parser-reply)", ("mailparser_reply/", "channels/email/replies.py")),
    ("HTML to text", ("channels/email/html_text.py", "html/parser.py")),
    ("bounce / complaint recognition", ("channels/email/bounces.py",)),
    ("stdlib email: header parsing (policy.default)", ("email/_header_value_parser.py", "email/headerregistry.py")),
    ("stdlib email: other (feedparser, message, generator)", ("email/",)),
    ("attachment blobs (sha256, write, fsync)", ("carehub/blobs.py",)),
    ("asyncpg (driver, protocol, socket writes)", ("asyncpg/",)),
    *_profile.SQLALCHEMY_CATEGORIES,
    ("Jinja2 (acknowledgement)", ("jinja2/",)),
    ("JSON (message meta)", ("json/",)),
    ("channels/email: MIME walk and fields", ("channels/email/",)),
    ("carehub code", ("carehub/",)),
    ("threads (to_thread hop)", ("threading.py", "concurrent/futures/")),
    # Transport writes (asyncio/selector_events.py) are left to the library that wrote: on loopback the send
    # syscall is where the kernel does the delivery work, and it is paid per round trip.
    ("event loop and other stdlib", _EVENT_LOOP),
)

_LEADING_BLANK_LINES = re.compile(rb"\A(?:[ \t]*\r?\n)+")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_MESSAGE_ID_FIELD = re.compile(rb"^message-id[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*(?:\n|\Z)", re.IGNORECASE | re.MULTILINE)


def with_message_id(raw: bytes, message_id: bytes) -> bytes:
    """`raw` with every Message-ID field removed and one with `message_id` first in its header section (after
    leading blank lines and an mbox "From " line, which parse_email skips): new mail to carehub, same work."""
    blank = _LEADING_BLANK_LINES.match(raw)
    start = blank.end() if blank else 0
    if raw.startswith(b"From ", start) and b"\n" in raw[start:]:
        start = raw.index(b"\n", start) + 1
    end_of_head = _HEADER_END.search(raw, start)
    end = end_of_head.start() if end_of_head else len(raw)
    head = _MESSAGE_ID_FIELD.sub(b"", raw[start:end]).rstrip(b"\r\n")
    newline = b"\r\n" if b"\r\n" in raw[start : end + 2] else b"\n"
    return raw[:start] + b"Message-ID: " + message_id + newline + head + raw[end:]


@dataclass(frozen=True)
class CorpusFile:
    path: Path
    raw: bytes
    email: bool
    """parse_email takes it (else it is archived as "not an email", where no Message-ID is looked at)."""

    @property
    def size(self) -> int:
        return len(self.raw)


def load_corpus() -> list[CorpusFile]:
    files = []
    for path in corpus_files():
        raw = path.read_bytes()
        try:
            parse_email(raw)
            is_email = True
        except UnparseableEmail:
            is_email = False
        files.append(CorpusFile(path, raw, is_email))
    return files


def make_passes(corpus: list[CorpusFile], count: int) -> list[list[bytes]]:
    """`count` passes over the corpus, each message with a Message-ID no other pass (or run) uses."""
    run = secrets.token_hex(4)
    return [
        [
            with_message_id(f.raw, f"<bench.{run}.{p}.{i}@bench.invalid>".encode()) if f.email else f.raw
            for i, f in enumerate(corpus)
        ]
        for p in range(count)
    ]


def check_passes(corpus: list[CorpusFile], passes: list[list[bytes]]) -> list[str]:
    """Problems with the rewritten messages: carehub must read the new Message-ID and otherwise the same message."""
    problems = []
    for i, f in enumerate(corpus):
        if not f.email:
            continue
        expected = passes[0][i].split(b"Message-ID: ", 1)[1].split(b">", 1)[0].decode() + ">"
        before, after = parse_email(f.raw), parse_email(passes[0][i])
        if after.message_id != expected:
            problems.append(f"{f.path.name}: carehub reads Message-ID {after.message_id}, not {expected}")
        if (before.from_address, before.subject, len(before.attachments)) != (
            after.from_address,
            after.subject,
            len(after.attachments),
        ):
            problems.append(f"{f.path.name}: sender, subject or attachments changed with the new Message-ID")
    return problems


@dataclass
class Timings:
    """Per corpus file, the CPU and wall seconds of each measured pass."""

    cpu_s: list[list[float]]
    wall_s: list[list[float]]

    @classmethod
    def empty(cls, files: int) -> Timings:
        return cls([[] for _ in range(files)], [[] for _ in range(files)])

    def add(self, index: int, cpu: float, wall: float) -> None:
        self.cpu_s[index].append(cpu)
        self.wall_s[index].append(wall)


def totals(corpus: list[CorpusFile], timings: Timings) -> dict[str, dict[str, Any]]:
    """Over every measured pass of every file, and of the files under 1 MB (the keys helpdesk's driver uses)."""

    def over(under: int | None) -> dict[str, Any]:
        chosen = [i for i, f in enumerate(corpus) if under is None or f.size < under]
        cpu = sum(sum(timings.cpu_s[i]) for i in chosen)
        wall = sum(sum(timings.wall_s[i]) for i in chosen)
        messages = sum(len(timings.cpu_s[i]) for i in chosen)
        return {
            "files": len(chosen),
            "messages": messages,
            "cpu_s": round(cpu, 4),
            "wall_s": round(wall, 4),
            "cpu_ms_per_message": round(cpu / messages * 1000, 3) if messages else 0.0,
            "msgs_per_s": round(messages / wall, 2) if wall > 0 else 0.0,
        }

    return {"all": over(None), "under_1mb": over(UNDER_BYTES)}


def slowest(corpus: list[CorpusFile], timings: Timings, count: int = 3) -> list[dict[str, Any]]:
    ranked = sorted(range(len(corpus)), key=lambda i: -min(timings.cpu_s[i]))[:count]
    return [
        {
            "file": corpus[i].path.name,
            "size_bytes": corpus[i].size,
            "cpu_ms_min": round(min(timings.cpu_s[i]) * 1000, 1),
        }
        for i in ranked
    ]


def measure_bare_parse(passes: list[list[bytes]], warmup: int) -> Timings:
    """The floor: email.message_from_bytes(raw, policy=policy.default) alone, on the very bytes carehub gets."""
    timings = Timings.empty(len(passes[0]))
    for p, messages in enumerate(passes):
        for i, raw in enumerate(messages):
            cpu0, wall0 = time.process_time(), time.perf_counter()
            email.message_from_bytes(raw, policy=policy.default)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            if p >= warmup:
                timings.add(i, cpu, wall)
    return timings


@dataclass
class CarehubRun:
    timings: Timings
    outcomes: list[dict[str, int]] = field(default_factory=list)
    """Per pass (warm-up included): how many messages ended in each status, and acknowledgements staged."""
    postgres_cpu_s: float = 0.0
    """Every postgres process's CPU over the measured passes."""
    elapsed_s: float = 0.0
    """Wall clock over the measured passes, bookkeeping between messages included."""


def ingest_settings(database: str, data_dir: Path) -> Settings:
    # _env_file=None: a developer's .env must not change what is measured.
    return Settings(
        _env_file=None,
        database_url=_stores.sqlalchemy_url(database),
        data_dir=data_dir,
    )


ProfileFor = Callable[[float], AbstractContextManager[None]]
"""Given the expected seconds of the measured passes, a context that samples them (or does nothing)."""


async def _one_pass(rt: Runtime, messages: list[bytes], timings: Timings | None) -> dict[str, int]:
    outcomes: Counter[str] = Counter()
    for i, raw in enumerate(messages):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        outcome = await accept(rt, raw, source="webhook")
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        outcomes[outcome.status.value] += 1
        outcomes["acknowledged"] += outcome.acknowledged
        outcomes["new_ticket"] += outcome.new_ticket
        if timings is not None:
            timings.add(i, cpu, wall)
    return dict(sorted(outcomes.items()))


async def measure_carehub(
    settings: Settings, passes: list[list[bytes]], warmup: int, profile_for: ProfileFor
) -> CarehubRun:
    """Each message through carehub.mail.ingest.accept() in turn, as the webhook hands it over. Acknowledgements
    are only staged (no dispatcher): delivering them is bench/email_outbound.py's subject."""
    run = CarehubRun(Timings.empty(len(passes[0])))
    rt = Runtime.create(settings)
    await rt.open_hot_pool()

    async def one_pass(p: int, timings: Timings | None) -> None:
        # A new blob directory per pass: new mail brings new attachment bytes, which must really be written.
        rt.blobs = DiskBlobStore(settings.data_dir / f"blobs-{p}")
        run.outcomes.append(await _one_pass(rt, passes[p], timings))
        # And its senders are acknowledged as on the first pass, not held back by the one-ack-an-hour limit.
        async with rt.transaction() as tx:
            await tx.conn.execute(text("UPDATE contact_addresses SET last_auto_reply_at = NULL"))

    try:
        started = time.perf_counter()
        for p in range(warmup):
            await one_pass(p, None)
        pass_s = (time.perf_counter() - started) / warmup if warmup else 5.0
        pg_before, started = _servers.cpu_seconds_of("postgres"), time.perf_counter()
        with profile_for(pass_s * (len(passes) - warmup)):
            for p in range(warmup, len(passes)):
                await one_pass(p, run.timings)
        run.elapsed_s = time.perf_counter() - started
        run.postgres_cpu_s = _servers.cpu_seconds_of("postgres") - pg_before
    finally:
        await rt.aclose()
    return run


def outcome_problems(run: CarehubRun, warmup: int) -> list[str]:
    problems = []
    for p, outcomes in enumerate(run.outcomes):
        if outcomes.get("duplicate"):
            problems.append(f"pass {p}: {outcomes['duplicate']} messages took the duplicate path")
        if p >= warmup and outcomes != run.outcomes[0]:
            problems.append(f"pass {p} ended {outcomes}, the first {run.outcomes[0]}")
    return problems


def ratio(a: float, b: float) -> float:
    return round(a / b, 4) if b else 0.0


def goals(
    carehub: dict[str, Any], postgres_ms: float, bare: dict[str, Any], helpdesk: dict[str, Any] | None
) -> dict[str, Any]:
    under = ratio(carehub["under_1mb"]["msgs_per_s"], helpdesk["under_1mb"]["msgs_per_s"]) if helpdesk else None
    whole = ratio(carehub["all"]["msgs_per_s"], bare["all"]["msgs_per_s"])

    def carehub_cpu(subset: str) -> float:
        return float(carehub[subset]["cpu_ms_per_message"]) + postgres_ms

    return {
        "under_1mb_vs_helpdesk": under,
        "under_1mb_vs_helpdesk_goal": GOAL_VS_HELPDESK_UNDER_1MB,
        "under_1mb_vs_helpdesk_met": None if under is None else under >= GOAL_VS_HELPDESK_UNDER_1MB,
        "all_vs_bare_parse": whole,
        "all_vs_bare_parse_goal": GOAL_VS_BARE_PARSE,
        "all_vs_bare_parse_met": whole >= GOAL_VS_BARE_PARSE,
        # The same ratios by CPU per message, carehub's with PostgreSQL's (its whole-corpus average) added: steadier
        # when other work on the machine stretches one side's wall clock.
        "under_1mb_vs_helpdesk_by_cpu": ratio(helpdesk["under_1mb"]["cpu_ms_per_message"], carehub_cpu("under_1mb"))
        if helpdesk
        else None,
        "all_vs_bare_parse_by_cpu": ratio(bare["all"]["cpu_ms_per_message"], carehub_cpu("all")),
        # For reading the others: how far each side is from the floor and from helpdesk.
        "under_1mb_vs_bare_parse": ratio(carehub["under_1mb"]["msgs_per_s"], bare["under_1mb"]["msgs_per_s"]),
        "all_vs_helpdesk": ratio(carehub["all"]["msgs_per_s"], helpdesk["all"]["msgs_per_s"]) if helpdesk else None,
    }


def row(name: str, t: dict[str, dict[str, Any]], extra: str = "") -> str:
    a, u = t["all"], t["under_1mb"]
    return (
        f"{name:<28}{a['messages']:>6}{a['cpu_ms_per_message']:>9.2f}{a['msgs_per_s']:>9.1f}"
        f"{u['messages']:>8}{u['cpu_ms_per_message']:>9.2f}{u['msgs_per_s']:>9.1f}{extra}"
    )


def met(flag: bool | None) -> str:
    return "not measured" if flag is None else ("met" if flag else "MISSED")


def summary_text(result: dict[str, Any], profile: _profile.Profile | None) -> str:
    cfg, g = result["config"], result["goal"]
    car, bare, hd = result["carehub"], result["bare_parse"], result["helpdesk"]
    lines = [
        f"Email ingest: {cfg['files']} corpus files ({cfg['files_under_1mb']} under 1 MB, {cfg['emails']} that "
        f"carehub reads as mail), {cfg['passes']} measured pass(es) after {cfg['warmup_passes']} warm-up, "
        "one message at a time, every pass with new Message-IDs",
        f"{'':<28}{'whole corpus':>24}{'under 1 MB':>26}",
        f"{'':<28}{'msgs':>6}{'CPU ms':>9}{'msg/s':>9}{'msgs':>8}{'CPU ms':>9}{'msg/s':>9}",
        row("bare stdlib parse (floor)", bare["totals"]),
        row(
            "carehub ingest (PostgreSQL)",
            car["totals"],
            f"   + PostgreSQL {car['postgres_cpu_ms_per_message']:.2f} CPU ms/msg",
        ),
    ]
    if hd is not None:
        lines.append(row("django-helpdesk (SQLite)", hd["totals"], f"   {hd['totals']['all']['raised']} raised"))
    lines += [
        f"carehub / helpdesk under 1 MB: {g['under_1mb_vs_helpdesk'] or 0:.1f}x (goal >= "
        f"{GOAL_VS_HELPDESK_UNDER_1MB:.0f}x: {met(g['under_1mb_vs_helpdesk_met'])}); carehub / bare parse, whole "
        f"corpus: {g['all_vs_bare_parse']:.1%} (goal >= {GOAL_VS_BARE_PARSE:.0%}: {met(g['all_vs_bare_parse_met'])})"
        + ("" if result["ok"] else "; the run FAILED (below): not valid"),
        f"by CPU per message (carehub's with PostgreSQL's): {g['under_1mb_vs_helpdesk_by_cpu'] or 0:.1f}x and "
        f"{g['all_vs_bare_parse_by_cpu']:.1%}",
        f"(carehub / bare parse under 1 MB: {g['under_1mb_vs_bare_parse']:.1%}; carehub / helpdesk whole corpus: "
        f"{g['all_vs_helpdesk'] or 0:.1f}x)",
        "carehub outcomes per pass: " + "; ".join(", ".join(f"{k} {v}" for k, v in o.items()) for o in car["outcomes"]),
        "slowest (min CPU ms over passes): bare "
        + ", ".join(f"{s['file']} {s['cpu_ms_min']:.0f}" for s in bare["slowest"])
        + "; carehub "
        + ", ".join(f"{s['file']} {s['cpu_ms_min']:.0f}" for s in car["slowest"]),
    ]
    if profile is not None:
        lines += _profile.report_lines(profile, "carehub", car["totals"]["all"]["cpu_ms_per_message"], "message")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.email_ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=3, help="measured passes over the corpus (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up passes, not counted (default 1)")
    parser.add_argument("--no-helpdesk", action="store_true", help="skip django-helpdesk (its goal is then unmeasured)")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE)
    parser.add_argument("--fail-on-goal", action="store_true", help="exit 2 when a goal is missed")
    parser.add_argument("--profile", action="store_true", help="sample carehub's measured passes with py-spy")
    parser.add_argument("--py-spy", help="py-spy binary for --profile (default: on PATH)")
    args = parser.parse_args(argv)
    if args.passes < 1 or args.warmup < 0:
        parser.error("--passes must be at least 1 and --warmup at least 0")
    return args


def hub_like_gc() -> None:
    """The collector settings `carehub serve` runs the webhook with (carehub/app.py), for both measured sides."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.profile:
        args.py_spy = _profile.find_py_spy(args.py_spy)
    load_before = os.getloadavg()
    corpus = load_corpus()
    passes = make_passes(corpus, args.warmup + args.passes)
    failures = check_passes(corpus, passes)
    if failures:
        raise SystemExit("bench: FAILED\n  " + "\n  ".join(failures))
    hub_like_gc()

    print(f"bench: bare parse: {len(passes)} passes over {len(corpus)} files", flush=True)
    bare = measure_bare_parse(passes, args.warmup)

    profile_file = args.output.with_name(args.output.stem + ".carehub-pyspy.txt")
    print(f"bench: carehub ingest: {len(passes)} passes", flush=True)
    with tempfile.TemporaryDirectory(prefix="carehub-bench-") as tmp, _stores.postgres_database() as database:
        settings = ingest_settings(database, Path(tmp) / "data")
        upgrade(settings)
        profile_file.parent.mkdir(parents=True, exist_ok=True)

        def profile_for(seconds: float) -> AbstractContextManager[None]:
            # py-spy records for a set time: a little less than the measured passes should take, so all of it
            # falls inside them.
            if not args.profile:
                return nullcontext()
            return _profile.sampling(args.py_spy, os.getpid(), max(1.0, seconds * 0.85), profile_file)

        # On uvloop, as carehub runs in production (`carehub serve` and `carehub smtpd`).
        carehub = uvloop.run(measure_carehub(settings, passes, args.warmup, profile_for))
    failures += outcome_problems(carehub, args.warmup)

    helpdesk: dict[str, Any] | None = None
    if not args.no_helpdesk:
        print(f"bench: django-helpdesk: {args.passes} passes", flush=True)
        helpdesk = run_helpdesk([f.path for f in corpus], args.passes)
        print(helpdesk_summary(helpdesk), flush=True)

    car_totals, bare_totals = totals(corpus, carehub.timings), totals(corpus, bare)
    measured = car_totals["all"]["messages"]
    postgres_ms = carehub.postgres_cpu_s / max(measured, 1) * 1000
    goal = goals(car_totals, postgres_ms, bare_totals, helpdesk["totals"] if helpdesk else None)
    profiled = _profile.summarise(profile_file, PROFILE_CATEGORIES) if args.profile else None
    result: dict[str, Any] = {
        "benchmark": "email_ingest",
        "ok": not failures,
        "failures": failures,
        "machine": _machine.describe(
            postgresql=str(_stores.pg_scalar("postgres", "SHOW server_version")),
            load_average_before=" ".join(f"{x:.2f}" for x in load_before),
        ),
        "config": {
            "files": len(corpus),
            "files_under_1mb": sum(f.size < UNDER_BYTES for f in corpus),
            "emails": sum(f.email for f in corpus),
            "corpus_bytes": sum(f.size for f in corpus),
            "passes": args.passes,
            "warmup_passes": args.warmup,
            "gc": f"freeze + threshold ({GC_YOUNG_THRESHOLD}, 20, 20), as carehub serve",
            "profiled": args.profile,
        },
        "goal": goal,
        "bare_parse": {"totals": bare_totals, "slowest": slowest(corpus, bare)},
        "carehub": {
            "totals": car_totals,
            "postgres_cpu_s": round(carehub.postgres_cpu_s, 3),
            "postgres_cpu_ms_per_message": round(postgres_ms, 3),
            "elapsed_s": round(carehub.elapsed_s, 3),
            "outcomes": carehub.outcomes,
            "slowest": slowest(corpus, carehub.timings),
            "profile": profiled.as_json() if profiled else None,
        },
        "helpdesk": None
        if helpdesk is None
        else {k: helpdesk[k] for k in ("versions", "repeat", "setup_s", "totals")}
        | {"raised": [{k: f[k] for k in ("path", "raised", "where")} for f in helpdesk["files"] if f["raised"]]},
        "files": [
            {
                "file": f.path.name,
                "size_bytes": f.size,
                "email": f.email,
                "bare_cpu_ms": [round(c * 1000, 2) for c in bare.cpu_s[i]],
                "carehub_cpu_ms": [round(c * 1000, 2) for c in carehub.timings.cpu_s[i]],
                "carehub_wall_ms": [round(c * 1000, 2) for c in carehub.timings.wall_s[i]],
            }
            for i, f in enumerate(corpus)
        ],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(summary_text(result, profiled))
    print(f"bench: results in {args.output}")
    if failures:
        print("bench: FAILED\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    if args.fail_on_goal and not (goal["all_vs_bare_parse_met"] and goal["under_1mb_vs_helpdesk_met"] is not False):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
