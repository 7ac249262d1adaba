"""The residents' help centre (/help): search first, topics, popular answers, one page per answer with "Did this
answer your question?", in English and French. Server-rendered HTML with no script, a static stylesheet, and
GET /help/suggest (JSON) for the chat widget's suggestions while a resident types."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from carehub import resident_pages
from carehub.agents.auth import RuntimeDep
from carehub.clock import utcnow
from carehub.help import repository, search, service
from carehub.help.endpoints import public_url
from carehub.help.page_text import LANGUAGES, TEXT, topic_name
from carehub.messaging.dates import long_date
from carehub.resident_pages import PLAIN_PAGE_HEADERS
from carehub.runtime import Runtime
from carehub.same_site import cross_site
from carehub.static_assets import asset_response, cached_asset

router = APIRouter(prefix="/help", include_in_schema=False)

REQUESTS_PER_MINUTE = 120  # per client IP, every help page: generous, residents click around
BURST = 60
SUGGESTIONS = 3
# Articles, topics and the front page are the same for everyone: shared caches may keep them a minute.
CACHEABLE = {**PLAIN_PAGE_HEADERS, "Cache-Control": "public, max-age=60", "Vary": "Accept-Language"}
# Search pages carry what the resident typed (personal details, sometimes): never kept by a cache.
PRIVATE = {**PLAIN_PAGE_HEADERS, "Cache-Control": "no-store"}


def _language(request: Request) -> str:
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        return asked
    accept = request.headers.get("accept-language", "").strip().lower()
    return "fr" if accept.startswith("fr") else "en"


def _href(path: str, lang: str) -> str:
    return f"{path}?lang=fr" if lang == "fr" else path


def _page(
    rt: Runtime, template: str, lang: str, *, status_code: int = 200, headers: dict[str, str], **context: Any
) -> HTMLResponse:
    t = TEXT[lang]
    html = rt.templates.env.get_template(f"help/{template}").render(
        city_name=rt.settings.city_name,
        lang=lang,
        t=t,
        href=lambda path: _href(path, lang),
        contacts=_contacts(rt, lang),
        **context,
    )
    return HTMLResponse(html, status_code=status_code, headers=headers)


def _notice(rt: Runtime, lang: str, key: str, status_code: int) -> HTMLResponse:
    t = TEXT[lang]
    headers = {**PRIVATE, "Retry-After": "60"} if status_code == 429 else PRIVATE
    return _page(
        rt,
        "notice.html.j2",
        lang,
        status_code=status_code,
        headers=headers,
        title=t[f"{key}_title"],
        text=t[key],
        switch_url=None,
    )


def _contacts(rt: Runtime, lang: str) -> list[tuple[str, str]]:
    """The ways to reach a person: (label, href)."""
    t = TEXT[lang]
    s = rt.settings
    ways = [(t["contact_chat"].format(website=s.city_website.removeprefix("https://")), s.city_website)]
    if s.twilio_from_number:
        ways.append((t["contact_text"].format(number=s.twilio_from_number), f"sms:{s.twilio_from_number}"))
    ways.append((t["contact_email"].format(email=s.email_from_address), f"mailto:{s.email_from_address}"))
    phone = "".join(c for c in s.city_phone if c.isdigit() or c == "+")
    ways.append((t["contact_phone"].format(phone=s.city_phone), f"tel:{phone}"))
    return ways


def _card(row: Any, lang: str) -> dict[str, str]:
    return {
        "title": row.title,
        "summary": row.summary,
        "href": _href(f"/help/{row.key}", row.language),
        "lang": row.language,
    }


def _limited(request: Request) -> bool:
    return resident_pages.limited(request, "help_limiter", REQUESTS_PER_MINUTE, BURST)


@router.get("/help.css")
async def stylesheet(request: Request, rt: RuntimeDep) -> Response:
    return asset_response(request, cached_asset(rt.templates.root / "help" / "help.css", "text/css; charset=utf-8"))


@router.get("")
async def home(request: Request, rt: RuntimeDep) -> Response:
    lang = _language(request)
    if _limited(request):
        return _notice(rt, lang, "limited", 429)
    async with rt.transaction() as tx:
        topics = await repository.topics(tx.conn)
        popular = await repository.popular(tx.conn, lang, utcnow() - timedelta(days=90), 6)
    return _page(
        rt,
        "home.html.j2",
        lang,
        headers=CACHEABLE,
        title=TEXT[lang]["help_centre"],
        switch_url=_href("/help", "fr" if lang == "en" else "en"),
        topics=[(topic_name(t, lang), _href(f"/help/topics/{t}", lang)) for t in topics],
        popular=[_card(r, lang) for r in popular],
        q="",
    )


@router.get("/search")
async def search_page(request: Request, rt: RuntimeDep) -> Response:
    lang = _language(request)
    if _limited(request):
        return _notice(rt, lang, "limited", 429)
    q = " ".join(request.query_params.get("q", "").split())[:200]
    if not q:
        return RedirectResponse(_href("/help", lang), status_code=303)
    results, rows = await service.search_and_log(rt.engine, rt.settings, q, lang, 10, source="page")
    t = TEXT[lang]
    return _page(
        rt,
        "search.html.j2",
        lang,
        headers=PRIVATE,
        title=t["results_title"].format(q=q) if rows else t["no_results_title"],
        switch_url=None,
        q=q,
        results=[_card(r, lang) for r in rows],
        good=results.good,
    )


@router.get("/suggest")
async def suggest(request: Request, rt: RuntimeDep) -> Response:
    """Up to three articles that answer what the resident is typing in the chat widget, only confident matches.
    Not counted in the search log: these are half-typed messages, and the chat itself is the ticket."""
    lang = _language(request)
    headers = {"Cache-Control": "no-store", "Access-Control-Allow-Origin": "*"}
    if _limited(request):
        return JSONResponse({"suggestions": []}, status_code=429, headers={**headers, "Retry-After": "60"})
    q = " ".join(request.query_params.get("q", "").split())[:200]
    suggestions: list[dict[str, str]] = []
    if len(q.split()) >= 3:
        results = await search.search(rt.engine, q, lang, limit=SUGGESTIONS)
        confident = [h for h in results.hits if (h.similarity or 0.0) >= search.GOOD_SIMILARITY]
        async with rt.transaction() as tx:
            rows = await repository.by_ids(tx.conn, [h.article_id for h in confident])
        suggestions = [
            {
                "title": r.title,
                "summary": r.summary,
                "url": public_url(rt.settings.public_url, r.key, r.language),
            }
            for h in confident
            if (r := rows.get(h.article_id)) is not None
        ]
    return JSONResponse({"suggestions": suggestions}, headers=headers)


@router.get("/topics/{topic}")
async def topic_page(topic: str, request: Request, rt: RuntimeDep) -> Response:
    lang = _language(request)
    if _limited(request):
        return _notice(rt, lang, "limited", 429)
    async with rt.transaction() as tx:
        rows = await repository.published_in(tx.conn, lang, topic[:64])
    if not rows:
        return _notice(rt, lang, "not_found", 404)
    return _page(
        rt,
        "topic.html.j2",
        lang,
        headers=CACHEABLE,
        title=topic_name(topic, lang),
        switch_url=_href(f"/help/topics/{topic}", "fr" if lang == "en" else "en"),
        articles=[_card(r, lang) for r in rows],
    )


@router.get("/{key}")
async def article_page(key: str, request: Request, rt: RuntimeDep) -> Response:
    lang = _language(request)
    if _limited(request):
        return _notice(rt, lang, "limited", 429)
    async with rt.transaction() as tx:
        versions = await repository.published_versions(tx.conn, key[:80])
    if not versions:
        return _notice(rt, lang, "not_found", 404)
    article = versions.get(lang) or next(iter(versions.values()))
    shown = article.language
    other = next((v for code, v in versions.items() if code != shown), None)
    reviewed = (article.reviewed_at or article.updated_at).astimezone(ZoneInfo(rt.settings.business_timezone))
    return _page(
        rt,
        "article.html.j2",
        shown,
        headers=CACHEABLE,
        title=article.title,
        switch_url=_href(f"/help/{key}", other.language) if other else None,
        article=article,
        topic=(topic_name(article.topic, shown), _href(f"/help/topics/{article.topic}", shown)),
        reviewed=long_date(reviewed.year, reviewed.month, reviewed.day, shown),
    )


@router.post("/{key}/feedback")
async def feedback(key: str, request: Request, rt: RuntimeDep) -> Response:
    """Yes or No on an article. No session to protect, so no token, but a post from another site is refused."""
    lang = _language(request)
    if _limited(request):
        return _notice(rt, lang, "limited", 429)
    if cross_site(request, rt.settings.public_url):
        return _notice(rt, lang, "cross_site", 403)
    form = await request.form()
    answer = form.get("helpful")
    async with rt.transaction() as tx:
        versions = await repository.published_versions(tx.conn, key[:80])
        article = versions.get(lang) or next(iter(versions.values()), None)
        if article is None or answer not in ("yes", "no"):
            return _notice(rt, lang, "not_found", 404)
        await repository.record_feedback(tx.conn, article.id, answer == "yes", utcnow(), "page")
    return _page(
        rt,
        "thanks.html.j2",
        article.language,
        headers=PRIVATE,
        title=TEXT[article.language]["thanks_title"],
        switch_url=None,
        helpful=answer == "yes",
        article=article,
    )
