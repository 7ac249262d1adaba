"""SMS for development without Twilio credentials: webhooks are checked and read exactly as Twilio's are,
but outgoing texts are only written to the log.
"""

from __future__ import annotations

import logging
import secrets

from channels.base import OutboundEnvelope, SendResult
from channels.sms.twilio import TwilioWebhooks

logger = logging.getLogger("carehub.sms.console")


class ConsoleSmsAdapter(TwilioWebhooks):
    """Logs outgoing SMS (with their bodies: dev only) instead of sending them."""

    def __init__(self, *, auth_token: str, default_region: str = "CA") -> None:
        # Still the auth token: a dev hub reachable from outside must not take unsigned webhooks either.
        super().__init__(auth_token=auth_token, default_region=default_region)

    async def send(self, env: OutboundEnvelope) -> SendResult:
        provider_id = "SMconsole" + secrets.token_hex(12)
        logger.info(
            "SMS not sent (console provider) %s outbox=%s to=%s status_callback=%s body=%r",
            provider_id,
            env.outbox_id,
            env.to,
            env.status_callback_url,
            env.body,
        )
        return SendResult(provider_id=provider_id)

    async def aclose(self) -> None:
        return None
