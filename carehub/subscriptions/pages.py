"""What the alert subscription pages share: rendering in the page's language with strict headers, notices (HTML, or
problem+json for a client asking for JSON), rate limits per client, the cross-site check and the subscribed page."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub import resident_pages
from carehub.chat.service import mask
from carehub.problems import problem_response
from carehub.resident_pages import PRIVATE_LINK_HEADERS
from carehub.runtime import Runtime
from carehub.subscriptions import places, tokens
from carehub.subscriptions import repository as subs
from carehub.subscriptions.page_text import TEXT, language
from carehub.subscriptions.repository import SubscriptionRow
from channels.base import ChannelKind

REQUESTS_PER_MINUTE = 60  # per client IP, every alerts page
BURST = 30


def lang(request: Request) -> str:
    return language(request.query_params.get("lang"))


def page(rt: Runtime, template: str, lang: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    t = TEXT[lang]
    html = rt.templates.env.get_template(f"alerts_public/{template}").render(
        city_name=rt.settings.city_name, lang=lang, t=t, **context
    )
    return HTMLResponse(html, status_code=status_code, headers=PRIVATE_LINK_HEADERS)


def notice(rt: Runtime, request: Request, lang: str, key: str, status_code: int) -> Response:
    """A page with only something to say; problem+json for a client that asked for JSON."""
    t = TEXT[lang]
    if "json" in request.headers.get("accept", "") and "html" not in request.headers.get("accept", ""):
        return problem_response(status_code, TEXT["en"][key], instance=request.url.path)
    response = page(rt, "notice.html.j2", lang, status_code, title=t[f"{key}_title"], text=t[key])
    if status_code == 429:
        response.headers["Retry-After"] = "60"
    return response


def limited(request: Request) -> bool:
    return resident_pages.limited(request, "alerts_ip_limiter", REQUESTS_PER_MINUTE, BURST)


def switch_url(path: str, lang: str, **query: str) -> str:
    other = "en" if lang == "fr" else "fr"
    return f"{path}?{urlencode({**query, 'lang': other})}"


async def subscribed_page(
    rt: Runtime,
    conn: AsyncConnection,
    lang: str,
    channel: ChannelKind,
    address: str,
    active: list[SubscriptionRow],
    *,
    links: bool = True,
) -> HTMLResponse:
    """The subscriptions now active, each with its unsubscribe link: links only for whoever proved they hold the
    address (typed its code, opened its mail), never for someone who merely typed it into the form."""
    names = {topic.id: topic.name(lang) for topic in await subs.topics(conn, active_only=False)}
    areas = {area.id: area.name for area in await places.areas(conn)} if any(s.area_id for s in active) else {}
    items = [
        {
            "topic": names.get(s.topic_id, ""),
            "area": areas.get(s.area_id) if s.area_id else None,
            "unsubscribe": f"/alerts/unsubscribe/{tokens.sign(rt.settings, tokens.UNSUBSCRIBE, s.id)}?lang={lang}"
            if links
            else None,
        }
        for s in active
    ]
    return page(
        rt,
        "subscribed.html.j2",
        lang,
        title=TEXT[lang]["subscribed_title"],
        address=mask(channel, address),
        channel=channel.value,
        items=items,
        switch_url=None,
    )
