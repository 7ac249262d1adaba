"""Latency figures the query benchmarks share (queue, help_search): time an async call many times, p50 and p95 beside
a target, and the table they print."""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Timed = Callable[[], Awaitable[object]]


@dataclass
class Figure:
    store: str
    case: str
    runs: int
    p50_ms: float
    p95_ms: float
    target_ms: float | None

    @property
    def met(self) -> bool | None:
        return None if self.target_ms is None else self.p95_ms < self.target_ms


async def measure(fn: Timed, runs: int, budget_s: float = float("inf"), warmup: int = 1) -> list[float]:
    """Wall milliseconds of up to `runs` calls, stopping early once `budget_s` is spent (slow cases)."""
    for _ in range(warmup):
        await fn()
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < runs and (not times or time.perf_counter() < deadline):
        started = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - started) * 1000)
    return times


def figure(store: str, case: str, times: list[float], target: float | None) -> Figure:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return Figure(store, case, len(times), round(statistics.median(ordered), 2), round(p95, 2), target)


def table(figures: list[Figure], case_width: int) -> list[str]:
    """One line per figure: store, case, runs, p50, p95, and the target met or MISSED."""
    lines = [f"{'store':<11}{'case':<{case_width}}{'runs':>6}{'p50 ms':>10}{'p95 ms':>10}  target p95"]
    for fig in figures:
        target = "" if fig.target_ms is None else f"< {fig.target_ms:.0f} ms: " + ("met" if fig.met else "MISSED")
        lines.append(
            f"{fig.store:<11}{fig.case:<{case_width}}{fig.runs:>6}{fig.p50_ms:>10.2f}{fig.p95_ms:>10.2f}  {target}"
        )
    return lines
