"""Hybrid help search: the database's full-text ranking fused with semantic similarity from a small local
embedding model (carehub/help/embedding.py), which holds every published article's vector in memory per process.

Fusion: an article's score is its cosine similarity to the question plus FULL_TEXT_WEIGHT times its full-text rank
divided by the best full-text rank of that search (0 without a word in common). The cosine carries everyday
wording and typos (the model's sub-word tokens); the full-text term lifts articles that share the question's exact
words. Translations share a key, so a key scores the better of its versions and is shown in the resident's language.
Without the model (not installed), search is full text alone, and "good" means any match."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from carehub.help import repository
from carehub.help.embedding import Encoder, load_encoder

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
FULL_TEXT_WEIGHT = 0.3
GOOD_SIMILARITY = 0.35  # a best match below this is "no good result" (counted; not suggested in the widget)
SHOW_SIMILARITY = 0.2  # below this, with no word in common, an article is not a result at all
CANDIDATES = 30
MAX_LIMIT = 20
TOP_ROWS = 64  # rows of the similarity ranking considered: more than 2 versions x MAX_LIMIT
VERSION_CHECK_SECONDS = 2.0  # how stale another replica's article change may be in this process's vectors
LANGUAGES = ("en", "fr")


class Mode(StrEnum):
    HYBRID = "hybrid"
    FULL_TEXT = "full_text"


@dataclass(frozen=True)
class Hit:
    article_id: int  # the version to show: the resident's language when there is one
    key: str
    score: float
    similarity: float | None  # cosine with the question (None without the model)
    text_rank: float  # 0..1, this article's full-text rank relative to the search's best


@dataclass(frozen=True)
class Results:
    hits: list[Hit]
    good: bool
    mode: Mode

    @property
    def top_score(self) -> float:
        if not self.hits:
            return 0.0
        top = self.hits[0]
        return top.similarity if top.similarity is not None else top.text_rank


def article_text(title: str, summary: str, keywords: Sequence[str], body_text: str) -> str:
    """What an article's vector is made from: the words a resident's question is compared with."""
    return f"{title}. {summary} {', '.join(keywords)}. {body_text}"


def to_bytes(vector: npt.NDArray[np.float32]) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


async def embed(encoder: Encoder, texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """Encoded off the event loop (numpy releases the GIL for the heavy parts)."""
    return await asyncio.to_thread(encoder.encode, list(texts))


@dataclass
class SemanticIndex:
    """Every published article's vector in one matrix, rebuilt when the articles' version changes (checked at most
    every VERSION_CHECK_SECONDS, or at once after a change made through this process)."""

    ids: list[int] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    rows_of: dict[str, list[int]] = field(default_factory=dict)  # a key's rows (its language versions)
    matrix: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, DIMENSION), dtype=np.float32))
    version: tuple[int, datetime | None] | None = None
    checked_at: float = float("-inf")
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def invalidate(self) -> None:
        self.checked_at = float("-inf")

    async def ensure(self, engine: AsyncEngine, encoder: Encoder) -> None:
        if time.monotonic() - self.checked_at < VERSION_CHECK_SECONDS:
            return
        async with self.lock:
            if time.monotonic() - self.checked_at < VERSION_CHECK_SECONDS:
                return
            async with engine.connect() as conn:
                current = await repository.version(conn)
            if current != self.version:
                await backfill(engine, encoder)
                async with engine.connect() as conn:
                    rows = await repository.published_embeddings(conn, MODEL_NAME)
                self._load(rows)
                self.version = current
            self.checked_at = time.monotonic()

    def _load(self, rows: list[Row[Any]]) -> None:
        self.ids = [r.id for r in rows]
        self.keys = [r.key for r in rows]
        self.languages = [r.language for r in rows]
        self.rows_of = {}
        for i, r in enumerate(rows):
            self.rows_of.setdefault(r.key, []).append(i)
        if rows:
            self.matrix = np.frombuffer(b"".join(r.embedding for r in rows), dtype="<f4").reshape(len(rows), -1)
        else:
            self.matrix = np.zeros((0, DIMENSION), dtype=np.float32)

    def similarities(self, query: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        result: npt.NDArray[np.float32] = self.matrix @ query
        return result


_indexes: weakref.WeakKeyDictionary[AsyncEngine, SemanticIndex] = weakref.WeakKeyDictionary()


def index_for(engine: AsyncEngine) -> SemanticIndex:
    index = _indexes.get(engine)
    if index is None:
        index = _indexes[engine] = SemanticIndex()
    return index


def articles_changed(engine: AsyncEngine) -> None:
    """Called after a change to articles commits: this process's next search reloads the vectors."""
    index_for(engine).invalidate()


