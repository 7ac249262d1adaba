"""The cross-site check of residents' forms (the CSAT survey, alert subscriptions): they have no session to steal,
so no CSRF token, but a post made from another site is still refused, by the browser's own word."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request


def cross_site(request: Request, public_url: str) -> bool:
    """True if a browser says this request comes from another site."""
    site = request.headers.get("sec-fetch-site")  # browsers send it on every request, and it cannot be forged
    if site is not None:
        return site not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return False
    # Same site: the hub's public host, or the host this request was sent to (what a browser on the page posts
    # from; a forged post from another site carries that site's origin instead).
    ours = {urlsplit(public_url).netloc.lower(), request.headers.get("host", "").lower()}
    return urlsplit(origin.strip()).netloc.lower() not in ours
