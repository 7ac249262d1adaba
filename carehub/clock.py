"""The one source of 'now': timezone-aware UTC, so stored timestamps never carry local time."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
