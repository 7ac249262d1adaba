"""Which agents are online (holding the live event stream open), across replicas: chat is offered only then.

Redis: a sorted set of agent ids scored by when their presence expires, refreshed by the stream's keep-alive, so a
replica that dies takes its agents offline within PRESENCE_TTL_SECONDS. Embedded: a counter in this process."""

from __future__ import annotations

import time
from collections import Counter

from redis.asyncio import Redis

PRESENCE_TTL_SECONDS = 45.0  # three keep-alives (15 s): one lost refresh does not take an agent offline


class Presence:
    def __init__(self) -> None:
        self._here: Counter[int] = Counter()

    async def enter(self, agent_id: int) -> None:
        self._here[agent_id] += 1

    async def refresh(self, agent_id: int) -> None:
        return None

    async def leave(self, agent_id: int) -> None:
        self._here[agent_id] -= 1
        if self._here[agent_id] <= 0:
            del self._here[agent_id]

    async def online(self) -> int:
        return len(self._here)

    async def online_ids(self) -> set[int]:
        """The agents online now (on any replica, with Redis): who may be given new tickets."""
        return set(self._here)

    async def aclose(self) -> None:
        return None


class RedisPresence(Presence):
    def __init__(self, url: str, prefix: str) -> None:
        super().__init__()
        self._redis: Redis = Redis.from_url(url, decode_responses=True)
        self._key = f"{prefix}:agents-online"

    async def enter(self, agent_id: int) -> None:
        await super().enter(agent_id)
        await self.refresh(agent_id)

    async def refresh(self, agent_id: int) -> None:
        await self._redis.zadd(self._key, {str(agent_id): time.time() + PRESENCE_TTL_SECONDS})

    async def leave(self, agent_id: int) -> None:
        await super().leave(agent_id)
        if agent_id not in self._here:
            # Another replica may still hold a stream for this agent: it refreshes the entry within its keep-alive.
            await self._redis.zrem(self._key, str(agent_id))

    async def online(self) -> int:
        count: int = await self._redis.zcount(self._key, time.time(), "+inf")
        return count

    async def online_ids(self) -> set[int]:
        members: list[str] = await self._redis.zrangebyscore(self._key, time.time(), "+inf")
        return {int(m) for m in members}

    async def aclose(self) -> None:
        await self._redis.aclose()
