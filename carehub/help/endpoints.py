"""The help centre's staff API: supervisors, communications staff and admins write, publish and archive articles
and see what residents searched for and found useful; every agent reads and searches them (to put one in a reply)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status
from pydantic import StringConstraints
from sqlalchemy import select
from sqlmodel import Field, SQLModel

from carehub import audit
from carehub.agents.auth import CurrentAgent, RuntimeDep, require_role
from carehub.clock import utcnow
from carehub.help import repository, search, service
from carehub.models import HelpArticleStatus, Role
from carehub.problems import Problem

router = APIRouter(prefix="/api/v1/help", tags=["help centre"])
Writer = Annotated[CurrentAgent, Depends(require_role(Role.SUPERVISOR, Role.COMMUNICATIONS, Role.ADMIN))]
Reader = Annotated[CurrentAgent, Depends(require_role(*Role))]
ARTICLES = repository.ARTICLES
KEY = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
Language = Annotated[str, StringConstraints(pattern="^(en|fr)$")]
TOPIC = re.compile(r"^[a-z0-9-]{2,64}$")
Topic = Annotated[str, StringConstraints(pattern=TOPIC.pattern)]


class ArticleCreate(SQLModel):
    key: str = Field(min_length=2, max_length=80, description="The public slug, shared by an article's translations.")
    language: Language = "en"
    title: str = Field(min_length=3, max_length=200)
    summary: str = Field(default="", max_length=500)
    body_markdown: str = Field(min_length=1, max_length=20_000)
    topic: Topic
    keywords: list[Annotated[str, StringConstraints(min_length=1, max_length=60)]] = Field(
        default_factory=list, max_length=30
    )
    related_services: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=10
    )
    review_due_at: datetime | None = None


class ArticleUpdate(SQLModel):
    title: str | None = Field(default=None, min_length=3, max_length=200)
    summary: str | None = Field(default=None, max_length=500)
    body_markdown: str | None = Field(default=None, min_length=1, max_length=20_000)
    topic: Topic | None = None
    keywords: list[Annotated[str, StringConstraints(min_length=1, max_length=60)]] | None = Field(
        default=None, max_length=30
    )
    related_services: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] | None = Field(
        default=None, max_length=10
    )
    review_due_at: datetime | None = None


class ArticlePublic(SQLModel):
    id: int
    key: str
    language: str
    title: str
    summary: str
    body_markdown: str
    body_html: str
    topic: str
    keywords: list[str]
    related_services: list[str]
    status: str
    review_due_at: datetime | None
    reviewed_at: datetime | None
    published_at: datetime | None
    updated_at: datetime
    url: str
    searchable_by_meaning: bool


class SearchHit(SQLModel):
    id: int
    key: str
    language: str
    title: str
    summary: str
    url: str
    score: float


class SearchAnswer(SQLModel):
    mode: str
    good: bool
    hits: list[SearchHit]


class UnansweredSearch(SQLModel):
    query: str
    language: str
    count: int
    last_at: datetime


class ArticleFeedback(SQLModel):
    id: int
    key: str
    language: str
    title: str
    helpful: int
    not_helpful: int


class Insights(SQLModel):
    days: int
    searches: int
    searches_with_good_result: int
    unanswered: list[UnansweredSearch]
    feedback: list[ArticleFeedback]


def public_url(public_base: str, key: str, language: str) -> str:
    suffix = "?lang=fr" if language == "fr" else ""
    return f"{public_base.rstrip('/')}/help/{key}{suffix}"


def _public(rt: RuntimeDep, row: Any, has_vector: bool) -> ArticlePublic:
    values = {k: v for k, v in row._mapping.items() if k in ArticlePublic.model_fields}
    return ArticlePublic.model_validate(
        {
            **values,
            "url": public_url(rt.settings.public_url, row.key, row.language),
            "searchable_by_meaning": has_vector,
        }
    )


async def _load(rt: RuntimeDep, article_id: int) -> ArticlePublic:
    async with rt.transaction() as tx:
        row = await repository.by_id(tx.conn, article_id)
        has_vector = (
            await tx.conn.execute(select(ARTICLES.c.embedding.is_not(None)).where(ARTICLES.c.id == article_id))
        ).scalar()
    if row is None:
        raise Problem(404, f"There is no help article {article_id}.")
    return _public(rt, row, bool(has_vector))


@router.get("/articles")
async def list_articles(
    rt: RuntimeDep,
    _agent: Reader,
    language: Annotated[str | None, Query(pattern="^(en|fr)$")] = None,
    article_status: Annotated[HelpArticleStatus | None, Query(alias="status")] = None,
    topic: Annotated[str | None, Query(max_length=64)] = None,
    due_for_review: bool = False,
) -> list[ArticlePublic]:
    """Articles by key and language; `due_for_review=true`: published ones whose review date has come."""
    query = select(*repository.COLUMNS, ARTICLES.c.embedding.is_not(None).label("has_vector"))
    if language:
        query = query.where(ARTICLES.c.language == language)
    if article_status:
        query = query.where(ARTICLES.c.status == article_status.value)
    if topic:
        query = query.where(ARTICLES.c.topic == topic)
    if due_for_review:
        query = query.where(ARTICLES.c.status == repository.PUBLISHED, ARTICLES.c.review_due_at <= utcnow())
    async with rt.transaction() as tx:
        rows = (await tx.conn.execute(query.order_by(ARTICLES.c.key, ARTICLES.c.language).limit(1000))).all()
    return [_public(rt, r, bool(r.has_vector)) for r in rows]


@router.post("/articles", status_code=status.HTTP_201_CREATED)
async def create_article(payload: ArticleCreate, rt: RuntimeDep, agent: Writer) -> ArticlePublic:
    """A draft: residents see it once it is published."""
    if not KEY.match(payload.key):
        raise Problem(422, "The key is the public address: lower-case letters, digits and single hyphens.")
    draft = service.ArticleDraft(**payload.model_dump())
    derived = await service.computed(payload.model_dump())
    now = utcnow()
    async with rt.transaction() as tx:
        same = select(ARTICLES.c.id).where(ARTICLES.c.key == payload.key, ARTICLES.c.language == payload.language)
        if (await tx.conn.execute(same)).first() is not None:
            raise Problem(409, f"The article '{payload.key}' already has a {payload.language} version.")
        article_id = await service.create(tx.conn, draft, derived, agent.id, now)
        await audit.by_agent(tx.conn, agent.id, "create", "help_article", article_id, now)
    search.articles_changed(rt.engine)
    return await _load(rt, article_id)


@router.get("/articles/{article_id}")
async def get_article(article_id: int, rt: RuntimeDep, _agent: Reader) -> ArticlePublic:
    return await _load(rt, article_id)


@router.patch("/articles/{article_id}")
async def update_article(article_id: int, changes: ArticleUpdate, rt: RuntimeDep, agent: Writer) -> ArticlePublic:
    values = changes.model_dump(exclude_unset=True)
    if not values:
        raise Problem(422, "Nothing to change.")
    current = await _load(rt, article_id)
    if {"title", "summary", "body_markdown", "keywords"} & values.keys():
        merged = current.model_dump() | values
        values |= await service.computed(merged)
    now = utcnow()
    async with rt.transaction() as tx:
        await service.change(tx.conn, article_id, values, agent.id, now)
        await audit.by_agent(tx.conn, agent.id, "update", "help_article", article_id, now, {"fields": sorted(values)})
    search.articles_changed(rt.engine)
    return await _load(rt, article_id)


@router.post("/articles/{article_id}/publish")
async def publish_article(article_id: int, rt: RuntimeDep, agent: Writer) -> ArticlePublic:
    """Published now; also marks it reviewed (the next review a year on, unless a later date is set)."""
    await _load(rt, article_id)
    now = utcnow()
    async with rt.transaction() as tx:
        await service.publish(tx.conn, article_id, agent.id, now)
        await audit.by_agent(tx.conn, agent.id, "publish", "help_article", article_id, now)
    search.articles_changed(rt.engine)
    return await _load(rt, article_id)


@router.post("/articles/{article_id}/archive")
async def archive_article(article_id: int, rt: RuntimeDep, agent: Writer) -> ArticlePublic:
    """Off the help pages and out of search; kept, with its feedback, and can be published again."""
    await _load(rt, article_id)
    now = utcnow()
    async with rt.transaction() as tx:
        await service.change(tx.conn, article_id, {"status": HelpArticleStatus.ARCHIVED.value}, agent.id, now)
        await audit.by_agent(tx.conn, agent.id, "archive", "help_article", article_id, now)
    search.articles_changed(rt.engine)
    return await _load(rt, article_id)


@router.get("/search")
async def search_articles(
    rt: RuntimeDep,
    _agent: Reader,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    lang: Annotated[str, Query(pattern="^(en|fr)$")] = "en",
    limit: Annotated[int, Query(ge=1, le=20)] = 5,
) -> SearchAnswer:
    """The residents' search, for an agent looking for an article to put in a reply (counted as source console)."""
    return await answer(rt, q, lang, limit, source="console")


