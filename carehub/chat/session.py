"""One resident's WebSocket: hello (start or resume), then frames both ways until it closes.

Ordering and no loss: every message reaches the socket in sequence order with no gaps. Live events come from the
broker, but one can arrive early (commits finish out of order) or never (pub/sub dropped it); the socket keeps the
highest sequence number it has sent and fills any gap from the database before sending what comes after it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Iterable
from dataclasses import replace

from sqlalchemy.exc import IntegrityError

from carehub.chat import protocol, service, tokens
from carehub.chat import repository as chats
from carehub.chat.hub import ChatHub
from carehub.chat.protocol import (
    PONG,
    BadFrame,
    Close,
    Handoff,
    Hello,
    Ping,
    Read,
    SendMessage,
    Typing,
    ack_frame,
    frame,
    message_frame,
)
from carehub.chat.repository import Appended, Conversation
from carehub.chat.socket import ChatSocket, Disconnected, NotText
from carehub.clock import utcnow
from carehub.db import AnyRow
from carehub.models import ChatStatus
from carehub.realtime.broker import Event
from carehub.realtime.events import AGENTS_TOPIC, agent_event
from carehub.routing.arrival import route_soon
from carehub.runtime import Runtime
from channels.base import ChannelKind

log = logging.getLogger("carehub.chat")

REPLAY_PAGE = 500
JOINED = "joined"  # not a frame: another socket of the conversation is listening now
CLOSED_FRAME_PREFIX = frame("closed")[:-1]  # '{"type":"closed"' whatever fields follow


class SessionClosed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class ChatSession:
    def __init__(self, rt: Runtime, chat: ChatHub, ws: ChatSocket) -> None:
        self.rt = rt
        self.chat = chat
        self.ws = ws
        self.ip = ws.ip
        self.id = secrets.token_hex(8)
        self.lang = "en"
        self.conversation: Conversation | None = None
        self.sent_seq = 0  # the highest sequence number this socket has delivered (or the client had)
        self._send_lock = asyncio.Lock()
        self._pending: deque[Event] = deque()
        self._flusher: asyncio.Task[None] | None = None
        self._live = False  # events wait in _pending until the replay is done
        # Whether another socket (a second tab, anywhere) may be on this conversation: only then do the resident's
        # own messages go out on its topic. A socket that opened the conversation starts alone; one that resumed
        # it assumes company and announces itself (JOINED), which tells the others.
        self.shared = False

    # ---- the socket's life ------------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            hello = await self._hello()
            await self._welcome(hello)
            while True:
                try:
                    text = await self.ws.receive_text()
                except NotText:
                    await self._error("bad_frame", detail_extra="frames are JSON text, not binary")
                    continue
                await self._handle(text)
        except SessionClosed as closed:
            await self._close(closed.code, closed.reason)
        except Disconnected:
            pass
        finally:
            await self._stop_listening()

    async def _hello(self) -> Hello:
        try:
            text = await asyncio.wait_for(self.ws.receive_text(), protocol.HELLO_TIMEOUT_SECONDS)
        except TimeoutError:
            raise SessionClosed(4408, "no hello within 10 seconds") from None
        except NotText:
            raise SessionClosed(4400, "the first frame must be a hello in JSON text") from None
        try:
            hello = protocol.parse(text)
        except BadFrame as exc:
            raise SessionClosed(4400, f"the first frame must be a valid hello ({exc})"[:120]) from None
        if not isinstance(hello, Hello):
            raise SessionClosed(4400, "the first frame must be hello")
        return hello

    async def _welcome(self, hello: Hello) -> None:
        self.lang = self.chat.catalogue.language(hello.lang)
        if hello.token is not None:
            claims = tokens.verify(self.rt.settings.chat_token_secret.get_secret_value(), hello.token, utcnow())
            async with self.rt.transaction() as tx:
                found = None if claims is None else await chats.by_key(tx.conn, claims.key)
            if found is None:
                raise SessionClosed(4401, "this chat cannot be resumed (unknown or expired token)")
            self.conversation = found
            self.lang = found.language
            self.sent_seq = min(hello.last_seq, found.last_seq)
            # Listen and announce first, then read: whatever is committed after the read arrives as an event
            # (or, from a tab that has not yet heard of this one, by the gap it leaves before the next event).
            await self._listen(found)
            self.shared = True
            self.rt.publish_soon([(service.topic(found.id), Event(text=JOINED, origin=self.id))])
        availability = await self.chat.availability(self.lang)
        conversation = (
            None if self.conversation is None else service.conversation_view(self.conversation, self.rt.settings)
        )
        await self.send(frame("welcome", conversation=conversation, **availability))
        if self.conversation is not None:
            await self._send_from_database()
        self._live = True
        self._kick()

    async def _handle(self, text: str) -> None:
        if len(text) > protocol.WS_MAX_FRAME_BYTES:
            raise SessionClosed(1009, "frame too large")
        try:
            incoming = protocol.parse(text)
        except BadFrame as exc:
            await self._error("bad_frame", detail_extra=str(exc))
            return
        match incoming:
            case SendMessage():
                await self._message(incoming)
            case Typing():
                await self._typing(incoming.on)
            case Read():
                await self._read(incoming.seq)
            case Handoff():
                await self._handoff(incoming)
            case Close():
                await self._close_chat(incoming.transcript)
            case Ping():
                await self.send(PONG)
            case Hello():
                await self._error("bad_frame", detail_extra="hello was already received")

    # ---- frames from the resident --------------------------------------------------------------------------

    async def _message(self, msg: SendMessage) -> None:
        body = msg.body.strip()
        settings = self.rt.settings
        if not body:
            await self._error("bad_frame", cid=msg.cid, detail_extra="empty message")
            return
        if len(body) > settings.chat_max_chars:
            await self._error("too_long", cid=msg.cid, max=settings.chat_max_chars)
            return
        if self.conversation is not None and not service.is_open(self.conversation):
            await self._error("closed", cid=msg.cid)
            return
        conversation_key = self.conversation.id if self.conversation is not None else self.ip
        if not (
            self.chat.messages_per_ip.allow(self.ip) and self.chat.messages_per_conversation.allow(conversation_key)
        ):
            await self._error("rate_limited", cid=msg.cid)
            return
        if self.conversation is None:
            await self._open(msg, body)
            return
        appended = await self._store(self.conversation, msg.cid, body)
        await self._ack(msg.cid, appended)

    async def _store(self, conversation: Conversation, cid: str, body: str) -> Appended:
        if self.chat.writer is not None:  # PostgreSQL: batched with other sockets' messages, one round trip
            appended = await self.chat.writer.append(conversation.id, cid, body)
            if not appended.duplicate:
                self.rt.publish_soon(
                    service.message_events(
                        self.rt.settings,
                        conversation.id,
                        appended,
                        body=body,
                        sender="resident",
                        cid=cid,
                        origin=self.id,
                        to_conversation=self.shared,
                    )
                )
            return appended
        now = utcnow()
        try:
            async with self.rt.transaction() as tx:
                return await service.resident_message(
                    tx, self.rt.settings, conversation, cid=cid, body=body, now=now, origin=self.id, shared=self.shared
                )
        except IntegrityError:
            # The same message raced in from another tab: it is stored once, and this is its duplicate.
            async with self.rt.transaction() as tx:
                duplicate = await chats.find_duplicate(tx.conn, conversation.id, cid)
            if duplicate is None:
                raise
            return duplicate

    async def _open(self, msg: SendMessage, body: str) -> None:
        for attempt in (1, 2):
            try:
                async with self.rt.transaction() as tx:
                    opened = await service.open_conversation(
                        tx,
                        self.rt.settings,
                        self.rt.templates,
                        cid=msg.cid,
                        body=body,
                        language=self.lang,
                        name=msg.name,
                        email=msg.email,
                        phone=msg.phone,
                        now=utcnow(),
                        origin=self.id,
                    )
                break
            except IntegrityError:
                if attempt == 2:  # the same first message raced in twice: the second finds the first's
                    raise
        if not opened.resent:
            route_soon(self.rt, opened.conversation.ticket_id)
        self.conversation = opened.conversation
        self.lang = opened.conversation.language
        await self._listen(opened.conversation)
        view = service.conversation_view(opened.conversation, self.rt.settings)
        await self.send(frame("session", token=opened.token, conversation=view))
        await self._ack(msg.cid, opened.first)
        # Its first events (the acknowledgement) went out before this socket listened: read them back.
        self.resync()

    async def _ack(self, cid: str, appended: Appended) -> None:
        async with self._send_lock:
            await self.ws.send_text(ack_frame(cid, appended.seq, appended.at))
            if appended.seq == self.sent_seq + 1:
                self.sent_seq = appended.seq  # the client has it: no need to send it back as a message
        self._kick()

    async def _typing(self, on: bool) -> None:
        conversation = self.conversation
        if conversation is None or not self.chat.typing_per_conversation.allow(conversation.id):
            return
        reference = service.conversation_view(conversation, self.rt.settings)["reference"]
        self.rt.publish_soon(
            [(AGENTS_TOPIC, agent_event("chat.typing", reference=reference, ticket_id=conversation.ticket_id, on=on))]
        )

    async def _read(self, seq: int) -> None:
        conversation = self.conversation
        if conversation is None:
            return
        async with self.rt.transaction() as tx:
            moved = await chats.set_read(tx.conn, conversation.id, by_resident=True, seq=seq)
            if moved:
                reference = service.conversation_view(conversation, self.rt.settings)["reference"]
                tx.staged_events.append(
                    (
                        AGENTS_TOPIC,
                        agent_event("chat.read", reference=reference, ticket_id=conversation.ticket_id, seq=seq),
                    )
                )

    async def _handoff(self, req: Handoff) -> None:
        conversation = self.conversation
        if conversation is None:
            await self._error("no_conversation")
            return
        try:
            async with self.rt.transaction() as tx:
                masked = await service.handoff(
                    tx,
                    self.rt.settings,
                    self.rt.templates,
                    conversation,
                    channel=ChannelKind(req.channel),
                    address=req.address,
                    now=utcnow(),
                )
        except service.BadAddress:
            await self._error("bad_address")
            return
        log.info("chat %d continues by %s at %s", conversation.id, req.channel, masked)

    async def _close_chat(self, transcript_to: str | None) -> None:
        conversation = self.conversation
        if conversation is None:
            await self._error("no_conversation")
            return
        try:
            async with self.rt.transaction() as tx:
                await service.close(
                    tx, self.rt.settings, self.rt.templates, conversation, transcript_to=transcript_to, now=utcnow()
                )
                refreshed = await chats.by_key(tx.conn, conversation.key)
        except service.BadAddress:
            await self._error("bad_address")
            return
        self.conversation = refreshed

    async def _error(
        self, code: str, *, cid: str | None = None, detail_extra: str | None = None, **values: object
    ) -> None:
        detail = self.chat.text(self.lang, f"error.{code}", **values)
        fields: dict[str, object] = {"code": code, "detail": detail}
        if cid is not None:
            fields["cid"] = cid
        if detail_extra is not None:
            fields["reason"] = detail_extra[:200]
        await self.send(frame("error", **fields))

    # ---- frames to the resident ----------------------------------------------------------------------------

    async def send(self, text: str) -> None:
        async with self._send_lock:
            await self.ws.send_text(text)

    async def _listen(self, conversation: Conversation) -> None:
        await self.rt.broker.listen(service.topic(conversation.id), self.on_event)

    async def _stop_listening(self) -> None:
        if self.conversation is not None:
            await self.rt.broker.unlisten(service.topic(self.conversation.id), self.on_event)
        if self._flusher is not None:
            self._flusher.cancel()

    def on_event(self, event: Event) -> None:
        """The broker's call for each event of this conversation: queue it; the flusher sends in order."""
        if event.seq is not None and event.seq <= self.sent_seq:
            return
        if event.text == JOINED:
            self.shared = self.shared or event.origin != self.id
            return
        self._pending.append(event)
        self._kick()

    def notify(self, text: str) -> None:
        """Send a frame that is not a message (availability), in turn with the rest."""
        self._pending.append(Event(text=text))
        self._kick()

    def resync(self) -> None:
        """Pub/sub may have dropped events (Redis reconnected): look in the database for anything newer."""
        self._pending.append(Event(text="", seq=None))
        self._kick()

    def _kick(self) -> None:
        if self._live and self._pending and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._pending:
                event = self._pending.popleft()
                if event.seq is None:
                    if event.text.startswith(CLOSED_FRAME_PREFIX) and self.conversation is not None:
                        # Ended elsewhere (another tab, an agent resolving the ticket): refuse messages from now on.
                        self.conversation = replace(self.conversation, status=ChatStatus.CLOSED)
                    if event.text:
                        await self.send(event.text)
                    else:
                        await self._send_from_database()
                elif event.seq == self.sent_seq + 1:
                    async with self._send_lock:
                        if event.seq == self.sent_seq + 1:
                            await self.ws.send_text(event.text)
                            self.sent_seq = event.seq
                elif event.seq > self.sent_seq:
                    await self._send_from_database(upto=event.seq)
        except (Disconnected, OSError):
            self._pending.clear()  # the socket is gone; the client re-syncs from the database when it returns

    async def _send_from_database(self, upto: int | None = None) -> None:
        """Send every stored message after sent_seq (up to `upto`), in order."""
        if self.conversation is None:
            return
        while upto is None or self.sent_seq < upto:
            async with self.rt.transaction() as tx:
                rows = await chats.messages_after(tx.conn, self.conversation.id, self.sent_seq, REPLAY_PAGE)
            if upto is not None:
                rows = [r for r in rows if r.seq <= upto]
            if not rows:
                return
            await self._send_rows(rows)
            if len(rows) < REPLAY_PAGE and upto is None:
                return

    async def _send_rows(self, rows: Iterable[AnyRow]) -> None:
        prefix = f"{self.conversation.id}/" if self.conversation is not None else ""
        async with self._send_lock:
            for r in rows:
                if r.seq <= self.sent_seq:
                    continue
                cid = r.provider_id.removeprefix(prefix) if r.provider_id else None
                await self.ws.send_text(
                    message_frame(
                        seq=r.seq,
                        cid=cid,
                        sender=service.sender_of(r.direction, r.author_agent_id),
                        name=service.first_name(r.agent_name),
                        body=r.body,
                        at=r.created_at,
                    )
                )
                self.sent_seq = r.seq

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(OSError):
            await self.ws.close(code, reason)
