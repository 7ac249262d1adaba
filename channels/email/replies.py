"""The part of an email reply that is new: quoted history and attribution lines stripped (EN and FR).

Agents read this; the full text is always stored beside it, so a stripping mistake hides nothing for good.
"""

from __future__ import annotations

from mailparser_reply import EmailReplyParser  # type: ignore[import-untyped]

# The city's languages; mailparser_reply adds English itself, French is the second official language.
REPLY_LANGUAGES = ("en", "fr")
# The reply parser is regex-heavy; past this size we show the full text rather than risk a slow parse.
MAX_REPLY_PARSE_CHARS = 200_000


def latest_reply(text: str) -> str:
    """The newest reply in `text`, or `text` itself when nothing can be stripped safely."""
    if not text or len(text) > MAX_REPLY_PARSE_CHARS:
        return text
    try:
        replies = EmailReplyParser(languages=list(REPLY_LANGUAGES)).read(text).replies
        latest = str(replies[0].body) if replies else ""
    except Exception:  # third-party regexes; the full text is always a safe answer
        return text
    return _drop_quoted_lines(latest) or latest.strip() or text


def _drop_quoted_lines(reply: str) -> str:
    """Remove ">" lines, and an attribution line ("... wrote:") that introduced a trailing quote.

    Bottom-posted replies keep the quote inside the latest part, and the reply parser misses attribution lines it
    has no pattern for (other languages, or its French pattern rejecting names that contain "le ").
    """
    lines = reply.splitlines()
    while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith(">")):
        trailing_quote = lines.pop().strip() != ""
        if trailing_quote:
            while lines and not lines[-1].strip():
                lines.pop()
            if lines and lines[-1].rstrip().endswith(":"):
                lines.pop()
    return "\n".join(line for line in lines if not line.lstrip().startswith(">")).strip()
