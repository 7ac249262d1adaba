"""An article's Markdown as residents see it: CommonMark with raw HTML off, then nh3 keeps only safe tags (links
get rel="noopener noreferrer"); and the plain words of the body, for search and embeddings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape

import nh3
from markdown_it import MarkdownIt

_MD = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
ALLOWED_TAGS = {"p", "br", "strong", "em", "ul", "ol", "li", "a", "h2", "h3", "h4", "blockquote", "code", "hr"}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
URL_SCHEMES = {"https", "http", "mailto", "tel"}
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Rendered:
    html: str
    text: str


def render(markdown: str) -> Rendered:
    """Sanitised HTML and the plain text of an article body. Headings are shifted below the page's h1."""
    raw = _MD.render(markdown)
    raw = re.sub(r"<(/?)h1>", r"<\1h2>", raw)
    html = nh3.clean(
        raw,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
    )
    return Rendered(html=html, text=plain_text(html))


def plain_text(html: str) -> str:
    return _SPACE.sub(" ", unescape(_TAG.sub(" ", html))).strip()
