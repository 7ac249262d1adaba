"""Renders resident-facing messages from templates/messages/<channel>/<name>.<lang>.<ext>.j2 (English fallback)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, TemplateNotFound, select_autoescape

from channels.base import ChannelKind

DEFAULT_LANGUAGE = "en"
_EXTENSION = {ChannelKind.SMS: "txt", ChannelKind.CHAT: "txt", ChannelKind.EMAIL: "txt"}
_EMAIL_EXTENSIONS = ("txt", "html")
_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*)+")


def default_templates_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "templates"


def paragraphs(text: str) -> list[list[str]]:
    """Plain text as paragraphs (split at blank lines) of lines; the HTML templates escape and join them."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    return [paragraph.split("\n") for paragraph in _BLANK_LINES.split(text) if paragraph]


class MessageTemplates:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = Environment(
            loader=FileSystemLoader(root),
            undefined=StrictUndefined,
            # Files are named "<name>.<lang>.html.j2": "html" alone would never match and escape nothing.
            autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["paragraphs"] = paragraphs
        self._each_language: dict[tuple[ChannelKind, str, tuple[tuple[str, str], ...]], dict[str, str]] = {}

    def languages(self, channel: ChannelKind, name: str) -> list[str]:
        prefix, suffix = f"messages/{channel.value}/{name}.", f".{_EXTENSION[channel]}.j2"
        return sorted(
            t.removeprefix(prefix).removesuffix(suffix)
            for t in self.env.list_templates()
            if t.startswith(prefix) and t.endswith(suffix)
        )

    def render_each_language(self, channel: ChannelKind, name: str, **context: str) -> dict[str, str]:
        """Every language's rendering; cached, since callers pass constant context (slots filled in later)."""
        key = (channel, name, tuple(sorted(context.items())))
        if key not in self._each_language:
            self._each_language[key] = {
                lang: self.render(channel, name, lang, **context) for lang in self.languages(channel, name)
            }
        return self._each_language[key]

    def render(self, channel: ChannelKind, name: str, language: str, **context: Any) -> str:
        (template,) = self._templates(channel, name, language, (_EXTENSION[channel],))
        return template.render(**context).strip()

    def render_email(self, name: str, language: str, **context: Any) -> tuple[str, str]:
        """(text, html) of an email, both in `language` if it has both parts, otherwise both in English."""
        text, html = (
            t.render(**context).strip() for t in self._templates(ChannelKind.EMAIL, name, language, _EMAIL_EXTENSIONS)
        )
        return text, html

    def _templates(self, channel: ChannelKind, name: str, language: str, extensions: tuple[str, ...]) -> list[Template]:
        """`language`'s templates if it has one for every extension, else English's: parts never mix languages."""

        def load(lang: str) -> list[Template]:
            return [self.env.get_template(f"messages/{channel.value}/{name}.{lang}.{ext}.j2") for ext in extensions]

        try:
            return load(language)
        except TemplateNotFound:
            return load(DEFAULT_LANGUAGE)
