"""Help centre queries: articles, the database's full-text search in each dialect, the search log and feedback."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Row, and_, case, delete, func, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.models import HelpArticle, HelpArticleStatus, HelpFeedback, HelpSearch

ARTICLES = HelpArticle.__table__  # type: ignore[attr-defined]
SEARCHES = HelpSearch.__table__  # type: ignore[attr-defined]
FEEDBACK = HelpFeedback.__table__  # type: ignore[attr-defined]
PUBLISHED = HelpArticleStatus.PUBLISHED.value
# Everything but the embedding (a few KB each): what lists and pages need.
COLUMNS = [c for c in ARTICLES.c if c.name != "embedding"]

# Words that carry no meaning in a resident's question. PostgreSQL's configurations drop their own; SQLite's FTS5
# has no stop list, so without these "my", "the" or "le" would match every article.
STOP_WORDS = {
    "en": frozenset(
        [
            "a",
            "an",
            "and",
            "are",
            "at",
            "be",
            "been",
            "but",
            "by",
            "can",
            "could",
            "did",
            "do",
            "does",
            "for",
            "from",
            "had",
            "has",
            "have",
            "how",
            "i",
            "if",
            "in",
            "into",
            "is",
            "it",
            "its",
            "me",
            "my",
            "of",
            "on",
            "or",
            "our",
            "so",
            "that",
            "the",
            "their",
            "them",
            "there",
            "they",
            "this",
            "to",
            "was",
            "wasn't",
            "we",
            "were",
            "what",
            "when",
            "where",
            "which",
            "who",
            "why",
            "will",
            "with",
            "would",
            "you",
            "your",
            "i'm",
            "im",
            "is",
            "there",
            "any",
            "get",
            "got",
        ]
    ),
    "fr": frozenset(
        [
            "a",
            "au",
            "aux",
            "avec",
            "ce",
            "ces",
            "cet",
            "cette",
            "dans",
            "de",
            "des",
            "du",
            "elle",
            "en",
            "est",
            "et",
            "il",
            "ils",
            "je",
            "la",
            "le",
            "les",
            "leur",
            "leurs",
            "ma",
            "mais",
            "me",
            "mes",
            "mon",
            "ne",
            "nous",
            "on",
            "ou",
            "où",
            "par",
            "pas",
            "pour",
            "qu",
            "que",
            "qui",
            "sa",
            "se",
            "ses",
            "son",
            "sur",
            "ta",
            "te",
            "tes",
            "ton",
            "tu",
            "un",
            "une",
            "vos",
            "votre",
            "vous",
            "y",
            "ça",
            "c'est",
            "l",
            "d",
            "j",
            "m",
            "n",
            "s",
            "t",
            "est-ce",
            "comment",
            "quand",
        ]
    ),
}
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class TextHit:
    article_id: int
    key: str
    language: str
    score: float


def words(query: str, language: str) -> list[str]:
    stop = STOP_WORDS.get(language, STOP_WORDS["en"])
    return [w for w in _WORD.findall(query.lower()) if w not in stop and len(w) > 1][:32]


async def full_text(conn: AsyncConnection, query: str, language: str, limit: int) -> list[TextHit]:
    """Published articles in `language` matching any word of the query, best first (PostgreSQL ts_rank_cd over the
    weighted document; SQLite FTS5 bm25 with the same weights). Any word, not every word: a resident's question
    rarely uses all of the article's words."""
    terms = words(query, language)
    if not terms:
        return []
    if conn.dialect.name == "postgresql":
        sql = text(
            """
            SELECT a.id, a.key, a.language, ts_rank_cd(a.search_document, q.q) AS score
              FROM help_articles AS a,
                   (SELECT replace(plainto_tsquery(carehub_help_config(:lang), :q)::text, '&', '|')::tsquery AS q) AS q
             WHERE a.status = :published AND a.language = :lang AND a.search_document @@ q.q
             ORDER BY score DESC, a.id
             LIMIT :limit
            """
        )
        params: dict[str, Any] = {"q": " ".join(terms), "lang": language, "published": PUBLISHED, "limit": limit}
    else:
        sql = text(
            """
            SELECT a.id, a.key, a.language, -bm25(help_articles_fts, 10.0, 4.0, 4.0, 1.0) AS score
              FROM help_articles_fts JOIN help_articles AS a ON a.id = help_articles_fts.rowid
             WHERE help_articles_fts MATCH :match AND a.status = :published AND a.language = :lang
             ORDER BY score DESC, a.id
             LIMIT :limit
            """
        )
        match = " OR ".join('"' + t.replace('"', "") + '"' for t in terms)
        params = {"match": match, "lang": language, "published": PUBLISHED, "limit": limit}
    rows = (await conn.execute(sql, params)).all()
    return [TextHit(r.id, r.key, r.language, float(r.score)) for r in rows]


