"""The alert composer's form: its fields read back from a post (kept as typed, to show again after an error), turned
into the service's AlertDraft, problems turned into an error summary that links to the field concerned, and the
live preview computed from whatever has been typed so far."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.datastructures import FormData

from carehub.alerts import preview as figures
from carehub.alerts import service
from carehub.alerts.service import ALERT_CHANNELS, AlertDraft, ChannelText
from carehub.alerts.texts import LANGUAGES
from carehub.models import AlertKind
from carehub.problems import Problem
from carehub.settings import Settings

ALL_RESIDENTS = "all"
PARTS = ("sms", "email_subject", "email_body")
LANGUAGE_NAMES = {"en": "English", "fr": "French"}
Summary = list[tuple[str, str]]  # (id of the field to fix, what is wrong)


class FormProblems(Exception):
    """The form cannot become an alert: what to fix, each with the field it is about."""

    def __init__(self, summary: Summary, status: int = 422) -> None:
        super().__init__("; ".join(message for _, message in summary))
        self.summary = summary
        self.status = status


def field_id(language: str, part: str) -> str:
    return f"{language}-{part.replace('_', '-')}"


def _text(form: FormData, name: str, limit: int = 20_000) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def _texts(form: FormData, name: str) -> list[str]:
    return [v[:100] for v in form.getlist(name) if isinstance(v, str)]


@dataclass
class ComposerValues:
    """The composer's fields as typed (a new form: the defaults)."""

    idempotency_key: str
    title: str = ""
    audience: str = ""  # a topic slug, ALL_RESIDENTS, or "" (not chosen yet)
    areas: list[str] = field(default_factory=list)
    emergency: bool = False
    channels: list[str] = field(default_factory=lambda: list(ALERT_CHANNELS))
    when: str = "now"  # "now" or "later"
    send_at: str = ""  # <input type=datetime-local>: Toronto time, no offset
    texts: dict[str, dict[str, str]] = field(
        default_factory=lambda: {lang: dict.fromkeys(PARTS, "") for lang in LANGUAGES}
    )

    @classmethod
    def from_form(cls, form: FormData) -> ComposerValues:
        return cls(
            idempotency_key=_text(form, "idempotency_key", 128),
            title=_text(form, "title", 500),
            audience=_text(form, "audience", 100),
            areas=_texts(form, "areas"),
            emergency=bool(_text(form, "emergency")),
            channels=[c for c in _texts(form, "channels") if c in ALERT_CHANNELS],
            when="later" if _text(form, "when") == "later" else "now",
            send_at=_text(form, "send_at", 40),
            texts={lang: {part: _text(form, f"{lang}_{part}") for part in PARTS} for lang in LANGUAGES},
        )

    @classmethod
    def from_template(cls, template: Any, idempotency_key: str) -> ComposerValues:
        """A new form filled in from an alert template (its [bracketed] parts still to replace)."""
        texts = {lang: {part: template.content.get(lang, {}).get(part, "") for part in PARTS} for lang in LANGUAGES}
        return cls(
            idempotency_key=idempotency_key,
            title=template.name,
            audience=template.topic or "",
            channels=[c for c in template.channels if c in ALERT_CHANNELS],
            texts=texts,
        )

    def languages_written(self) -> list[str]:
        """English always (it is required); another language once anything is typed in it."""
        return [lang for lang in LANGUAGES if lang == "en" or any(v.strip() for v in self.texts[lang].values())]

    def audience_fields(self) -> dict[str, Any]:
        everyone = self.audience == ALL_RESIDENTS
        return {
            "topic": None if everyone or not self.audience else self.audience,
            "all_residents": everyone,
            "areas": self.areas,
            "emergency": self.emergency,
            "channels": self.channels,
        }

    def to_draft(self, now: datetime) -> AlertDraft:
        """The AlertDraft this form describes; FormProblems for what the form itself can tell is missing."""
        problems: Summary = []
        if not self.title.strip():
            problems.append(("title", "Give the alert a title (staff see it; residents do not)."))
        if not self.audience:
            problems.append(("audience", "Choose who receives the alert: a topic, or all residents."))
        if not self.channels:
            problems.append(("channel-sms", "Choose at least one channel: text message, email or both."))
        if self.when == "later" and not self.send_at.strip():
            problems.append(("send-at", "Give the date and time to send at, or choose to send now."))
        if problems:
            raise FormProblems(problems)
        content = {
            lang: ChannelText(**{part: self.texts[lang][part] for part in PARTS}) for lang in self.languages_written()
        }
        try:
            draft = AlertDraft(
                title=self.title.strip(),
                content=content,
                send_at=self.send_at.strip() if self.when == "later" else None,
                **self.audience_fields(),
            )
        except ValidationError as error:
            raise FormProblems([_from_pydantic(e) for e in error.errors()]) from error
        if draft.send_at is not None and draft.send_at <= now:
            raise FormProblems([("send-at", "The time to send at has passed; choose a later time or send now.")])
        return draft


