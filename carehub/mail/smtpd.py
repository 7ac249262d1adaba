"""carehub's own SMTP listener (aiosmtpd): takes mail for the city's domains and hands the raw bytes to accept().

It answers 250 only once the message is committed to the store, and 451 (try again later) when it cannot be,
so the sending server keeps the message until we have it. It never relays: recipients outside our domains are
refused at RCPT time.
"""

from __future__ import annotations

import asyncio
import logging

from aiosmtpd.smtp import SMTP, Envelope, Session

from carehub.mail.ingest import accept
from carehub.runtime import Runtime

log = logging.getLogger("carehub.smtpd")


class InboundMailHandler:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        domain = address.rpartition("@")[2].lower()
        if domain not in self.rt.settings.our_email_domains:
            return "550 5.7.1 Relaying denied: this server only takes mail for the city"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if not isinstance(raw, bytes):  # decode_data=False gives bytes; guard the contract anyway
            raw = str(raw).encode("utf-8", "surrogateescape")
        try:
            outcome = await accept(
                self.rt,
                raw,
                source="smtp",
                envelope_from=envelope.mail_from,
                envelope_to=tuple(envelope.rcpt_tos),
            )
        except Exception:
            log.exception("could not store inbound mail from %s; asked the sender to retry", envelope.mail_from)
            return "451 4.3.0 Could not store the message now; please try again later"
        return f"250 2.0.0 Stored as {outcome.inbound_id}"


async def start_listener(rt: Runtime, host: str, port: int) -> asyncio.Server:
    """An SMTP server on the running loop (not aiosmtpd's threaded Controller: the store lives on this loop)."""
    handler = InboundMailHandler(rt)
    settings = rt.settings
    hostname = settings.email_from_address.rpartition("@")[2]

    def protocol() -> SMTP:
        return SMTP(
            handler,
            data_size_limit=settings.email_transport_max_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=hostname,
            ident="carehub",
        )

    server = await asyncio.get_running_loop().create_server(protocol, host, port)
    log.info("SMTP listener on %s:%d for %s", host, port, ", ".join(sorted(settings.our_email_domains)))
    return server