async def backfill(engine: AsyncEngine, encoder: Encoder) -> int:
    """Vectors for articles saved without the model (installed since) or with another model. Returns how many."""
    done = 0
    while True:
        async with engine.connect() as conn:
            rows = await repository.missing_embeddings(conn, MODEL_NAME, limit=256)
        if not rows:
            return done
        vectors = await embed(encoder, [article_text(r.title, r.summary, r.keywords, r.body_text) for r in rows])
        async with engine.begin() as conn:
            for row, vector in zip(rows, vectors, strict=True):
                await repository.set_embedding(conn, row.id, to_bytes(vector), MODEL_NAME)
        done += len(rows)


def other(language: str) -> str:
    return "fr" if language == "en" else "en"


async def full_text_hits(engine: AsyncEngine, query: str, language: str) -> list[repository.TextHit]:
    """Full-text matches in the resident's language, or in the other language when there are none."""
    async with engine.connect() as conn:
        hits = await repository.full_text(conn, query, language, CANDIDATES)
        if not hits:
            hits = await repository.full_text(conn, query, other(language), CANDIDATES)
    return hits


async def search(
    engine: AsyncEngine, query: str, language: str, *, limit: int = 10, mode: Mode = Mode.HYBRID
) -> Results:
    limit = min(limit, MAX_LIMIT)
    encoder = load_encoder() if mode is Mode.HYBRID else None
    if encoder is None:
        text_hits = await full_text_hits(engine, query, language)
        return _full_text_results(text_hits, language, limit)
    index = index_for(engine)
    await index.ensure(engine, encoder)
    text_hits, vectors = await asyncio.gather(full_text_hits(engine, query, language), embed(encoder, [query]))
    return _fuse(index, text_hits, index.similarities(vectors[0]), language, limit)


def _full_text_results(text_hits: list[repository.TextHit], language: str, limit: int) -> Results:
    best = max((h.score for h in text_hits), default=0.0) or 1.0
    shown: dict[str, Hit] = {}
    for h in text_hits:
        if h.key not in shown:
            shown[h.key] = Hit(h.article_id, h.key, h.score / best, None, h.score / best)
    hits = list(shown.values())[:limit]
    return Results(hits, good=bool(hits), mode=Mode.FULL_TEXT)


def text_ranks(text_hits: list[repository.TextHit]) -> dict[str, float]:
    """Each key's full-text rank over the search's best (0..1): bm25 and ts_rank_cd have different scales, a ratio
    does not."""
    out: dict[str, float] = {}
    best = max((h.score for h in text_hits), default=0.0) or 1.0
    for h in text_hits:
        out[h.key] = max(out.get(h.key, 0.0), h.score / best)
    return out


def _fuse(
    index: SemanticIndex,
    text_hits: list[repository.TextHit],
    similarity: npt.NDArray[np.float32],
    language: str,
    limit: int,
) -> Results:
    text_rank = text_ranks(text_hits)
    # Only the most similar rows can make the first `limit` keys (two versions a key at most), plus the keys the
    # full text found: no Python loop over every article.
    count = len(index.ids)
    nearest = np.argpartition(-similarity, TOP_ROWS - 1)[:TOP_ROWS] if count > TOP_ROWS else np.arange(count)
    candidates = {index.keys[int(i)] for i in nearest} | (text_rank.keys() & index.rows_of.keys())
    best_similarity: dict[str, float] = {}
    shown: dict[str, int] = {}
    for key in candidates:
        rows = index.rows_of[key]
        best_similarity[key] = max(float(similarity[i]) for i in rows)
        # The version to show: the resident's language first.
        shown[key] = next((index.ids[i] for i in rows if index.languages[i] == language), index.ids[rows[0]])
    hits = [
        Hit(shown[key], key, s + FULL_TEXT_WEIGHT * text_rank.get(key, 0.0), s, text_rank.get(key, 0.0))
        for key, s in best_similarity.items()
        if s >= SHOW_SIMILARITY or key in text_rank
    ]
    hits.sort(key=lambda h: (-h.score, h.key))
    top = hits[:limit]
    good = bool(top) and (top[0].similarity or 0.0) >= GOOD_SIMILARITY
    return Results(top, good=good, mode=Mode.HYBRID)
