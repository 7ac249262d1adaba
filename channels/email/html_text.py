"""Readable plain text from an HTML email body, for HTML-only mail (agents see text; sanitised HTML is separate)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLANK_RUNS = re.compile(r"\n[ \t]*(?:\n[ \t]*){2,}")


class _TextExtractor(HTMLParser):
    _BLOCK = frozenset({"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "hr", "table"})
    _HIDDEN = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self.hidden += 1
        elif tag in self._BLOCK:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self._BLOCK:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.chunks.append(" ".join(data.split()) if data.strip() else " ")


def html_to_text(html: str) -> str:
    """Readable plain text from HTML: tags dropped, scripts and styles hidden, block elements on their own lines."""
    extractor = _TextExtractor()
    try:
        extractor.feed(html)
        extractor.close()
    except Exception:  # HTMLParser is lenient, but a fallback costs nothing
        return re.sub(r"<[^>]*>", " ", html).strip()
    lines = (line.strip() for line in "".join(extractor.chunks).splitlines())
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()