async def version(conn: AsyncConnection) -> tuple[int, datetime | None]:
    """Changes whenever any article is added, changed or removed: what tells a process its vectors are stale."""
    row = (await conn.execute(select(func.count(), func.max(ARTICLES.c.updated_at)))).one()
    return int(row[0]), row[1]


async def published_embeddings(conn: AsyncConnection, model: str) -> list[Row[Any]]:
    query = select(ARTICLES.c.id, ARTICLES.c.key, ARTICLES.c.language, ARTICLES.c.embedding).where(
        ARTICLES.c.status == PUBLISHED, ARTICLES.c.embedding_model == model, ARTICLES.c.embedding.is_not(None)
    )
    return list((await conn.execute(query.order_by(ARTICLES.c.id))).all())


async def missing_embeddings(conn: AsyncConnection, model: str, limit: int = 500) -> list[Row[Any]]:
    query = (
        select(*COLUMNS)
        .where(or_(ARTICLES.c.embedding.is_(None), ARTICLES.c.embedding_model.is_distinct_from(model)))
        .order_by(ARTICLES.c.id)
        .limit(limit)
    )
    return list((await conn.execute(query)).all())


async def set_embedding(conn: AsyncConnection, article_id: int, vector: bytes, model: str) -> None:
    """Stored without touching updated_at: the article did not change, only how it is indexed."""
    await conn.execute(
        update(ARTICLES).where(ARTICLES.c.id == article_id).values(embedding=vector, embedding_model=model)
    )


async def by_ids(conn: AsyncConnection, ids: list[int]) -> dict[int, Row[Any]]:
    if not ids:
        return {}
    rows = (await conn.execute(select(*COLUMNS).where(ARTICLES.c.id.in_(ids)))).all()
    return {r.id: r for r in rows}


async def by_id(conn: AsyncConnection, article_id: int) -> Row[Any] | None:
    return (await conn.execute(select(*COLUMNS).where(ARTICLES.c.id == article_id))).one_or_none()


async def published_versions(conn: AsyncConnection, key: str) -> dict[str, Row[Any]]:
    """An article's published translations, by language."""
    query = select(*COLUMNS).where(ARTICLES.c.key == key, ARTICLES.c.status == PUBLISHED)
    return {r.language: r for r in (await conn.execute(query)).all()}


async def published_in(conn: AsyncConnection, language: str, topic: str | None = None) -> list[Row[Any]]:
    """Published articles for a language (each key once: the other language's version where it has no
    translation), by title."""
    query = select(*COLUMNS).where(ARTICLES.c.status == PUBLISHED)
    if topic is not None:
        query = query.where(ARTICLES.c.topic == topic)
    chosen: dict[str, Row[Any]] = {}
    for row in (await conn.execute(query.order_by(ARTICLES.c.id))).all():
        if row.key not in chosen or row.language == language:
            chosen[row.key] = row
    return sorted(chosen.values(), key=lambda r: r.title.casefold())


