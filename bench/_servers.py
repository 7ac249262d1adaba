"""Servers under test as child processes on 127.0.0.1: each in its own process group, ready once /healthz answers,
always stopped (SIGTERM, then SIGKILL) however the benchmark ends. Also reads the CPU time processes used."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
POLL_INTERVAL_S = 0.05
STOP_GRACE_S = 10.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class ServerFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def cpu_seconds(self) -> float:
        """CPU time of the server's whole process group (uvicorn workers included, should there be any)."""
        return group_cpu_seconds(self.proc.pid)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own server on loopback
        return int(response.status), bytes(response.read())


def wait_until_healthy(proc: subprocess.Popen[bytes], url: str, timeout: float, log_path: Path) -> None:
    """Poll `url` until it answers 200; fail at once if the process exits, and after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise ServerFailed(f"exited with {proc.returncode} before {url} answered; log {log_path}")
        try:
            if get(url, timeout=1.0)[0] == 200:
                return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise ServerFailed(f"{url} did not answer within {timeout:.0f} s; log {log_path}")
        time.sleep(POLL_INTERVAL_S)


@contextmanager
def running(
    name: str,
    argv: Sequence[str],
    *,
    port: int,
    env: Mapping[str, str],
    cwd: Path,
    log_path: Path,
    ready_timeout: float = 30.0,
) -> Iterator[Server]:
    """Start `argv` (which must listen on 127.0.0.1:`port`), wait for /healthz, yield it, and stop it."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            list(argv), env=dict(env), cwd=cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        try:
            wait_until_healthy(proc, f"http://{HOST}:{port}/healthz", ready_timeout, log_path)
            yield Server(name, proc, port, log_path)
        finally:
            stop(proc)


def stop(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM the process group (uvicorn shuts down cleanly and closes its pools), SIGKILL if it lingers."""
    for sig, wait_s in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break  # the group is gone, the leader included
        try:
            proc.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    if proc.poll() is None:
        proc.wait(timeout=5.0)


def _stat_fields(pid: str) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        # The command name (field 2) may contain spaces; the fields after its closing parenthesis do not.
        return f.read().rsplit(")", 1)[1].split()


def _cpu_seconds(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime + stime


def _live_pids() -> Iterator[str]:
    return (entry.name for entry in os.scandir("/proc") if entry.name.isdigit())


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU time of the live processes in process group `pgid`."""
    total = 0.0
    for pid in _live_pids():
        try:
            fields = _stat_fields(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited while we looked
        if int(fields[2]) == pgid:
            total += _cpu_seconds(fields)
    return total


def cpu_seconds_of(command: str) -> float:
    """User + system CPU time of every live process named `command` (e.g. "postgres": all its backends)."""
    total = 0.0
    for pid in _live_pids():
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == command:
                    total += _cpu_seconds(_stat_fields(pid))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total
