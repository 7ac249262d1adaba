"""Publish live events to whichever hub replica holds the listener: Redis pub/sub in production, in process when
embedded. Pub/sub is fire-and-forget (a replica that is reconnecting misses events), so every listener can re-sync
from the database; the broker tells them when that is needed (on_resync)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

log = logging.getLogger("carehub.realtime")

SEP = "\x1f"  # unit separator: never in JSON text (control characters are escaped), so it splits unambiguously
RS = "\x1e"  # record separator, between the events of one pub/sub message
RECONNECT_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)
PUBLISH_BATCH = 500


@dataclass(frozen=True, slots=True)
class Event:
    """One live event: the text its listeners pass on as is (a chat frame, an agent event), plus what they need
    to order and filter it without parsing it."""

    text: str
    seq: int | None = None  # a chat message's sequence number: listeners detect gaps and duplicates by it
    origin: str | None = None  # the connection that caused it, which already has it
    ticket_id: int | None = None  # the ticket it is about: agent streams show it only to those who may see it

    def encode(self) -> str:
        seq = "" if self.seq is None else self.seq
        ticket = "" if self.ticket_id is None else self.ticket_id
        return f"{seq}{SEP}{self.origin or ''}{SEP}{ticket}{SEP}{self.text}"

    @classmethod
    def decode(cls, data: str) -> Event:
        seq, origin, ticket, text = data.split(SEP, 3)
        return cls(
            text=text, seq=int(seq) if seq else None, origin=origin or None, ticket_id=int(ticket) if ticket else None
        )


Listener = Callable[[Event], None]
"""Called in the broker's task for every event on a topic: must not block (queue the work, return)."""


class Broker:
    """In-process fan-out: what the embedded hub uses, and what RedisBroker builds on."""

    def __init__(self) -> None:
        self._listeners: dict[str, set[Listener]] = {}
        self.on_resync: Callable[[], None] | None = None

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def listen(self, topic: str, listener: Listener) -> None:
        self._listeners.setdefault(topic, set()).add(listener)

    async def unlisten(self, topic: str, listener: Listener) -> None:
        listeners = self._listeners.get(topic)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._listeners[topic]

    def publish(self, topic: str, event: Event) -> None:
        """Hand an event to every listener of the topic, on every replica; never waits, never raises."""
        self._dispatch(topic, event)

    def _dispatch(self, topic: str, event: Event) -> None:
        for listener in tuple(self._listeners.get(topic, ())):
            try:
                listener(event)
            except Exception:
                log.exception("listener on %s failed", topic)


class RedisBroker(Broker):
    """Redis pub/sub: one publishing client, one subscriber connection per replica, subscribed to the topics some
    local listener wants (channel = prefix:topic)."""

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__()
        # Named, so an operator (or a test) can tell this replica's connections apart in CLIENT LIST.
        self.client_name = f"{prefix}-broker-{secrets.token_hex(4)}"
        self._redis: Redis = Redis.from_url(url, decode_responses=True, client_name=self.client_name)
        self._prefix = prefix + ":"
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._outgoing: list[tuple[str, str]] = []
        self._closed = False
        self._flusher: asyncio.Task[None] | None = None
        # Subscribed always, so the reader has something to read before the first listener comes.
        self._control = self._prefix + "hub"

    async def start(self) -> None:
        self._reader = asyncio.create_task(self._read_forever(), name="carehub-pubsub")

    async def aclose(self) -> None:
        self._closed = True  # what is published from now on (work finishing during shutdown) is dropped
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._flusher, 5)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        await self._redis.aclose()

    async def listen(self, topic: str, listener: Listener) -> None:
        first = topic not in self._listeners
        await super().listen(topic, listener)
        if first and self._pubsub is not None:
            try:
                await self._pubsub.subscribe(self._prefix + topic)
            except (RedisError, OSError) as exc:
                # The reader reconnects and subscribes to every wanted topic again, then asks for a re-sync.
                log.warning("subscribe to %s failed (%s); it follows on reconnect", topic, exc)

    async def unlisten(self, topic: str, listener: Listener) -> None:
        await super().unlisten(topic, listener)
        if topic not in self._listeners and self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.unsubscribe(self._prefix + topic)

    def publish(self, topic: str, event: Event) -> None:
        # Queued and sent by one flusher, many to a pipeline: in order, and a busy hub pays one round trip for
        # many events instead of one each.
        if self._closed:
            return
        self._outgoing.append((self._prefix + topic, event.encode()))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        while self._outgoing:
            batch, self._outgoing = self._outgoing[:PUBLISH_BATCH], self._outgoing[PUBLISH_BATCH:]
            # Events for one channel travel together, in order, as one pub/sub message: the agents' channel gets
            # one message per flush however busy the hub is, so every replica reads (and parses) far fewer.
            by_channel: dict[str, list[str]] = {}
            for channel, data in batch:
                by_channel.setdefault(channel, []).append(data)
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for channel, datas in by_channel.items():
                        pipe.publish(channel, RS.join(datas))
                    await pipe.execute()
            except (RedisError, OSError) as exc:
                # Listeners re-sync from the database (a reconnecting client, a gap in sequence numbers).
                log.warning("could not publish %d live events (%s)", len(batch), exc)

    async def _read_forever(self) -> None:
        failures = 0
        while True:
            try:
                pubsub = await self._subscribe_all()
                if failures:
                    log.info("pub/sub reconnected after %d failures: listeners re-sync", failures)
                    if self.on_resync is not None:
                        self.on_resync()
                failures = 0
                await self._read(pubsub)
            except (RedisError, OSError) as exc:
                failures += 1
                delay = RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS)) - 1]
                log.warning("pub/sub connection lost (%s); reconnecting in %.1fs", exc, delay)
                if self._pubsub is not None:
                    with contextlib.suppress(RedisError, OSError):
                        await self._pubsub.aclose()  # type: ignore[no-untyped-call]
                    self._pubsub = None
                await asyncio.sleep(delay)

    async def _subscribe_all(self) -> PubSub:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self._control, *(self._prefix + t for t in self._listeners))
        self._pubsub = pubsub
        return pubsub

    async def _read(self, pubsub: PubSub) -> None:
        skip = len(self._prefix)
        async for message in pubsub.listen():
            if message is None or message.get("type") != "message":
                continue
            topic = message["channel"][skip:]
            for data in message["data"].split(RS):
                self._dispatch(topic, Event.decode(data))
