"""The composer's figures for an alert, stored or not yet: per language the SMS exactly as it will be sent with its
encoding and segments, reading grades, the audience per channel, total SMS segments, and the time to deliver at
the senders' rates."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.alerts import pacing, texts
from carehub.alerts import repository as alerts
from carehub.alerts.readability import GRADE_WARNING, reading_grade
from carehub.alerts.service import needs_approval, placeholders
from carehub.models import AlertKind
from carehub.settings import Settings
from channels.base import ChannelKind
from channels.sms.segments import sms_segments


@dataclass(frozen=True)
class UnsavedAlert:
    """A draft shaped like a stored alert, so the preview counts its audience with the same queries."""

    topic_id: int | None
    area_ids: list[int]
    channels: list[str]
    content: dict[str, dict[str, str]]
    emergency: bool
    id: int = 0
    parent_id: int | None = None
    kind: str = AlertKind.ALERT.value


def language_preview(settings: Settings, kind: AlertKind, content: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Per language: the SMS exactly as sent with its encoding and segments, and the reading grade of each text."""
    shown: dict[str, Any] = {}
    for language, parts in content.items():
        entry: dict[str, Any] = {}
        if "sms" in parts:
            text = texts.sms_text(settings, content, language, kind)
            info = sms_segments(text)
            grade = reading_grade(parts["sms"], language)
            entry["sms"] = {
                "text": text,
                "encoding": info.encoding,
                "characters": info.units,
                "segments": info.segments,
                "characters_per_segment": info.per_segment,
                "non_gsm_characters": list(info.non_gsm),
                "reading_grade": grade,
                "reading_grade_warning": grade is not None and grade > GRADE_WARNING,
            }
        if "email_body" in parts:
            grade = reading_grade(f"{parts['email_subject']}.\n{parts['email_body']}", language)
            entry["email"] = {
                "subject": parts["email_subject"],
                "reading_grade": grade,
                "reading_grade_warning": grade is not None and grade > GRADE_WARNING,
            }
        shown[language] = entry
    return shown


async def preview(conn: AsyncConnection, settings: Settings, alert: Any, now: datetime) -> dict[str, Any]:
    """What the composer shows for an alert: per-language texts, audience per channel, total SMS segments, and
    the estimated time to deliver at the configured rates (after what is already waiting on each sender).
    `alert` is a stored alert or an unsaved draft with the same attributes."""
    kind = AlertKind(alert.kind)
    languages = language_preview(settings, kind, alert.content)
    audience = await alerts.audience_size(conn, alert)
    by_language = await alerts.audience_languages(conn, alert)
    segments_each = {lang: entry["sms"]["segments"] for lang, entry in languages.items() if "sms" in entry}
    total_segments = sum(
        n * segments_each.get(lang if lang in segments_each else "en", 0)
        for (channel, lang), n in by_language.items()
        if channel == ChannelKind.SMS.value
    )
    estimate: dict[str, Any] = {}
    for channel, count in audience.items():
        rate = settings.send_rate(channel)
        start = await pacing.next_free(conn, ChannelKind(channel), now)
        seconds = (start - now).total_seconds() + count / rate
        estimate[channel] = {
            "recipients": count,
            "rate_per_second": rate,
            "seconds": math.ceil(seconds),
            "done_by": (now + timedelta(seconds=seconds)).isoformat(),
        }
    return {
        "languages": languages,
        "placeholders": placeholders(alert.content),
        "audience": audience,
        "sms_segments_total": total_segments,
        "estimate": estimate,
        "needs_approval": needs_approval(settings, alert),
    }