def _from_pydantic(error: Any) -> tuple[str, str]:
    location = [str(p) for p in error.get("loc", ())]
    message = str(error.get("msg", "is not valid"))
    if location[:1] == ["content"] and len(location) >= 3:
        lang, part = location[1], location[2]
        name = {"sms": "text message", "email_subject": "email subject", "email_body": "email body"}.get(part, part)
        return field_id(lang, part), f"{LANGUAGE_NAMES.get(lang, lang)} {name}: {message}"
    if location[:1] == ["send_at"]:
        return "send-at", f"Send at: {message}"
    if location[:1] == ["channels"]:
        return "channel-sms", f"Channels: {message}"
    if location[:1] == ["areas"]:
        return "areas", f"Areas: {message}"
    return (location[0] if location else "title"), f"{' '.join(location).capitalize() or 'Form'}: {message}"


_LANGUAGE_IN = re.compile(r"in '([a-z]{2})'")


def from_problem(problem: Problem) -> Summary:
    """The service's refusal, pointed at the field it is about (the message is the service's own)."""
    detail = problem.detail
    found = _LANGUAGE_IN.search(detail)
    lang = found.group(1) if found else "en"
    if "English text is required" in detail:
        target = field_id("en", "sms")
    elif "SMS text" in detail:
        target = field_id(lang, "sms")
    elif "email subject" in detail:
        target = field_id(lang, "email_subject")
    elif "topic" in detail:
        target = "audience"
    elif "area" in detail:
        target = "areas"
    elif "send_at" in detail:
        target = "send-at"
    else:
        target = "title"
    return [(target, detail)]


def _partial_content(values: ComposerValues) -> dict[str, dict[str, str]]:
    """What is typed so far, in the shape the service stores (an email only once it has a body)."""
    content: dict[str, dict[str, str]] = {}
    for lang in values.languages_written():
        typed = values.texts[lang]
        parts: dict[str, str] = {}
        if "sms" in values.channels and typed["sms"].strip():
            parts["sms"] = typed["sms"].strip()
        if "email" in values.channels and typed["email_body"].strip():
            parts["email_subject"] = typed["email_subject"].strip()
            parts["email_body"] = typed["email_body"].strip()
        if parts:
            content[lang] = parts
    return content


@dataclass(frozen=True)
class Preview:
    """figures.preview()'s figures (None until an audience is chosen) and what is still missing to show them."""

    figures: dict[str, Any] | None
    languages: dict[str, Any]
    notes: list[str]


async def preview(conn: AsyncConnection, settings: Settings, values: ComposerValues, now: datetime) -> Preview:
    content = _partial_content(values)
    notes: list[str] = []
    if "en" not in content:
        notes.append("Type the English text to see each message as residents will receive it.")
    left = service.placeholders(content)
    if left:
        notes.append(f"Replace the template's bracketed parts before you send: {', '.join(left)}.")
    try:
        audience = AlertDraft(title="preview", content={}, **values.audience_fields())
        if not values.audience:
            raise Problem(422, "Choose who receives the alert to see how many people it reaches.")
        topic_id, area_ids = await service.audience_ids(conn, audience)
    except ValidationError:
        notes.append("Choose at least one channel to see the audience.")
    except Problem as problem:
        notes.append(problem.detail)
    else:
        unsaved = figures.UnsavedAlert(topic_id, area_ids, list(values.channels), content, values.emergency)
        shown = await figures.preview(conn, settings, unsaved, now)
        return Preview(shown, shown["languages"], notes)
    languages = figures.language_preview(settings, AlertKind.ALERT, content)
    return Preview(None, languages, notes)