async def popular(conn: AsyncConnection, language: str, since: datetime, limit: int) -> list[Row[Any]]:
    """The articles residents found helpful most often lately (ties and no feedback: newest first)."""
    helpful = (
        select(FEEDBACK.c.article_id, func.count().label("n"))
        .where(FEEDBACK.c.helpful.is_(True), FEEDBACK.c.at >= since)
        .group_by(FEEDBACK.c.article_id)
        .subquery()
    )
    query = (
        select(*COLUMNS)
        .outerjoin(helpful, helpful.c.article_id == ARTICLES.c.id)
        .where(ARTICLES.c.status == PUBLISHED, ARTICLES.c.language == language)
        .order_by(func.coalesce(helpful.c.n, 0).desc(), ARTICLES.c.published_at.desc(), ARTICLES.c.id)
        .limit(limit)
    )
    return list((await conn.execute(query)).all())


async def topics(conn: AsyncConnection) -> list[str]:
    query = select(ARTICLES.c.topic).where(ARTICLES.c.status == PUBLISHED).distinct().order_by(ARTICLES.c.topic)
    return [r.topic for r in (await conn.execute(query)).all()]


def normalise_query(query: str) -> str:
    return " ".join(query.lower().split())[:200]


async def log_search(
    conn: AsyncConnection,
    *,
    now: datetime,
    language: str,
    query: str,
    result_count: int,
    top_score: float,
    good: bool,
    source: str,
    keep_days: int,
) -> None:
    """Count a search; queries older than keep_days are deleted as new ones are written (they are personal data)."""
    await conn.execute(delete(SEARCHES).where(SEARCHES.c.at < now - timedelta(days=keep_days)))
    await conn.execute(
        insert(SEARCHES).values(
            at=now,
            language=language,
            query=normalise_query(query),
            result_count=result_count,
            top_score=round(top_score, 4),
            good=good,
            source=source,
        )
    )


async def record_feedback(conn: AsyncConnection, article_id: int, helpful: bool, now: datetime, source: str) -> None:
    await conn.execute(insert(FEEDBACK).values(article_id=article_id, helpful=helpful, at=now, source=source))


async def unanswered_searches(conn: AsyncConnection, since: datetime, limit: int) -> list[Row[Any]]:
    """The searches with no good result, most frequent first."""
    query = (
        select(
            SEARCHES.c.query,
            SEARCHES.c.language,
            func.count().label("count"),
            func.max(SEARCHES.c.at).label("last_at"),
        )
        .where(SEARCHES.c.at >= since, SEARCHES.c.good.is_(False))
        .group_by(SEARCHES.c.query, SEARCHES.c.language)
        .order_by(func.count().desc(), SEARCHES.c.query)
        .limit(limit)
    )
    return list((await conn.execute(query)).all())


async def search_totals(conn: AsyncConnection, since: datetime) -> Row[Any]:
    good = func.sum(case((SEARCHES.c.good.is_(True), 1), else_=0))
    query = select(func.count().label("searches"), func.coalesce(good, 0).label("good")).where(SEARCHES.c.at >= since)
    return (await conn.execute(query)).one()


async def feedback_by_article(conn: AsyncConnection, since: datetime) -> list[Row[Any]]:
    yes = func.sum(case((FEEDBACK.c.helpful.is_(True), 1), else_=0))
    no = func.sum(case((FEEDBACK.c.helpful.is_(False), 1), else_=0))
    query = (
        select(ARTICLES.c.id, ARTICLES.c.key, ARTICLES.c.language, ARTICLES.c.title, yes.label("yes"), no.label("no"))
        .join(FEEDBACK, and_(FEEDBACK.c.article_id == ARTICLES.c.id, FEEDBACK.c.at >= since))
        .group_by(ARTICLES.c.id, ARTICLES.c.key, ARTICLES.c.language, ARTICLES.c.title)
        .order_by(no.desc(), yes.desc(), ARTICLES.c.id)
    )
    result = await conn.execute(query)
    return [cast(Row[Any], r) for r in result.all()]
