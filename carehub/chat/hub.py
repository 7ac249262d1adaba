"""What one hub process holds for web chat: the catalogues, business hours, abuse limits, allowed origins and the
widget's files (read and compressed once); and the answer to "can someone answer a chat now?"."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from carehub.chat.catalogue import Catalogue
from carehub.chat.hours import Schedule
from carehub.chat.limits import ConnectionCounter, RateLimiter
from carehub.chat.writer import ChatWriter
from carehub.clock import utcnow
from carehub.realtime.presence import Presence
from carehub.settings import Environment, Settings


class LiveSocket(Protocol):
    def resync(self) -> None: ...


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    etag: str
    media_type: str

    @classmethod
    def load(cls, path: Path, media_type: str) -> Asset:
        body = path.read_bytes()
        return cls(body, gzip.compress(body, 9, mtime=0), f'"{hashlib.sha256(body).hexdigest()[:20]}"', media_type)


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

    async def availability(self, lang: str) -> dict[str, Any]:
        strings = self.catalogue.strings(lang)
        reason = None
        if not self.schedule.is_open(utcnow()):
            reason = "after_hours"
        elif self.settings.chat_require_agent_online and await self.presence.online() == 0:
            reason = "no_agents"
        return {"available": reason is None, "reason": reason, "hours": self.schedule.describe(strings, lang)}

    def text(self, lang: str, key: str, **values: object) -> str:
        return self.catalogue.strings(lang)[key].format(**values)
