"""Whether a URL may be registered as a webhook endpoint: https (plain http only with allow_private), no
credentials in it, and (unless allow_private) a host that is not, and does not resolve to, a private, loopback or
link-local address. Every send checks the address again (channels/webhook), as DNS answers change."""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit

from channels.webhook.addresses import RefusedAddress, check_address
from channels.webhook.sender import TargetRefused, check_target

MAX_URL_CHARS = 2000
RESOLVE_SECONDS = 3.0


class InvalidTarget(ValueError):
    """A URL that cannot be registered, with the reason in words an admin can act on."""


async def check_registration(url: str, *, allow_private: bool) -> str:
    """The URL, stripped, if it may be registered; raises InvalidTarget otherwise."""
    url = url.strip()
    if len(url) > MAX_URL_CHARS:
        raise InvalidTarget(f"The URL is longer than {MAX_URL_CHARS} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidTarget(f"The URL is not valid: {exc}.") from None
    if parts.username is not None or parts.password is not None:
        raise InvalidTarget("The URL must not carry a user name or password; the signature authenticates us.")
    try:
        check_target(url, allow_private=allow_private)
    except (TargetRefused, ValueError) as exc:
        raise InvalidTarget(_sentence(str(exc))) from None
    host = parts.hostname or ""
    if not allow_private:
        await _check_resolved(host, port)
    return url


async def _check_resolved(host: str, port: int | None) -> None:
    """Refuse a host name that resolves to an address webhooks must not reach. One that does not resolve (yet) is
    accepted: the send-time check is the defence, this only gives an early, clear answer."""
    try:
        found = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host, port or 443, type=socket.SOCK_STREAM),
            timeout=RESOLVE_SECONDS,
        )
    except (OSError, TimeoutError):
        return
    for *_, sockaddr in found:
        try:
            check_address(host, str(sockaddr[0]))
        except RefusedAddress as exc:
            raise InvalidTarget(_sentence(str(exc))) from None


def _sentence(reason: str) -> str:
    reason = reason.removeprefix("refused: ")
    return reason[:1].upper() + reason[1:] + ("" if reason.endswith(".") else ".")
