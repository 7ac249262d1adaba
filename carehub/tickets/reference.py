"""Human ticket references (PKR-000123): derived from the ticket id, so there is no second counter to keep."""

from __future__ import annotations

import re

_REFERENCE = re.compile(r"\b([A-Z]{2,6})-?(\d{1,12})\b", re.IGNORECASE)


def format_reference(prefix: str, ticket_id: int) -> str:
    return f"{prefix}-{ticket_id:06d}"


def parse_reference(prefix: str, text: str) -> int | None:
    """The ticket id in 'PKR-000123', 'pkr123' or a bare '123'; None if the text holds no reference of ours."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    for match in _REFERENCE.finditer(text):
        if match.group(1).upper() == prefix:
            return int(match.group(2))
    return None
