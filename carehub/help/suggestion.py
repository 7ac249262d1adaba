"""An answer in the acknowledgement ("before a human", off by default): when an inbound text or email matches a
published help article confidently, and the article's topic is one the city chose (CAREHUB_HELP_ACK_TOPICS), the
acknowledgement names the article with its link and says that a reply reaches a person. The message is a ticket
in the queue all the same; nothing is held back.

Off (no topics), nothing is searched: the webhook path pays nothing. On, one search per inbound message (the query
embedding, about 10 ms of CPU). The model reads English well and French poorly (carehub/help/embedding.py), so
French messages are suggested an answer less often: the safe direction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from carehub.help import repository, search
from carehub.runtime import Runtime

# An unasked-for answer must be a likely one: close in meaning, with words in common (the fused score), and clearly
# ahead of the next article. On the quality fixture (tests/carehub/help/fixtures) these suggest an answer for 52 of
# 76 questions, 51 (SQLite) or 50 (PostgreSQL) of them the expected one, and none for 10 vague messages.
CONFIDENT_SIMILARITY = 0.4
CONFIDENT_SCORE = 0.7
CONFIDENT_MARGIN = 0.15
MIN_WORDS = 3
# How the suggestion reads (in a text; mail says it in its own templates, with the same words).
LEAD = {"en": "This may answer your question:", "fr": "Ceci répond peut-être à votre question :"}
TAIL = {"en": "Reply to talk to a person.", "fr": "Répondez pour parler à une personne."}
# A stored acknowledgement's suggestion (mail is re-rendered at delivery from its stored text, as its status link).
_IN_TEXT = re.compile(
    "(?:"
    + "|".join(re.escape(lead) for lead in LEAD.values())
    + r") (?P<title>[^\n]+?)\s+(?P<url>https?://\S+/help/\S+)"
)


@dataclass(frozen=True)
class Suggested:
    title: str
    url: str


async def find(rt: Runtime, body: str) -> dict[str, Suggested] | None:
    """{language: the article in it (else in the other)} when one article matches confidently, else None."""
    topics = rt.settings.help_ack_topics
    if not topics or len(body.split()) < MIN_WORDS:
        return None
    top = confident(await search.search(rt.engine, body[:1000], "en", limit=2))
    if top is None:
        return None
    async with rt.engine.connect() as conn:
        versions = await repository.published_versions(conn, top.key)
    if not versions or next(iter(versions.values())).topic not in topics:
        return None
    base = rt.settings.public_url.rstrip("/")
    found = {}
    for language in LEAD:
        article = versions.get(language) or next(iter(versions.values()))
        suffix = "?lang=fr" if article.language == "fr" else ""
        found[language] = Suggested(article.title, f"{base}/help/{article.key}{suffix}")
    return found


def confident(results: search.Results) -> search.Hit | None:
    """The best hit if it is a confident answer (see CONFIDENT_*); never without the model (full-text scores alone
    say too little to answer unasked)."""
    if results.mode is not search.Mode.HYBRID or not results.hits:
        return None
    top = results.hits[0]
    runner_up = results.hits[1].score if len(results.hits) > 1 else 0.0
    sure = (top.similarity or 0.0) >= CONFIDENT_SIMILARITY and top.score >= CONFIDENT_SCORE
    return top if sure and top.score - runner_up >= CONFIDENT_MARGIN else None


def with_lines(texts: dict[str, str], found: dict[str, Suggested] | None) -> dict[str, str]:
    """Text acknowledgements (per language) with the suggestion's line added."""
    if found is None:
        return texts
    return {language: f"{text}\n{line(found, language)}" for language, text in texts.items()}


def line(found: dict[str, Suggested], language: str) -> str:
    language = language if language in LEAD else "en"
    article = found[language]
    return f"{LEAD[language]} {article.title} {article.url} {TAIL[language]}"


def in_text(text: str) -> Suggested | None:
    """The suggestion a stored acknowledgement carries, if any."""
    match = _IN_TEXT.search(text)
    return None if match is None else Suggested(match.group("title"), match.group("url"))
