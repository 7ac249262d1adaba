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

    def render(self, channel: ChannelKind, name: str, language: str, **context: Any) -> str:
        ext = _EXTENSION[channel]
        for lang in dict.fromkeys((language, DEFAULT_LANGUAGE)):
            try:
                template = self.env.get_template(f"messages/{channel.value}/{name}.{lang}.{ext}.j2")
            except TemplateNotFound:
                continue
            return template.render(**context).strip()
        raise TemplateNotFound(f"messages/{channel.value}/{name}.{DEFAULT_LANGUAGE}.{ext}.j2")
