"""The SMTP server bench/email_outbound.py sends to, in a process of its own so neither side under test gets it for
free: tests/fakes/smtp_server.py's SmtpSink (aiosmtpd), noting when each message arrived, driven over stdin.

Run by the benchmark: python -m bench._smtp_sink. It prints "listening on HOST:PORT", then answers each command line
with one line:
  reset          forget what was received         -> ok
  wait N SECONDS  until N messages have arrived    -> done N ARRIVAL CONNECTIONS  (or: timeout RECEIVED)
  stats          what was received since the reset -> stats MESSAGES DISTINCT_MESSAGE_IDS BYTES CONNECTIONS
ARRIVAL is time.monotonic() when the Nth message was recorded: CLOCK_MONOTONIC, one clock for every process here.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import time

from tests.fakes.smtp_server import ReceivedMessage, SmtpSink

_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


class TimedSink(SmtpSink):
    """SmtpSink that also keeps each message's arrival time, so the Nth arrival is known however late one asks."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[float] = []

    def _record(self, received: ReceivedMessage) -> None:
        self.arrivals.append(time.monotonic())
        super()._record(received)

    def reset(self) -> None:
        self.messages.clear()
        self.arrivals.clear()
        self.connections = 0


async def _answer(sink: TimedSink, command: list[str]) -> str:
    if command == ["reset"]:
        sink.reset()
        return "ok"
    if len(command) == 3 and command[0] == "wait":
        count = int(command[1])
        try:
            await sink.wait_for(count, within=float(command[2]))
        except AssertionError:
            return f"timeout {len(sink.messages)}"
        return f"done {count} {sink.arrivals[count - 1]:.6f} {sink.connections}"
    if command == ["stats"]:
        ids = {m.group(1) for r in sink.messages if (m := _MESSAGE_ID.search(r.content))}
        size = sum(len(r.content) for r in sink.messages)
        return f"stats {len(sink.messages)} {len(ids)} {size} {sink.connections}"
    return f"error unknown command {' '.join(command)!r}"


async def _serve() -> None:
    async with TimedSink() as sink:
        sys.stdout.write(f"listening on {sink.host}:{sink.port}\n")
        sys.stdout.flush()
        while line := await asyncio.to_thread(sys.stdin.readline):
            sys.stdout.write(await _answer(sink, line.split()) + "\n")
            sys.stdout.flush()


def main() -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve())


if __name__ == "__main__":
    main()
