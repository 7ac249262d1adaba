"""Email out over SMTP with aiosmtplib: the RFC 5322 bytes (channels/email/writer.py) sent on a small pool of
reused connections, every failure classified as transient, permanent or ambiguous.
"""

from __future__ import annotations

import asyncio
import logging
from typing import ClassVar, Literal

import aiosmtplib
from aiosmtplib.email import parse_address
from aiosmtplib.typing import Default

from channels.base import (
    AmbiguousSendError,
    ChannelKind,
    OutboundEnvelope,
    PermanentSendError,
    SendError,
    SendResult,
    TransientSendError,
)
from channels.email.writer import check_header, compose_bytes

logger = logging.getLogger("carehub.email.smtp")

TlsMode = Literal["none", "starttls", "implicit"]

_SMTPUTF8 = ("SMTPUTF8",)


class _Connection(aiosmtplib.SMTP):
    """aiosmtplib's client, noting when a transaction reaches DATA: from then on a lost reply no longer means
    "not sent". aiosmtplib sends the DATA command and the content in one call and does not say whether the 354
    came back, so a drop in between (content not yet sent) also counts as ambiguous: the safe side."""

    reached_data = False

    async def data(
        self,
        message: str | bytes,
        /,
        *,
        timeout: float | Literal[Default.token] | None = Default.token,  # noqa: ASYNC109 - aiosmtplib's signature
    ) -> aiosmtplib.SMTPResponse:
        self.reached_data = True
        return await super().data(message, timeout=timeout)


class SmtpEmailAdapter:
    """The production email adapter: one SMTP transaction per message, over up to pool_size reused connections."""

    kind: ClassVar[ChannelKind] = ChannelKind.EMAIL

    def __init__(
        self,
        *,
        host: str,
        port: int,
        from_address: str,
        from_name: str,
        username: str | None = None,
        password: str | None = None,
        tls: TlsMode = "starttls",
        timeout: float = 30.0,
        pool_size: int = 10,
        validate_certs: bool = True,
    ) -> None:
        if tls not in ("none", "starttls", "implicit"):
            raise ValueError(f"tls must be 'none', 'starttls' or 'implicit', got {tls!r}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, got {pool_size}")
        try:
            parse_address(from_address)
        except ValueError as exc:
            raise ValueError(f"from_address cannot go on a MAIL FROM line: {exc}") from exc
        check_header("From", from_name)
        self._host = host
        self._port = port
        self._from_address = from_address
        self._from_name = from_name
        self._username = username
        self._password = password
        self._tls: TlsMode = tls
        self._timeout = timeout
        self._validate_certs = validate_certs
        self._local_hostname: str | None = None  # socket.getfqdn() once, not on every connect
        self._slots = asyncio.Semaphore(pool_size)
        self._idle: list[_Connection] = []  # connected, not in use; the last returned is the first reused
        # aclose() moves to the next generation: connections still in flight then are closed when they come back.
        self._generation = 0

    async def send(self, env: OutboundEnvelope) -> SendResult:
        """Hand one email to the SMTP server. Raises TransientSendError, PermanentSendError or AmbiguousSendError."""
        if env.email is None:
            raise PermanentSendError("an email envelope needs its OutboundEmail (env.email)", code="no-email")
        message = compose_bytes(env, from_address=self._from_address, from_name=self._from_name)
        try:
            to = parse_address(env.to)
        except ValueError as exc:
            raise PermanentSendError(f"not a deliverable address: {exc}", code="invalid-address") from exc
        # A non-ASCII mailbox needs SMTPUTF8 (aiosmtplib raises SMTPNotSupported when the server lacks it, which is
        # classified as permanent); the content itself is 7-bit, so nothing else is asked of the server.
        options = () if to.isascii() and self._from_address.isascii() else _SMTPUTF8
        async with self._slots:
            await self._send_pooled(message, env.to, options)
        return SendResult(provider_id=env.email.message_id)

    async def aclose(self) -> None:
        """QUIT every idle connection; the adapter stays usable and reconnects on the next send."""
        self._generation += 1
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_quit(conn) for conn in idle))

    # -- the pool

    async def _send_pooled(self, message: bytes, to: str, options: tuple[str, ...]) -> None:
        generation = self._generation
        conn = self._take_idle()
        reused = conn is not None
        if conn is None:
            conn = await self._connect()
        try:
            try:
                await self._transaction(conn, message, to, options)
            except aiosmtplib.SMTPServerDisconnected:
                # A reused connection the server had closed while it sat idle (restart, idle timeout) fails on
                # its first command: nothing was sent, so one fresh connection may try again.
                if not reused or conn.reached_data:
                    raise
                logger.info("pooled SMTP connection to %s:%s was closed; reconnecting", self._host, self._port)
                conn.close()
                conn = await self._connect()
                await self._transaction(conn, message, to, options)
        except (aiosmtplib.SMTPException, OSError, ValueError) as exc:
            conn.close()
            raise _classify(exc, reached_data=conn.reached_data) from exc
        except BaseException:
            conn.close()  # cancelled mid-transaction: the session's state is unknown
            raise
        if generation == self._generation:
            self._idle.append(conn)
        else:
            await _quit(conn)

    def _take_idle(self) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if conn.is_connected:
                return conn
            conn.close()
        return None

    async def _connect(self) -> _Connection:
        conn = _Connection(
            hostname=self._host,
            port=self._port,
            username=self._username,
            password=self._password,
            local_hostname=self._local_hostname,
            timeout=self._timeout,
            use_tls=self._tls == "implicit",
            start_tls=self._tls == "starttls",
            validate_certs=self._validate_certs,
        )
        try:
            await conn.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise _session_error(exc, f"{self._host}:{self._port}") from exc
        self._local_hostname = conn.local_hostname
        return conn

    async def _transaction(self, conn: _Connection, message: bytes, to: str, options: tuple[str, ...]) -> None:
        conn.reached_data = False
        await conn.sendmail(self._from_address, [to], message, mail_options=options)


