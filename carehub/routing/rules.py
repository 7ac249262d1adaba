"""Routing rules: their API shapes (validated), and which rule, if any, a newly arrived ticket matches.

A rule matches when every condition it sets holds (None: any); keywords match if any of them appears, as a whole
word and whatever its case, in the ticket's subject or first message. The first active match, by position, wins."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from pydantic import StringConstraints, field_validator
from sqlmodel import Field, SQLModel

from carehub.db import AnyRow
from carehub.models import Priority
from channels.base import ChannelKind as Channel

MAX_KEYWORDS = 50
MAX_LABELS = 10
Keyword = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=64)]


class _RuleFields(SQLModel):
    """Every field a rule has, all optional: what PATCH takes (an explicit null clears a condition)."""

    position: int | None = Field(default=None, ge=0, le=100_000)
    name: str | None = Field(default=None, min_length=1, max_length=100)
    keywords: list[Keyword] | None = Field(default=None, max_length=MAX_KEYWORDS)
    channel: Channel | None = None
    language: str | None = Field(default=None, min_length=2, max_length=8)
    contact_id: int | None = Field(default=None, ge=1)
    set_team: str | None = Field(default=None, min_length=1, max_length=64)
    set_priority: Priority | None = None
    add_labels: list[Label] | None = Field(default=None, max_length=MAX_LABELS)
    is_active: bool | None = None

    @field_validator("set_team")
    @classmethod
    def _team_lowercase(cls, value: str | None) -> str | None:
        return value.strip().lower() or None if value is not None else None

    @field_validator("language")
    @classmethod
    def _language_lowercase(cls, value: str | None) -> str | None:
        return value.strip().lower() if value is not None else None

    @field_validator("add_labels")
    @classmethod
    def _labels_once(cls, value: list[str] | None) -> list[str] | None:
        return list(dict.fromkeys(value)) if value is not None else None


class RoutingRuleUpdate(_RuleFields):
    pass


class RoutingRuleCreate(_RuleFields):
    name: str = Field(min_length=1, max_length=100)
    position: int = Field(default=0, ge=0, le=100_000)
    is_active: bool = True


class RoutingRulePublic(SQLModel):
    id: int
    position: int
    name: str
    keywords: list[str] | None
    channel: Channel | None
    language: str | None
    contact_id: int | None
    set_team: str | None
    set_priority: Priority | None
    add_labels: list[str] | None
    is_active: bool
    created_by: int
    created_at: datetime


def has_action(values: dict[str, object]) -> bool:
    return bool(values.get("set_team") or values.get("set_priority") or values.get("add_labels"))


@dataclass(frozen=True)
class Arrival:
    """What rules look at: the ticket as it arrived."""

    channel: str
    language: str
    contact_id: int
    subject: str | None
    first_message: str | None


def _keyword_pattern(keywords: Sequence[str]) -> re.Pattern[str]:
    # Whole words: not preceded or followed by a letter, digit or underscore (so "tree" misses "street").
    words = "|".join(re.escape(k) for k in sorted(keywords, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{words})(?!\w)", re.IGNORECASE)


def matches(rule: AnyRow, arrival: Arrival) -> bool:
    if rule.channel is not None and rule.channel != arrival.channel:
        return False
    if rule.language is not None and rule.language != arrival.language:
        return False
    if rule.contact_id is not None and rule.contact_id != arrival.contact_id:
        return False
    if rule.keywords:
        pattern = _keyword_pattern(rule.keywords)
        texts = (arrival.subject or "", arrival.first_message or "")
        return any(pattern.search(text) for text in texts)
    return True


def first_match(rules: Sequence[AnyRow], arrival: Arrival) -> AnyRow | None:
    """The first active rule, by position (then id), that the arrival matches."""
    ordered = sorted((r for r in rules if r.is_active), key=lambda r: (r.position, r.id))
    return next((r for r in ordered if matches(r, arrival)), None)
