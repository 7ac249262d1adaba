"""wrk, the load generator every HTTP benchmark here shares: installed from Debian's packages when missing, driven
with bench/wrk_replay.lua over a file of pre-built requests, its numbers read back as a WrkResult."""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPLAY_SCRIPT = Path(__file__).with_name("wrk_replay.lua")
INSTALL_TIMEOUT = 600.0
# A request slower than this is a wrk "timeout" error (and fails the run) rather than a latency sample.
REQUEST_TIMEOUT_S = 10
# After its sending window each wrk thread waits this long at most for its last responses (wrk_replay.lua).
DRAIN_LIMIT_S = 15


class WrkFailed(RuntimeError):
    pass


def ensure_wrk() -> str:
    """The wrk binary; installs Debian's package first on a machine that has none (needs root or sudo -n)."""
    found = shutil.which("wrk")
    if found:
        return found
    as_root = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print("bench: wrk not found; installing Debian's package", flush=True)
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"]):
        subprocess.run([*as_root, *cmd], env=env, check=True, stdin=subprocess.DEVNULL, timeout=INSTALL_TIMEOUT)
    found = shutil.which("wrk")
    if not found:
        raise WrkFailed("apt-get installed wrk but it is not on PATH")
    return found


def wrk_version(wrk: str) -> str:
    # wrk has no version-only flag: -v prints the version line, then its usage, and exits non-zero.
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10, check=False)
    return (out.stdout or out.stderr).splitlines()[0].strip()


@dataclass(frozen=True)
class WrkResult:
    window_s: float
    """The sending window; the run lasts until the last response after it (or DRAIN_LIMIT_S)."""
    duration_s: float
    completed: int
    """Responses read to the end, in the window and after it."""
    in_window: int
    """Responses that arrived within the window: the rate is counted from these."""
    sent_per_thread: tuple[int, ...]
    """Requests each thread wrote: the first n of its share of the request file."""
    statuses: dict[int, int]
    errors: dict[str, int]
    exhausted: bool
    latency_ms: dict[str, float]
    cpu_s: float

    @property
    def sent(self) -> int:
        return sum(self.sent_per_thread)

    @property
    def rps(self) -> float:
        return self.in_window / self.window_s

    @property
    def unanswered(self) -> int:
        """Requests still without a response when wrk stopped (only if the drain outlasted DRAIN_LIMIT_S)."""
        return self.sent - self.completed

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    @property
    def socket_errors(self) -> int:
        return sum(n for kind, n in self.errors.items() if kind != "status")

    def as_json(self) -> dict[str, Any]:
        return {
            "window_s": self.window_s,
            "duration_s": round(self.duration_s, 3),
            "sent": self.sent,
            "completed": self.completed,
            "completed_in_window": self.in_window,
            "unanswered": self.unanswered,
            "req_per_s": round(self.rps, 1),
            "latency_ms": self.latency_ms,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "non_2xx": self.non_2xx,
            "socket_errors": self.errors,
            "exhausted_request_pool": self.exhausted,
            "wrk_cpu_s": round(self.cpu_s, 3),
        }


def share(items: Sequence[Any], thread: int, threads: int) -> Sequence[Any]:
    """The part of the request file a wrk thread replays (wrk_replay.lua: every `threads`-th line)."""
    return items[thread::threads]


def _wait(proc: subprocess.Popen[bytes], stopped: list[Path], deadline: float) -> None:
    """Until wrk exits: once every thread has left its stop file (all responses in), SIGINT ends it at once
    instead of at --duration; wrk then prints its statistics and runs done() as usual."""
    interrupted = False
    while proc.poll() is None:
        if time.monotonic() > deadline:
            raise WrkFailed(f"wrk still running past its deadline; killed (pid {proc.pid})")
        if not interrupted and all(marker.exists() for marker in stopped):
            proc.send_signal(signal.SIGINT)
            interrupted = True
        time.sleep(0.05)


def run_wrk(
    wrk: str,
    url: str,
    requests_file: Path,
    *,
    connections: int,
    threads: int,
    duration_s: float,
    cycle: bool,
    workdir: Path,
) -> WrkResult:
    """One wrk run: `connections` keep-alive connections replaying `requests_file` for `duration_s` seconds,
    then waiting for the responses still due."""
    result_file = workdir / f"wrk-{requests_file.stem}.json"
    result_file.unlink(missing_ok=True)
    env = {
        **os.environ,
        "BENCH_REQUESTS": str(requests_file),
        "BENCH_THREADS": str(threads),
        "BENCH_CYCLE": "1" if cycle else "0",
        "BENCH_RESULT": str(result_file),
        "BENCH_SECONDS": str(duration_s),
    }
    cmd = [
        wrk,
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={math.ceil(duration_s) + DRAIN_LIMIT_S}s",
        f"--timeout={REQUEST_TIMEOUT_S}s",
        f"--script={REPLAY_SCRIPT}",
        url,
    ]
    stopped = [result_file.with_name(f"{result_file.name}.stopped-{i}") for i in range(threads)]
    for marker in stopped:
        marker.unlink(missing_ok=True)
    log = workdir / f"wrk-{requests_file.stem}.log"
    # wrk is the only child waited for during the run, so the children's rusage delta is wrk's own CPU time.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            _wait(proc, stopped, deadline=time.monotonic() + duration_s + DRAIN_LIMIT_S + 30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0 or not result_file.exists():
        raise WrkFailed(f"wrk exited {proc.returncode}:\n{log.read_text()}")
    raw = json.loads(result_file.read_text())
    per_thread = sorted(raw["threads"], key=lambda t: int(t["index"]))
    statuses: dict[int, int] = {}
    for thread in per_thread:
        for status, n in thread["statuses"].items():
            statuses[int(status)] = statuses.get(int(status), 0) + int(n)
    return WrkResult(
        window_s=duration_s,
        duration_s=int(raw["duration_us"]) / 1e6,
        completed=sum(int(t["responses"]) for t in per_thread),
        in_window=sum(int(t["in_window"]) for t in per_thread),
        sent_per_thread=tuple(int(t["sent"]) for t in per_thread),
        statuses=statuses,
        errors={kind: int(n) for kind, n in raw["errors"].items()},
        exhausted=any(bool(t["exhausted"]) for t in per_thread),
        latency_ms={name: round(float(us) / 1000, 2) for name, us in raw["latency_us"].items()},
        cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    )
