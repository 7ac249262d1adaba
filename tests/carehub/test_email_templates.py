"""Email acknowledgement and reply templates: golden renderings, escaping, CASL footer, language fallback.

Regenerate the golden files after an intended template change with CAREHUB_UPDATE_GOLDEN=1, then review the diff.
"""

from __future__ import annotations

import os
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from carehub.messaging.templates import MessageTemplates, default_templates_dir

GOLDEN = Path(__file__).parent / "golden" / "email"
UPDATE_GOLDEN = os.environ.get("CAREHUB_UPDATE_GOLDEN") == "1"
BODY = (
    'Thank you for your report.\nA crew will visit <script>alert("x")</script> & "quotes".'
    "\n\nThe work should take one week."
)
IDENTITY = ("City of Pickering", "One The Esplanade, Pickering, ON L1V 6K7", "905.683.7575", "https://www.pickering.ca")
ACK_CONTEXT: dict[str, Any] = {
    "city_name": IDENTITY[0],
    "reference": "PKR-000123",
    "contact_name": "Jane Doe",
    "sender_name": "City of Pickering Customer Care",
    "city_postal_address": IDENTITY[1],
    "city_phone": IDENTITY[2],
    "city_website": IDENTITY[3],
    "status_link": "https://care.pickering.ca/s/Qm9uam91ciBQaWNrZXJp",
}
REPLY_CONTEXT: dict[str, Any] = {**ACK_CONTEXT, "body": BODY, "agent_name": "Sam Lee"}
CONTEXTS = {"ack": ACK_CONTEXT, "reply": REPLY_CONTEXT}
VOID_ELEMENTS = frozenset({"br", "hr", "meta", "link", "img", "input"})


class _Document(HTMLParser):
    """Records what the tests check: tags balance, <html> attributes, <title>, each <p>'s text, all text in order."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.html_attrs: dict[str, str | None] = {}
        self.title = ""
        self.paragraphs: list[str] = []
        self.texts: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "html":
            self.html_attrs = dict(attrs)
        if tag == "p":
            self.paragraphs.append("")
        if tag not in VOID_ELEMENTS:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open, f"</{tag}> closes nothing"
        assert self.open.pop() == tag, f"</{tag}> closes another element"

    def handle_data(self, data: str) -> None:
        if "title" in self.open:
            self.title += data
        if "p" in self.open:
            self.paragraphs[-1] += data
        if data.strip():
            self.texts.append(data.strip())


@pytest.fixture(scope="module")
def templates() -> MessageTemplates:
    return MessageTemplates(default_templates_dir())


@pytest.mark.parametrize("name", ["ack", "reply"])
@pytest.mark.parametrize("language", ["en", "fr"])
def test_email_renders_as_golden_files(templates: MessageTemplates, name: str, language: str) -> None:
    parts = dict(zip(("txt", "html"), templates.render_email(name, language, **CONTEXTS[name]), strict=True))
    for ext, rendered in parts.items():
        golden = GOLDEN / f"{name}.{language}.{ext}"
        if UPDATE_GOLDEN:
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(rendered + "\n", encoding="utf-8")
        assert rendered + "\n" == golden.read_text(encoding="utf-8"), f"{golden.name} differs; see module docstring"


@pytest.mark.parametrize("language", ["en", "fr"])
def test_reply_html_escapes_the_agents_text_and_keeps_its_paragraphs(
    templates: MessageTemplates, language: str
) -> None:
    text, html = templates.render_email("reply", language, **REPLY_CONTEXT)

    assert "<script" not in html
    assert "&lt;script&gt;" in html
    assert BODY in text  # the text part is plain text: nothing to escape
    assert [p for p in _Document(html).paragraphs if "Thank you for your report." in p or "one week" in p] == [
        'Thank you for your report.\nA crew will visit <script>alert("x")</script> & "quotes".',
        "The work should take one week.",
    ]


@pytest.mark.parametrize("name", ["ack", "reply"])
@pytest.mark.parametrize("language", ["en", "fr"])
def test_both_parts_end_with_the_casl_sender_identity(templates: MessageTemplates, name: str, language: str) -> None:
    text, html = templates.render_email(name, language, **CONTEXTS[name])

    for last_lines in (text.splitlines()[-4:], _Document(html).texts[-4:]):
        assert len(last_lines) == 4
        for line, identity in zip(last_lines, IDENTITY, strict=True):
            assert identity in line
    assert "unsubscribe" not in (text + html).lower()


@pytest.mark.parametrize("name", ["ack", "reply"])
def test_unknown_language_falls_back_to_english(templates: MessageTemplates, name: str) -> None:
    assert templates.render_email(name, "de", **CONTEXTS[name]) == templates.render_email(name, "en", **CONTEXTS[name])


def test_a_language_missing_one_part_falls_back_to_english_for_both(tmp_path: Path) -> None:
    email = tmp_path / "messages" / "email"
    email.mkdir(parents=True)
    for filename, content in {"ack.en.txt.j2": "en", "ack.en.html.j2": "<p>en</p>", "ack.fr.txt.j2": "fr"}.items():
        (email / filename).write_text(content, encoding="utf-8")

    assert MessageTemplates(tmp_path).render_email("ack", "fr") == ("en", "<p>en</p>")


@pytest.mark.parametrize("name", ["ack", "reply"])
@pytest.mark.parametrize("language", ["en", "fr"])
def test_missing_contact_and_agent_names_leave_a_plain_greeting(
    templates: MessageTemplates, name: str, language: str
) -> None:
    text, html = templates.render_email(name, language, **{**CONTEXTS[name], "contact_name": None, "agent_name": None})

    greeting = {"en": "Hello,", "fr": "Bonjour,"}[language]
    assert text.startswith(greeting + "\n")
    assert _Document(html).paragraphs[0] == greeting
    assert "None" not in text + html


def test_every_email_template_has_text_and_html_in_every_language() -> None:
    found: defaultdict[str, set[tuple[str, str]]] = defaultdict(set)
    for path in (default_templates_dir() / "messages" / "email").glob("*.j2"):
        if not path.name.startswith("_"):  # partials and the layout
            name, language, ext, _ = path.name.split(".")
            found[name].add((language, ext))

    languages = {language for variants in found.values() for language, _ in variants}
    assert set(found) >= {"ack", "reply"}
    assert languages >= {"en", "fr"}
    for name, variants in found.items():
        assert variants == {(language, ext) for language in languages for ext in ("txt", "html")}, name


@pytest.mark.parametrize("name", ["ack", "reply"])
@pytest.mark.parametrize("language", ["en", "fr"])
def test_html_is_well_formed_and_declares_its_language(templates: MessageTemplates, name: str, language: str) -> None:
    html = templates.render_email(name, language, **CONTEXTS[name])[1]
    document = _Document(html)

    assert html.startswith("<!DOCTYPE html>")
    assert document.open == []
    assert document.html_attrs.get("lang") == language
    assert document.title.strip()
    assert "<img" not in html