async def answer(rt: RuntimeDep, q: str, lang: str, limit: int, *, source: str) -> SearchAnswer:
    """Search, count the search (learning), and describe the hits."""
    results, rows = await service.search_and_log(rt.engine, rt.settings, q, lang, limit, source=source)
    scores = {h.article_id: h.score for h in results.hits}
    hits = [
        SearchHit(
            id=r.id,
            key=r.key,
            language=r.language,
            title=r.title,
            summary=r.summary,
            url=public_url(rt.settings.public_url, r.key, r.language),
            score=round(scores[r.id], 4),
        )
        for r in rows
    ]
    return SearchAnswer(mode=results.mode.value, good=results.good, hits=hits)


@router.get("/insights")
async def insights(rt: RuntimeDep, _agent: Writer, days: Annotated[int, Query(ge=1, le=365)] = 30) -> Insights:
    """What residents looked for and did not find (most frequent first), and which articles did or did not answer
    their question (most "no" first): so the city writes the answers residents actually look for."""
    since = utcnow() - timedelta(days=days)
    async with rt.transaction() as tx:
        totals = await repository.search_totals(tx.conn, since)
        unanswered = await repository.unanswered_searches(tx.conn, since, 50)
        feedback = await repository.feedback_by_article(tx.conn, since)
    return Insights(
        days=days,
        searches=int(totals.searches),
        searches_with_good_result=int(totals.good or 0),
        unanswered=[UnansweredSearch.model_validate(r._mapping) for r in unanswered],
        feedback=[
            ArticleFeedback(
                id=r.id, key=r.key, language=r.language, title=r.title, helpful=int(r.yes), not_helpful=int(r.no)
            )
            for r in feedback
        ],
    )
