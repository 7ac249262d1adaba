"""Abuse controls for the public chat: token buckets per key (client IP, conversation) and open sockets per IP.

Per hub replica, in memory: a load balancer that spreads one address over N replicas lets it through N times
the configured rate, which still bounds it; nothing here needs a round trip to Redis on the message path."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

PRUNE_EVERY = 1000  # calls between sweeps of idle buckets, so the table cannot grow without bound


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Allow `per_minute` events per key, in bursts of up to `burst` (default: a tenth of a minute's worth)."""

    def __init__(self, per_minute: int, burst: int | None = None) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else max(5, per_minute // 10))
        self._buckets: dict[object, _Bucket] = {}
        self._calls = 0

    def allow(self, key: object, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self._calls += 1
        if self._calls % PRUNE_EVERY == 0:
            self._prune(now)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def _prune(self, now: float) -> None:
        full_after = self.burst / self.rate
        for key in [k for k, b in self._buckets.items() if now - b.at > full_after]:
            del self._buckets[key]


class ConnectionCounter:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()

    def try_open(self, ip: str) -> bool:
        if self._open[ip] >= self.limit:
            return False
        self._open[ip] += 1
        return True

    def close(self, ip: str) -> None:
        self._open[ip] -= 1
        if self._open[ip] <= 0:
            del self._open[ip]
