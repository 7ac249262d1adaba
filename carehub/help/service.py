"""Help centre rules: saving an article renders and sanitises its Markdown and computes its vector; publishing,
archiving and review dates; loading a set of articles (the examples `carehub dev` seeds, the test fixtures)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from carehub.clock import utcnow
from carehub.help import repository, search
from carehub.help.embedding import load_encoder
from carehub.help.render import render
from carehub.models import Contact, HelpArticleStatus
from carehub.settings import Settings

ARTICLES = repository.ARTICLES
CONTACTS = Contact.__table__  # type: ignore[attr-defined]
EXAMPLES = Path(__file__).with_name("examples.json")
REVIEW_EVERY = timedelta(days=365)  # a new article's first review date, unless the writer sets one


@dataclass
class ArticleDraft:
    """What a writer sends: everything an article says, in one language."""

    key: str
    language: str
    title: str
    summary: str
    body_markdown: str
    topic: str
    keywords: list[str] = field(default_factory=list)
    related_services: list[str] = field(default_factory=list)
    review_due_at: datetime | None = None


async def computed(values: dict[str, Any]) -> dict[str, Any]:
    """The columns derived from what the writer sent: sanitised HTML, plain text and (model installed) the vector.
    Encoded before the transaction opens, so no lock is held while the model runs."""
    rendered = render(values["body_markdown"])
    out: dict[str, Any] = {
        "body_html": rendered.html,
        "body_text": rendered.text,
        "embedding": None,
        "embedding_model": None,
    }
    encoder = load_encoder()
    if encoder is not None:
        text = search.article_text(values["title"], values["summary"], values["keywords"], rendered.text)
        vector = (await search.embed(encoder, [text]))[0]
        out |= {"embedding": search.to_bytes(vector), "embedding_model": search.MODEL_NAME}
    return out


async def create(
    conn: AsyncConnection, draft: ArticleDraft, derived: dict[str, Any], agent_id: int | None, now: datetime
) -> int:
    values = {
        "key": draft.key,
        "language": draft.language,
        "title": draft.title,
        "summary": draft.summary,
        "body_markdown": draft.body_markdown,
        "topic": draft.topic,
        "keywords": draft.keywords,
        "related_services": draft.related_services,
        "status": HelpArticleStatus.DRAFT.value,
        "review_due_at": draft.review_due_at or now + REVIEW_EVERY,
        "created_by": agent_id,
        "updated_by": agent_id,
        "created_at": now,
        "updated_at": now,
        **derived,
    }
    return int((await conn.execute(insert(ARTICLES).values(**values).returning(ARTICLES.c.id))).scalar_one())


async def change(conn: AsyncConnection, article_id: int, values: dict[str, Any], agent_id: int, now: datetime) -> None:
    await conn.execute(
        update(ARTICLES).where(ARTICLES.c.id == article_id).values(**values, updated_by=agent_id, updated_at=now)
    )


async def publish(conn: AsyncConnection, article_id: int, agent_id: int | None, now: datetime) -> None:
    """Published (again): a publish is also a review, so the next review is a year on unless one is set later."""
    row = await repository.by_id(conn, article_id)
    due = row.review_due_at if row is not None and row.review_due_at and row.review_due_at > now else None
    await conn.execute(
        update(ARTICLES)
        .where(ARTICLES.c.id == article_id)
        .values(
            status=HelpArticleStatus.PUBLISHED.value,
            published_at=now,
            reviewed_at=now,
            review_due_at=due or now + REVIEW_EVERY,
            updated_by=agent_id,
            updated_at=now,
        )
    )


def load_drafts(path: Path) -> list[ArticleDraft]:
    """Articles from a JSON list of {key, topic, related_services, en: {...}, fr: {...}}: one draft per language."""
    drafts: list[ArticleDraft] = []
    for item in json.loads(path.read_text(encoding="utf-8")):
        for language in search.LANGUAGES:
            version = item.get(language)
            if version is None:
                continue
            drafts.append(
                ArticleDraft(
                    key=item["key"],
                    language=language,
                    title=version["title"],
                    summary=version["summary"],
                    body_markdown=version["body"],
                    topic=item["topic"],
                    keywords=list(version.get("keywords", [])),
                    related_services=list(item.get("related_services", [])),
                )
            )
    return drafts


async def seed(engine: AsyncEngine, drafts: Sequence[ArticleDraft], now: datetime) -> int:
    """Publishes these articles unless an article with that key and language exists; returns how many were added.
    Vectors are computed in one batch (fast), then everything is written in one transaction."""
    encoder = load_encoder()
    vectors: list[bytes | None] = [None] * len(drafts)
    rendered = [render(d.body_markdown) for d in drafts]
    if encoder is not None and drafts:
        texts = [
            search.article_text(d.title, d.summary, d.keywords, r.text) for d, r in zip(drafts, rendered, strict=True)
        ]
        vectors = [search.to_bytes(v) for v in await search.embed(encoder, texts)]
    added = 0
    async with engine.begin() as conn:
        existing = {(r.key, r.language) for r in (await conn.execute(select(ARTICLES.c.key, ARTICLES.c.language)))}
        for draft, body, vector in zip(drafts, rendered, vectors, strict=True):
            if (draft.key, draft.language) in existing:
                continue
            derived = {
                "body_html": body.html,
                "body_text": body.text,
                "embedding": vector,
                "embedding_model": search.MODEL_NAME if vector is not None else None,
            }
            article_id = await create(conn, draft, derived, None, now)
            await publish(conn, article_id, None, now)
            added += 1
    search.articles_changed(engine)
    return added


async def search_and_log(
    engine: AsyncEngine, settings: Settings, query: str, language: str, limit: int, *, source: str
) -> tuple[search.Results, list[Any]]:
    """A search, counted for learning (query kept help_search_log_days), with the rows of the articles found."""
    results = await search.search(engine, query, language, limit=limit)
    async with engine.begin() as conn:
        rows = await repository.by_ids(conn, [h.article_id for h in results.hits])
        await repository.log_search(
            conn,
            now=utcnow(),
            language=language,
            query=query,
            result_count=len(results.hits),
            top_score=results.top_score,
            good=results.good,
            source=source,
            keep_days=settings.help_search_log_days,
        )
    return results, [rows[h.article_id] for h in results.hits if h.article_id in rows]


async def for_reply(conn: AsyncConnection, public_base: str, key: str, contact_id: int) -> str | None:
    """What the console puts in a reply for an article: its title and public link, in the resident's language
    when it has that version. None if the article is not published."""
    language = (
        await conn.execute(select(CONTACTS.c.language).where(CONTACTS.c.id == contact_id))
    ).scalar_one_or_none() or "en"
    versions = await repository.published_versions(conn, key)
    article = versions.get(language) or next(iter(versions.values()), None)
    if article is None:
        return None
    suffix = "?lang=fr" if article.language == "fr" else ""
    return f"{article.title}: {public_base.rstrip('/')}/help/{article.key}{suffix}"


async def reply_choices(conn: AsyncConnection, contact_id: int) -> list[tuple[str, str]]:
    """(key, title) of every published article, titled in the resident's language where it has that version."""
    language = (
        await conn.execute(select(CONTACTS.c.language).where(CONTACTS.c.id == contact_id))
    ).scalar_one_or_none() or "en"
    return [(r.key, r.title) for r in await repository.published_in(conn, language)]
