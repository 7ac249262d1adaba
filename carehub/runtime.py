"""What a running hub or worker process holds: settings, database engine, channel adapters, templates, dispatcher."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, cast

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from carehub.blobs import BlobStore, DiskBlobStore
from carehub.db import Tx, create_engine, transaction
from carehub.messaging.templates import MessageTemplates, default_templates_dir
from carehub.outbox.dispatch import Dispatcher, Job
from carehub.realtime.broker import Broker, Event, RedisBroker
from carehub.realtime.presence import Presence, RedisPresence
from carehub.realtime.viewers import RedisViewers, Viewers
from carehub.settings import Settings
from channels.base import ChannelAdapter, ChannelKind, ChannelSender
from channels.registry import build_adapters


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    adapters: dict[ChannelKind, ChannelSender]
    templates: MessageTemplates
    blobs: BlobStore
    broker: Broker
    presence: Presence
    dispatcher: Dispatcher | None = field(default=None)
    viewers: Viewers = field(default_factory=Viewers)  # who has which ticket open (collision detection)
    # PostgreSQL only: plain asyncpg connections for the one-statement webhook path (no ORM layer in between).
    hot_pool: asyncpg.Pool | None = field(default=None)
    # New tickets waiting for routing (carehub/routing/arrival.route_soon); None while no drainer runs.
    routing_pending: set[int] | None = field(default=None)
    _background: set[asyncio.Task[None]] = field(default_factory=set)

    @classmethod
    def create(cls, settings: Settings) -> Runtime:
        return cls(
            settings=settings,
            engine=create_engine(settings),
            adapters=build_adapters(settings),
            templates=MessageTemplates(settings.templates_dir or default_templates_dir()),
            blobs=DiskBlobStore(settings.data_dir / "blobs"),
            broker=Broker()
            if settings.redis_url is None
            else RedisBroker(settings.redis_url, settings.realtime_prefix),
            presence=Presence()
            if settings.redis_url is None
            else RedisPresence(settings.redis_url, settings.realtime_prefix),
            viewers=Viewers()
            if settings.redis_url is None
            else RedisViewers(settings.redis_url, settings.realtime_prefix),
        )

    async def open_hot_pool(self) -> None:
        if self.engine.dialect.name != "postgresql":
            return
        url = make_url(self.settings.database_url).set(drivername="postgresql")
        size = self.settings.database_pool_size
        self.hot_pool = await asyncpg.create_pool(
            url.render_as_string(hide_password=False), min_size=1, max_size=size, reset=_keep_session
        )

    @property
    def sms_adapter(self) -> ChannelAdapter:
        """The SMS channel, which (unlike email) also verifies and parses its provider's webhooks."""
        return cast(ChannelAdapter, self.adapters[ChannelKind.SMS])

    def transaction(self) -> AbstractAsyncContextManager[Tx]:
        """A transaction whose staged outbox rows are enqueued, and staged events published, once it commits."""
        return transaction(self.engine, self._after_commit)

    async def _after_commit(self, tx: Tx) -> None:
        if tx.staged_events:
            self.publish_soon(tx.staged_events)
        if tx.staged_outbox:
            await self._enqueue_staged(tx.staged_outbox)

    async def _enqueue_staged(self, outbox_ids: list[int]) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.enqueue([Job(i) for i in outbox_ids])

    def publish_soon(self, events: list[tuple[str, Event]]) -> None:
        """Publish committed changes to live listeners without making the caller wait or fail: a lost event is
        made good by the listeners' re-sync from the database."""
        for topic, event in events:
            self.broker.publish(topic, event)

    def enqueue_soon(self, outbox_ids: list[int]) -> None:
        """Enqueue committed rows without making the caller wait (a webhook answers first). Losing this enqueue
        (the process dies right now) only delays delivery until the sweeper finds the row."""
        self.in_background(self._enqueue_staged(outbox_ids))

    def in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run work after the caller has answered; shutdown waits a little for it (aclose)."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def status_callback_url(self, channel: ChannelKind, outbox_id: int) -> str | None:
        if channel is ChannelKind.SMS:
            return f"{self.settings.public_url.rstrip('/')}/webhooks/twilio/status?d={outbox_id}"
        return None

    async def aclose(self) -> None:
        if self._background:
            await asyncio.wait(self._background, timeout=5)
        if self.dispatcher is not None:
            await self.dispatcher.aclose()
        await self.broker.aclose()
        await self.presence.aclose()
        await self.viewers.aclose()
        if self.hot_pool is not None:
            await self.hot_pool.close()
        for adapter in self.adapters.values():
            await adapter.aclose()
        await self.engine.dispose()


async def _keep_session(_connection: object) -> None:
    """The hot path leaves no session state behind (one statement; its advisory lock is transaction-scoped),
    so skip asyncpg's reset query, which would cost a round trip every time a connection goes back to the pool."""
