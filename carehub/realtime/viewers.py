"""Collision detection: which agents have a ticket open, and which of them are typing a reply, across replicas.

The console sends a heartbeat every ~10 s while a ticket is on screen; an entry not refreshed within
VIEWER_TTL_SECONDS is gone (a closed laptop needs no goodbye). Redis: per ticket, a sorted set of agent ids scored
by expiry plus a hash of what to show for each, changed by one script so replicas agree on what changed.
Embedded: a dict in this process. Times are passed in (seconds since the epoch), so expiry is testable."""

from __future__ import annotations

import json
from dataclasses import dataclass

from redis.asyncio import Redis

VIEWER_TTL_SECONDS = 30.0  # three heartbeats: one lost request does not make an agent vanish
KEY_TTL_MS = 120_000  # Redis forgets an idle ticket's keys altogether after this


@dataclass(frozen=True, order=True)
class Viewer:
    agent_id: int
    name: str
    typing: bool


@dataclass(frozen=True)
class Seen:
    """Everyone on the ticket now, and whether that differs from before this call (then agents are told)."""

    viewers: list[Viewer]
    changed: bool

    def others(self, agent_id: int) -> list[Viewer]:
        return [v for v in self.viewers if v.agent_id != agent_id]


class Viewers:
    def __init__(self, ttl: float = VIEWER_TTL_SECONDS) -> None:
        self.ttl = ttl
        self._tickets: dict[int, dict[int, tuple[float, Viewer]]] = {}

    async def heartbeat(self, ticket_id: int, viewer: Viewer, now: float) -> Seen:
        entries = self._tickets.setdefault(ticket_id, {})
        expired = self._expire(entries, now)
        before = entries.get(viewer.agent_id)
        entries[viewer.agent_id] = (now + self.ttl, viewer)
        return Seen(sorted(v for _, v in entries.values()), expired or before is None or before[1] != viewer)

    async def leave(self, ticket_id: int, agent_id: int, now: float) -> Seen:
        entries = self._tickets.get(ticket_id, {})
        expired = self._expire(entries, now)
        gone = entries.pop(agent_id, None) is not None
        if not entries:
            self._tickets.pop(ticket_id, None)
        return Seen(sorted(v for _, v in entries.values()), expired or gone)

    async def on(self, ticket_id: int, now: float) -> list[Viewer]:
        return sorted(v for expiry, v in self._tickets.get(ticket_id, {}).values() if expiry > now)

    async def aclose(self) -> None:
        return None

    @staticmethod
    def _expire(entries: dict[int, tuple[float, Viewer]], now: float) -> bool:
        stale = [agent_id for agent_id, (expiry, _) in entries.items() if expiry <= now]
        for agent_id in stale:
            del entries[agent_id]
        return bool(stale)


# KEYS: the ticket's expiry set, its info hash. ARGV: now, expiry, agent id, info ('' to leave), key ttl (ms).
# Returns: changed (0/1), then the hash's fields and values (everyone still there).
_SCRIPT = """
local changed = 0
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if #stale > 0 then
  changed = 1
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
  redis.call('HDEL', KEYS[2], unpack(stale))
end
if ARGV[4] == '' then
  if redis.call('ZREM', KEYS[1], ARGV[3]) == 1 then changed = 1 end
  redis.call('HDEL', KEYS[2], ARGV[3])
else
  if redis.call('HGET', KEYS[2], ARGV[3]) ~= ARGV[4] then changed = 1 end
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
local result = redis.call('HGETALL', KEYS[2])
table.insert(result, 1, changed)
return result
"""


class RedisViewers(Viewers):
    def __init__(self, url: str, prefix: str, ttl: float = VIEWER_TTL_SECONDS) -> None:
        super().__init__(ttl)
        self._redis: Redis = Redis.from_url(url, decode_responses=True)
        self._prefix = f"{prefix}:viewers"
        self._script = self._redis.register_script(_SCRIPT)

    async def heartbeat(self, ticket_id: int, viewer: Viewer, now: float) -> Seen:
        info = json.dumps({"name": viewer.name, "typing": viewer.typing}, separators=(",", ":"))
        return await self._run(ticket_id, viewer.agent_id, info, now)

    async def leave(self, ticket_id: int, agent_id: int, now: float) -> Seen:
        return await self._run(ticket_id, agent_id, "", now)

    async def on(self, ticket_id: int, now: float) -> list[Viewer]:
        alive = set(await self._redis.zrangebyscore(self._keys(ticket_id)[0], f"({now}", "+inf"))
        info: dict[str, str] = await self._redis.hgetall(self._keys(ticket_id)[1])  # type: ignore[misc]
        return sorted(_viewer(a, i) for a, i in info.items() if a in alive)

    async def aclose(self) -> None:
        await self._redis.aclose()

    def _keys(self, ticket_id: int) -> list[str]:
        return [f"{self._prefix}:{ticket_id}", f"{self._prefix}:{ticket_id}:info"]

    async def _run(self, ticket_id: int, agent_id: int, info: str, now: float) -> Seen:
        result = await self._script(keys=self._keys(ticket_id), args=[now, now + self.ttl, agent_id, info, KEY_TTL_MS])
        changed, flat = int(result[0]), result[1:]
        return Seen(sorted(_viewer(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)), bool(changed))


def _viewer(agent_id: str, info: str) -> Viewer:
    data = json.loads(info)
    return Viewer(agent_id=int(agent_id), name=str(data["name"]), typing=bool(data["typing"]))
