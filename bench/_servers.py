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
        return process_cpu_seconds(self.proc.pid)

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


def stop(proc: subprocess.Popen[bytes]) -> None:
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


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of one live process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        # The command name (field 2) may contain spaces; the fields after its closing parenthesis do not.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def cpu_seconds_of(command: str) -> float:
    """User + system CPU time of every live process named `command` (e.g. "postgres": all its backends)."""
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/comm") as f:
                if f.read().strip() != command:
                    continue
            total += process_cpu_seconds(int(entry.name))
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited while we looked
    return total
