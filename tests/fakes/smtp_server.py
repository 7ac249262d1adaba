"""A real SMTP server (aiosmtpd) on the running event loop, for tests and benchmarks: records what it receives,
counts connections, can be stopped and restarted on the same port, and can be scripted to fail.

    async with SmtpSink() as sink:
        sink.fail_next("RCPT", "550 5.1.1 No such user")
        adapter = SmtpEmailAdapter(host=sink.host, port=sink.port, ..., tls="none")
        await sink.wait_for(1)

Run on its own (for benchmarks or tests that need another process): python -m tests.fakes.smtp_server --port 0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ssl
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from enum import StrEnum
from functools import cached_property
from types import TracebackType
from typing import Any, Literal, Self

from aiosmtpd.smtp import SMTP, Envelope, Session

Stage = Literal["MAIL", "RCPT", "DATA"]
SERVER_NAME = "sink.carehub.test"  # given to aiosmtpd so it does not call socket.getfqdn() on every connection


class _ActionKind(StrEnum):
    REPLY = "reply"  # answer with a scripted reply instead of 250
    DROP = "drop"  # close the connection without answering (at DATA: after recording the message)
    HANG = "hang"  # never answer; the client has to time out


@dataclass(frozen=True)
class _Action:
    kind: _ActionKind
    reply: str = ""


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the sink accepted (or, for drop_next("DATA"), took in before hanging up)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes  # exactly as received, after dot-unstuffing

    @cached_property
    def message(self) -> EmailMessage:
        """The content parsed, with line endings made local (\n) as a mail store would, so text parts read back
        as they were written. Parsed on first use only: benchmarks that never look pay nothing."""
        parsed = BytesParser(policy=policy.default).parsebytes(self.content.replace(b"\r\n", b"\n"))
        assert isinstance(parsed, EmailMessage)
        return parsed


class _SinkSMTP(SMTP):
    """aiosmtpd's protocol, telling the sink when a connection opens and closes."""

    def __init__(self, sink: SmtpSink, handler: _Handler, starttls_context: ssl.SSLContext | None) -> None:
        super().__init__(handler, hostname=SERVER_NAME, tls_context=starttls_context, loop=asyncio.get_running_loop())
        self._sink = sink

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        upgrade = self.transport is not None  # aiosmtpd calls this again once STARTTLS is done
        super().connection_made(transport)
        if not upgrade:
            self._sink._opened(self)

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        self._sink._closed(self)


