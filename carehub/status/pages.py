"""The resident's status page, /s/{token}: where the request is, the conversation, and a box to add a message.
HTTP only: the rules are in service.py.

The token in the URL is the credential (there is no session to ride, so no CSRF token); a post that a browser
says came from another site is refused all the same, and each rendered form carries a nonce that makes a double
submit one message. An unknown, expired or revoked link gets one page, which says what to do instead and does
not tell them apart, so it reveals nothing about the request. Requests are rate-limited per client IP."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from carehub import resident_pages
from carehub.agents.auth import RuntimeDep
from carehub.clock import utcnow
from carehub.resident_pages import PRIVATE_LINK_HEADERS
from carehub.routing.arrival import route_soon
from carehub.runtime import Runtime
from carehub.same_site import cross_site
from carehub.static_assets import asset_response, cached_asset
from carehub.status import links, service
from carehub.status.conversation import View, ticket
from carehub.status.page_text import TEXT, Notice, notice_texts
from carehub.status.words import language, status_words, when
from channels.base import ChannelKind

router = APIRouter(prefix="/s", include_in_schema=False)

REQUESTS_PER_MINUTE = 30
BURST = 10
MAX_FORM_BYTES = 16 * 1024  # 2,000 characters, form-encoded, with room to spare
BODY_PREFIX_LIMITS = {links.PATH: MAX_FORM_BYTES}


def _asked_language(request: Request) -> str | None:
    """?lang=, else the browser's first choice if it is English or French."""
    asked = language(request.query_params.get("lang"))
    if asked is not None:
        return asked
    first = request.headers.get("accept-language", "").split(",")[0].split(";")[0].strip().lower()
    return language(first.split("-")[0]) if first else None


def _page(rt: Runtime, template: str, status_code: int, **context: Any) -> HTMLResponse:
    html = rt.templates.env.get_template(f"status/{template}").render(city_name=rt.settings.city_name, **context)
    return HTMLResponse(html, status_code=status_code, headers=PRIVATE_LINK_HEADERS)


def _notice(rt: Runtime, status_code: int, notice: Notice, lang: str | None) -> HTMLResponse:
    s = rt.settings
    parts = notice_texts(notice, lang, email=s.email_from_address, phone=s.city_phone, website=s.city_website)
    response = _page(rt, "notice.html.j2", status_code, lang=parts[0].lang, title=parts[0].title, parts=parts)
    if status_code == 429:
        response.headers["Retry-After"] = "60"
    return response


def _status_page(
    rt: Runtime,
    request: Request,
    token: str,
    shown: View,
    lang: str,
    *,
    body: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    s = rt.settings
    t = TEXT[lang]
    sent = request.query_params.get("sent")
    return _page(
        rt,
        "page.html.j2",
        status_code,
        lang=lang,
        t=t,
        title=(t["error_prefix"] if error else "") + t["title"].format(reference=shown.reference),
        reference=shown.reference,
        status=status_words(shown.status, shown.team, lang),
        merged_note=None
        if shown.merged_from is None
        else t["merged"].format(own=shown.merged_from, reference=shown.reference),
        entries=[
            {
                "mine": e.mine,
                "who": t["you"]
                if e.mine
                else t["agent" if e.name else "us"].format(name=e.name, city_name=s.city_name),
                "body": e.body,
                "at": t["at"].format(when=when(e.at, s.business_timezone, lang)),
                "iso": e.at.isoformat(),
            }
            for e in shown.entries
        ],
        accepts=shown.accepts,
        none_text=t["none"].format(phone=s.city_phone, website=s.city_website),
        sent=t["sent_new"].format(reference=shown.reference) if sent == "new" else t["sent"] if sent == "1" else None,
        action=f"/s/{token}/messages?{urlencode({'lang': lang})}",
        switch_url=f"/s/{token}?{urlencode({'lang': t['other_language_code']})}",
        nonce=secrets.token_urlsafe(18),
        body=body,
        error=error,
        max_chars=service.MAX_MESSAGE_CHARS,
    )


def _limited(request: Request) -> bool:
    return resident_pages.limited(request, "status_page_limiter", REQUESTS_PER_MINUTE, BURST)


@router.get("/status.css")
async def stylesheet(request: Request, rt: RuntimeDep) -> Response:
    return asset_response(request, cached_asset(rt.templates.root / "status" / "status.css", "text/css; charset=utf-8"))


@router.get("/{token}")
async def status_page(token: str, request: Request, rt: RuntimeDep) -> Response:
    if _limited(request):
        return _notice(rt, 429, "limited", _asked_language(request))
    try:
        async with rt.transaction() as tx:
            _link, shown = await service.open_link(tx, rt.settings, token, utcnow(), read=True)
    except service.Unavailable:
        return _notice(rt, 404, "unavailable", _asked_language(request))
    return _status_page(rt, request, token, shown, _asked_language(request) or language(shown.language) or "en")


@router.post("/{token}/messages")
async def add_message(token: str, request: Request, rt: RuntimeDep) -> Response:
    """Add the resident's message to their request, then show the page again (post, redirect, get)."""
    asked = _asked_language(request)
    if _limited(request):
        return _notice(rt, 429, "limited", asked)
    if cross_site(request, rt.settings.public_url):
        return _notice(rt, 403, "cross_site", asked)
    form = await request.form()
    raw_body, raw_nonce = form.get("body"), form.get("nonce")
    body = raw_body.strip() if isinstance(raw_body, str) else ""
    nonce = raw_nonce if isinstance(raw_nonce, str) and service.NONCE.match(raw_nonce) else secrets.token_urlsafe(18)
    now = utcnow()
    try:
        async with rt.transaction() as tx:
            link, shown = await service.open_link(tx, rt.settings, token, now, read=False)
            lang = asked or language(shown.language) or "en"
            t = TEXT[lang]
            error = (
                t["empty"]
                if not body
                else t["too_long"].format(count=len(body))
                if len(body) > service.MAX_MESSAGE_CHARS
                else None
            )
            if error is not None or shown.accepts == "none":
                return _status_page(rt, request, token, shown, lang, body=body, error=error, status_code=422)
            added = await service.add_message(tx, rt.settings, link, shown, body=body, nonce=nonce, now=now)
    except service.Unavailable:
        return _notice(rt, 404, "unavailable", asked)
    except service.Duplicate:
        return await _after_duplicate(rt, token, shown, nonce, lang)
    if added.events:
        rt.publish_soon(added.events)
    if added.new_ticket:
        route_soon(rt, added.ticket_id)
    if added.link is not None:
        return _sent(added.link.url, lang, "new")
    return _sent(links.url_for(rt.settings, token), lang)


def _sent(url: str, lang: str, sent: str = "1") -> Response:
    path = url[url.index(links.PATH) :]
    return RedirectResponse(f"{path}?{urlencode({'lang': lang, 'sent': sent})}", status_code=303)


async def _after_duplicate(rt: Runtime, token: str, shown: View, nonce: str, lang: str) -> Response:
    """The same form again (a double click, a resent post): show what the first one did."""
    if shown.accepts != "new":
        return _sent(links.url_for(rt.settings, token), lang)
    async with rt.transaction() as tx:
        closed = await ticket(tx.conn, shown.ticket_id)
        started = None if closed is None else await service.earlier(tx, ChannelKind(closed.channel), nonce)
        new = None if started is None else await ticket(tx.conn, started)
        if new is None or new.linked_ticket_id != shown.ticket_id:
            return _sent(links.url_for(rt.settings, token), lang)
        issued = await links.issue(tx.conn, rt.settings, new.id, utcnow())
    return _sent(issued.url, lang, "new")
