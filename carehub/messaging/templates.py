"""Renders resident-facing messages from templates/messages/<channel>/<name>.<lang>.<ext>.j2 (English fallback)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound, select_autoescape

from channels.base import ChannelKind

DEFAULT_LANGUAGE = "en"
_EXTENSION = {ChannelKind.SMS: "txt", ChannelKind.CHAT: "txt", ChannelKind.EMAIL: "txt"}


def default_templates_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "templates"


class MessageTemplates:
    def __init__(self, root: Path) -> None:
        self.env = Environment(
            loader=FileSystemLoader(root),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
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
        ext = _EXTENSION[channel]
        for lang in dict.fromkeys((language, DEFAULT_LANGUAGE)):
            try:
                template = self.env.get_template(f"messages/{channel.value}/{name}.{lang}.{ext}.j2")
            except TemplateNotFound:
                continue
            return template.render(**context).strip()
        raise TemplateNotFound(f"messages/{channel.value}/{name}.{DEFAULT_LANGUAGE}.{ext}.j2")
