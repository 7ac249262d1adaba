"""What one hub process holds for web chat: the catalogues, business hours, abuse limits, allowed origins and the
widget's files (read and compressed once); and the answer to "can someone answer a chat now?"."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from carehub.chat.catalogue import Catalogue
from carehub.chat.hours import Schedule
from carehub.chat.limits import ConnectionCounter, RateLimiter
from carehub.chat.protocol import frame
from carehub.chat.writer import ChatWriter
from carehub.clock import utcnow
from carehub.realtime.presence import Presence
from carehub.settings import Environment, Settings
from carehub.static_assets import Asset

log = logging.getLogger("carehub.chat")
AVAILABILITY_CHECK_SECONDS = 15.0


class LiveSocket(Protocol):
    lang: str

    def resync(self) -> None: ...

    def notify(self, text: str) -> None: ...


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class ChatHub:
    def __init__(self, settings: Settings, templates_root: Path, presence: Presence) -> None:
        self.settings = settings
        self.presence = presence
        chat_dir = templates_root / "chat"
        self.catalogue = Catalogue(chat_dir / "i18n")
        self.schedule = Schedule.parse(
            settings.chat_hours, settings.chat_timezone, frozenset(settings.chat_closed_dates)
        )
        self.messages_per_conversation = RateLimiter(settings.chat_messages_per_minute)
        self.messages_per_ip = RateLimiter(settings.chat_ip_messages_per_minute)
        self.typing_per_conversation = RateLimiter(60, burst=3)
        self.sockets_per_ip = ConnectionCounter(settings.chat_ip_max_connections)
        self.sessions: set[LiveSocket] = set()
        self.writer: ChatWriter | None = None  # PostgreSQL: residents' messages stored in batches
        self.origins = frozenset(
            origin_of(u) for u in [settings.public_url, settings.city_website, *settings.chat_allowed_origins]
        )
        self.assets = {
            name: Asset.load(chat_dir / name, media_type)
            for name, media_type in (
                ("widget.js", "text/javascript; charset=utf-8"),
                ("widget.css", "text/css; charset=utf-8"),
            )
            if (chat_dir / name).exists()
        }

    def resync_all(self) -> None:
        """The broker lost its connection for a while: every socket looks in the database for what it missed."""
        for session in list(self.sessions):
            session.resync()

    def origin_allowed(self, origin: str | None) -> bool:
        """Browsers always send Origin on a WebSocket handshake; other clients are not a cross-site risk."""
        if origin is None:
            return True
        origin = origin.lower()
        if origin in self.origins:
            return True
        if self.settings.env is not Environment.PRODUCTION:
            return urlsplit(origin).hostname in {"127.0.0.1", "localhost", "::1"}
        return False

    async def unavailable_reason(self) -> str | None:
        if not self.schedule.is_open(utcnow()):
            return "after_hours"
        if self.settings.chat_require_agent_online and await self.presence.online() == 0:
            return "no_agents"
        return None

    def availability_of(self, reason: str | None, lang: str) -> dict[str, Any]:
        hours = self.schedule.describe(self.catalogue.strings(lang), lang)
        return {"available": reason is None, "reason": reason, "hours": hours}

    async def availability(self, lang: str) -> dict[str, Any]:
        return self.availability_of(await self.unavailable_reason(), lang)

    async def watch_availability(self) -> None:
        """Tell open chats when someone becomes able to answer, or no longer is (hours end, last agent leaves)."""
        last = await self.unavailable_reason()
        while True:
            await asyncio.sleep(AVAILABILITY_CHECK_SECONDS)
            try:
                reason = await self.unavailable_reason()
            except Exception as exc:  # Redis away: keep the last answer, try again next time
                log.warning("could not check chat availability: %r", exc)
                continue
            if reason == last:
                continue
            last = reason
            frames: dict[str, str] = {}
            for session in list(self.sessions):
                if session.lang not in frames:
                    frames[session.lang] = frame("availability", **self.availability_of(reason, session.lang))
                session.notify(frames[session.lang])

    def text(self, lang: str, key: str, **values: object) -> str:
        return self.catalogue.strings(lang)[key].format(**values)
