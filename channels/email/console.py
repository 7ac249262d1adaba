"""Email for development without an SMTP server: each message is composed exactly as the SMTP adapter would
(so a bad header fails here too), then only written to the log.
"""

from __future__ import annotations

import logging
from typing import ClassVar

from channels.base import ChannelKind, OutboundEnvelope, PermanentSendError, SendResult
from channels.email.writer import compose_bytes

logger = logging.getLogger("carehub.email.console")


class ConsoleEmailAdapter:
    """Logs outgoing email (with its text body: dev only) instead of sending it."""

    kind: ClassVar[ChannelKind] = ChannelKind.EMAIL

    def __init__(self, *, from_address: str, from_name: str) -> None:
        self._from_address = from_address
        self._from_name = from_name

    async def send(self, env: OutboundEnvelope) -> SendResult:
        if env.email is None:
            raise PermanentSendError("an email envelope needs its OutboundEmail (env.email)", code="no-email")
        compose_bytes(env, from_address=self._from_address, from_name=self._from_name)  # refuses what SMTP would
        logger.info(
            "Email not sent (console provider) %s outbox=%s from=%s to=%s subject=%r html=%s body=%r",
            env.email.message_id,
            env.outbox_id,
            f"{self._from_name} <{self._from_address}>",
            env.to,
            env.email.subject,
            env.email.html is not None,
            env.email.text,
        )
        return SendResult(provider_id=env.email.message_id)

    async def aclose(self) -> None:
        return None
