"""What every page residents open shares (alert subscriptions, the satisfaction survey, the status page, the help
centre): the security headers of a plain page with no script, and rate limits per client address.

A page reached by a private link (a token in the URL) also keeps that URL out of caches, search engines and other
sites' Referer. Not no-referrer: with it, browsers send "Origin: null" on the page's own form, which would look
cross-site to carehub/same_site.py.
"""

from __future__ import annotations

from fastapi import Request

from carehub.chat.limits import RateLimiter

PLAIN_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
PRIVATE_LINK_HEADERS = {**PLAIN_PAGE_HEADERS, "Cache-Control": "no-store", "X-Robots-Tag": "noindex"}


def client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def limiter(request: Request, name: str, per_minute: int, burst: int) -> RateLimiter:
    """One limiter per app (per replica) and purpose, made on first use."""
    state = request.app.state
    found: RateLimiter | None = getattr(state, name, None)
    if found is None:
        found = RateLimiter(per_minute, burst=burst)
        setattr(state, name, found)
    return found


def limited(request: Request, name: str, per_minute: int, burst: int) -> bool:
    """True if this client has used up its requests of this kind for now."""
    return not limiter(request, name, per_minute, burst).allow(client(request))