class _Handler:
    """aiosmtpd's hooks: run the scripted action for the stage, else accept."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        reply = await self._sink._scripted("MAIL", server)
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        reply = await self._sink._scripted("RCPT", server)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        received = ReceivedMessage(envelope.mail_from or "", tuple(envelope.rcpt_tos), content)
        reply = await self._sink._scripted("DATA", server, received)
        if reply is not None:
            return reply
        self._sink._record(received)
        return "250 OK"


class SmtpSink:
    """The server. Scripted actions apply, in order, to the next commands of their stage; with none queued,
    everything is accepted with 250."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: Literal["none", "starttls", "implicit"] = "none",
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        if (tls == "none") != (tls_context is None):
            raise ValueError("a tls_context goes with tls='starttls' or 'implicit', and only with them")
        self.host = host
        self._port = port
        self._tls = tls
        self._tls_context = tls_context
        self.messages: list[ReceivedMessage] = []
        self.rejected: list[ReceivedMessage] = []  # DATA answered with a scripted reply
        self.connections = 0  # TCP connections accepted, over every start()
        self._script: dict[Stage, deque[_Action]] = {"MAIL": deque(), "RCPT": deque(), "DATA": deque()}
        self._handler = _Handler(self)
        self._server: asyncio.Server | None = None
        self._live: set[_SinkSMTP] = set()
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    @property
    def port(self) -> int:
        if self._port == 0:
            raise RuntimeError("SmtpSink is not started")
        return self._port

    @property
    def open_connections(self) -> int:
        return len(self._live)

    # -- lifecycle

    async def start(self) -> None:
        """Listen (again): on the port of the last start, so clients find it where it was."""
        loop = asyncio.get_running_loop()
        starttls_context = self._tls_context if self._tls == "starttls" else None
        self._server = await loop.create_server(
            lambda: _SinkSMTP(self, self._handler, starttls_context),
            self.host,
            self._port,
            ssl=self._tls_context if self._tls == "implicit" else None,
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and close every open connection, like a server going down."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for protocol in list(self._live):
            if protocol.transport is not None:
                protocol.transport.close()
        await self._wait_until(lambda: not self._live, 5.0, "connections to close")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- scripting and waiting

    def fail_next(self, stage: Stage, reply: str, times: int = 1) -> None:
        """Answer the next `times` commands of `stage` with `reply`, e.g. "451 4.3.0 Try later". At DATA the
        reply comes after the content, where servers give their verdict on the message."""
        self._script[stage].extend([_Action(_ActionKind.REPLY, reply)] * times)

    def drop_next(self, stage: Stage, times: int = 1) -> None:
        """Close the connection instead of answering. At DATA the message is recorded first: the server has
        it, the client never hears so (the ambiguous case)."""
        self._script[stage].extend([_Action(_ActionKind.DROP)] * times)

    def hang_next(self, stage: Stage, times: int = 1) -> None:
        """Never answer (at DATA: after the content arrived) until the client gives up or the sink stops."""
        self._script[stage].extend([_Action(_ActionKind.HANG)] * times)

    # Bounded waits are what these are for; asyncio.timeout does the bounding inside.
    async def wait_for(self, count: int, within: float = 5.0) -> list[ReceivedMessage]:
        """Wait until at least `count` messages were received; returns them all."""
        await self._wait_until(lambda: len(self.messages) >= count, within, f"{count} messages")
        return list(self.messages)

    async def wait_for_connections(self, count: int, within: float = 5.0) -> None:
        """Wait until exactly `count` connections are open (e.g. 0 after a client hung up)."""
        await self._wait_until(lambda: len(self._live) == count, within, f"{count} open connections")

    async def _wait_until(self, predicate: Callable[[], bool], within: float, what: str) -> None:
        if predicate():
            return
        waiter = (predicate, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(within):
                await waiter[1]
        except TimeoutError:
            raise AssertionError(f"SmtpSink: timed out after {within}s waiting for {what}") from None
        finally:
            self._waiters.remove(waiter)

    def _changed(self) -> None:
        # Called synchronously on every change (protocol callbacks included), so waiters wake without polling.
        for predicate, future in self._waiters:
            if not future.done() and predicate():
                future.set_result(None)

    # -- called by the protocol and the handler

    def _opened(self, protocol: _SinkSMTP) -> None:
        self.connections += 1
        self._live.add(protocol)
        self._changed()

    def _closed(self, protocol: _SinkSMTP) -> None:
        self._live.discard(protocol)
        self._changed()

    def _record(self, received: ReceivedMessage) -> None:
        self.messages.append(received)
        self._changed()

    async def _scripted(self, stage: Stage, server: SMTP, received: ReceivedMessage | None = None) -> str | None:
        """The scripted reply for this command, or None to accept it. DROP and HANG never return: the connection
        closing cancels the handler."""
        script = self._script[stage]
        if not script:
            return None
        action = script.popleft()
        if action.kind is _ActionKind.REPLY:
            if received is not None:
                self.rejected.append(received)
            return action.reply
        if action.kind is _ActionKind.DROP:
            if received is not None:
                self._record(received)
            if server.transport is not None:
                server.transport.close()
        await asyncio.Future[Any]()  # cancelled when the connection goes
        raise AssertionError("unreachable")


# ---------------------------------------------------------------- standalone


async def _serve(port: int) -> None:
    async with SmtpSink(port=port) as sink:
        # The parent process reads this line to learn the OS-assigned port.
        sys.stdout.write(f"listening on {sink.host}:{sink.port}\n")
        sys.stdout.flush()
        await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0, help="0: let the OS choose (printed on stdout)")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port))


if __name__ == "__main__":
    main()