# -- error classification


def _classify(exc: BaseException, *, reached_data: bool) -> SendError:
    """What a failed transaction means for this message."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        refused = exc.recipients[0]
        return _reply_error(refused.code, refused.message, "RCPT")
    if isinstance(exc, aiosmtplib.SMTPResponseException) and 400 <= exc.code < 600:
        return _reply_error(exc.code, exc.message, _stage(exc))
    if reached_data and isinstance(exc, (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError)):
        # DATA was under way: the server may have queued the message before the connection went.
        return AmbiguousSendError(f"SMTP server may have accepted the message: {_describe(exc)}", code="smtp-data")
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        return TransientSendError(f"SMTP server did not answer before DATA: {_describe(exc)}", code="smtp-timeout")
    if isinstance(exc, (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, OSError)):
        return TransientSendError(f"SMTP connection lost before DATA: {_describe(exc)}", code="smtp-connect")
    if isinstance(exc, aiosmtplib.SMTPNotSupported | ValueError):
        # A non-ASCII address without SMTPUTF8, or an address aiosmtplib will not put on a command line.
        return PermanentSendError(f"message cannot be sent to this server: {_describe(exc)}", code="smtp-unsupported")
    if reached_data:
        return AmbiguousSendError(f"unexpected SMTP answer during DATA: {_describe(exc)}", code="smtp-data")
    return TransientSendError(f"unexpected SMTP answer: {_describe(exc)}", code="smtp-protocol")


def _reply_error(code: int, text: str, stage: str) -> SendError:
    message = f"SMTP server refused {stage} with {code}: {text}"
    if code < 500:
        return TransientSendError(message, code=str(code))
    # 550/551/553 at RCPT refuse the mailbox itself (no such user, not local, name not allowed).
    return PermanentSendError(message, code=str(code), bad_address=stage == "RCPT" and code in (550, 551, 553))


def _stage(exc: aiosmtplib.SMTPResponseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return "MAIL"
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        return "RCPT"
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return "DATA"
    return "the command"


def _session_error(exc: aiosmtplib.SMTPException | OSError, server: str) -> TransientSendError:
    """A failure while connecting, greeting, STARTTLS or logging in. It says nothing about the message, even with
    a 5xx (a refused login, a 554 greeting): transient, so a fixed configuration still delivers what is queued."""
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return TransientSendError(f"SMTP login to {server} refused: {exc.code} {exc.message}", code="smtp-auth")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return TransientSendError(
            f"SMTP server {server} refused the session: {exc.code} {exc.message}", code=str(exc.code)
        )
    return TransientSendError(f"could not open an SMTP session with {server}: {_describe(exc)}", code="smtp-connect")


async def _quit(conn: _Connection) -> None:
    try:
        await conn.quit()
    except (aiosmtplib.SMTPException, OSError):
        pass
    finally:
        conn.close()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
