"""Which network addresses a webhook may reach (SSRF defence): only public unicast ones, unless an admin allowed
private targets for that endpoint; and a resolver that lets aiohttp connect only to addresses it has checked."""

from __future__ import annotations

import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class RefusedAddress(Exception):
    """The target is (or resolves to) an address webhooks must not reach."""


def refusal(ip: IPAddress) -> str | None:
    """Why this address is off limits ("a loopback address", ...), or None for a public unicast one.

    IPv6 forms that carry an IPv4 address (IPv4-mapped, 6to4, Teredo, NAT64) are judged by that address too."""
    for kind, hit in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("private", ip.is_private),
        ("multicast", ip.is_multicast),
        ("unspecified", ip.is_unspecified),
        ("reserved", ip.is_reserved),
    ):
        if hit:
            return f"a {kind} address"
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        inner = refusal(embedded)
        if inner is not None:
            return f"an IPv6 form of {embedded}, {inner}"
    if not ip.is_global:  # 100.64.0.0/10 (carrier-grade NAT), 192.0.0.0/24 and the like
        return "not a globally reachable address"
    return None


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def literal_ip(host: str) -> IPAddress | None:
    """The address a URL's host names directly ("10.0.0.1", "[::1]"), or None for a host name."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def check_address(host: str, address: str) -> None:
    ip = literal_ip(address)
    if ip is None:
        raise RefusedAddress(f"{host} resolved to {address!r}, which is not an IP address")
    reason = refusal(ip)
    if reason is not None:
        shown = host if host.strip("[]") == address else f"{host} resolves to {address}, which"
        raise RefusedAddress(
            f"refused: {shown} is {reason}; only public addresses are allowed unless private targets are allowed"
        )


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, then refuses the host if any of its addresses is off limits.
    The connector connects only to what this returns, so there is no gap between the check and the connection
    (a DNS answer that changes in between, "DNS rebinding", cannot slip a private address in)."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        for entry in found:
            check_address(host.rstrip("."), entry["host"])
        return found

    async def close(self) -> None:
        await self._inner.close()
