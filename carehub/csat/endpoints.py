"""The public survey page (/csat/{key}): one question, answered without JavaScript, in the resident's language.

The unguessable key in the link is the capability, so the form carries no CSRF token; a post whose Origin (or
Sec-Fetch-Site) says it came from another site is refused all the same. Requests are rate-limited per client IP."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from carehub import resident_pages
from carehub.agents.auth import RuntimeDep
from carehub.clock import utcnow
from carehub.csat import service
from carehub.csat.page_text import TEXT, BilingualNotice, notice_texts
from carehub.resident_pages import PRIVATE_LINK_HEADERS
from carehub.runtime import Runtime
from carehub.same_site import cross_site
from carehub.static_assets import asset_response, cached_asset

router = APIRouter(prefix="/csat", include_in_schema=False)

REQUESTS_PER_MINUTE = 30
BURST = 10


def _page(rt: Runtime, template: str, status_code: int, **context: Any) -> HTMLResponse:
    html = rt.templates.env.get_template(f"csat/{template}").render(city_name=rt.settings.city_name, **context)
    return HTMLResponse(html, status_code=status_code, headers=PRIVATE_LINK_HEADERS)


def _notice(rt: Runtime, status_code: int, notice: BilingualNotice, lang: str | None = None) -> HTMLResponse:
    """A page with only something to say; in both languages when the survey (and so its language) is unknown."""
    parts = notice_texts(notice, lang)
    return _page(rt, "notice.html.j2", status_code, lang=parts[0].lang, title=parts[0].title, parts=parts)


def _limited(request: Request, rt: Runtime) -> Response | None:
    if not resident_pages.limited(request, "csat_limiter", REQUESTS_PER_MINUTE, BURST):
        return None
    response = _notice(rt, 429, "limited")
    response.headers["Retry-After"] = "60"
    return response


def _rating(value: object) -> int | None:
    if isinstance(value, str) and value.strip() in {"1", "2", "3", "4", "5"}:
        return int(value.strip())
    return None


@router.get("/survey.css")
async def stylesheet(request: Request, rt: RuntimeDep) -> Response:
    return asset_response(request, cached_asset(rt.templates.root / "csat" / "survey.css", "text/css; charset=utf-8"))


@router.get("/{key}")
async def survey_page(key: str, request: Request, rt: RuntimeDep) -> Response:
    """The question, with the answer given before (or ?rating=N from the email's links) already chosen."""
    if (limited := _limited(request, rt)) is not None:
        return limited
    async with rt.transaction() as tx:
        survey = await service.by_key(tx.conn, rt.settings, key, utcnow())
    if survey is None:
        return _notice(rt, 404, "not_found")
    if not survey.open:
        return _notice(rt, 410, "closed", survey.language)
    chosen = _rating(request.query_params.get("rating")) or survey.rating
    return _form(rt, key, survey, rating=chosen, comment=survey.comment)


def _form(
    rt: Runtime,
    key: str,
    survey: service.Survey,
    *,
    rating: int | None,
    comment: str | None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    t = TEXT[survey.language]
    return _page(
        rt,
        "survey.html.j2",
        status_code,
        lang=survey.language,
        title=(t["error_prefix"] + t["title"]) if error else t["title"],
        t=t,
        key=key,
        legend=t["legend"].format(reference=survey.reference),
        rating=rating,
        comment=comment,
        error=error,
        max_comment=service.MAX_COMMENT_CHARS,
    )


@router.post("/{key}")
async def submit(key: str, request: Request, rt: RuntimeDep) -> Response:
    """Record the answer (a second answer replaces the first while the survey is open)."""
    if (limited := _limited(request, rt)) is not None:
        return limited
    if cross_site(request, rt.settings.public_url):
        return _notice(rt, 403, "cross_site")
    form = await request.form()
    rating = _rating(form.get("rating"))
    raw_comment = form.get("comment")
    comment = raw_comment.strip() if isinstance(raw_comment, str) else ""
    now = utcnow()
    async with rt.transaction() as tx:
        survey = await service.by_key(tx.conn, rt.settings, key, now)
        if survey is None:
            return _notice(rt, 404, "not_found")
        if not survey.open:
            return _notice(rt, 410, "closed", survey.language)
        t = TEXT[survey.language]
        error = (
            t["rating_required"]
            if rating is None
            else t["comment_too_long"].format(count=len(comment))
            if len(comment) > service.MAX_COMMENT_CHARS
            else None
        )
        if error is not None or rating is None:
            return _form(rt, key, survey, rating=rating, comment=comment, error=error, status_code=422)
        await service.answer(tx.conn, survey, rating=rating, comment=comment, now=now)
    return _page(rt, "done.html.j2", 200, lang=survey.language, title=t["thanks_title"], t=t, key=key, rating=rating)
