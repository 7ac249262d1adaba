"""Filling a canned response in: only the named placeholders, by plain substitution (no format specs, no
attribute access, so a template can never reach anything but these four strings)."""

from __future__ import annotations

import re
from collections.abc import Mapping

PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
VARIABLES = frozenset({"contact_name", "reference", "agent_name", "city_name"})
_DANGLING = re.compile(r"[ \t]+([,.!?])")  # "Hello {contact_name}," with no name known: "Hello,"


class UnknownPlaceholder(ValueError):
    pass


def check(body: str) -> None:
    """Refuse a template with a placeholder we cannot fill (a typo would otherwise reach a resident)."""
    unknown = sorted({name for name in PLACEHOLDER.findall(body) if name not in VARIABLES})
    if unknown:
        allowed = ", ".join("{" + v + "}" for v in sorted(VARIABLES))
        raise UnknownPlaceholder(f"unknown placeholder(s) {', '.join(unknown)}; use {allowed}")


def render(body: str, values: Mapping[str, str | None]) -> str:
    filled = PLACEHOLDER.sub(lambda m: values.get(m.group(1)) or "", body)
    return _DANGLING.sub(r"\1", filled)
