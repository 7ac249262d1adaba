"""Chat fixtures: a hub on a real port whose chat is always staffed (unless a test says otherwise), and an agent."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from carehub.settings import Settings
from tests.support.live import LiveHub, live_hub

ALWAYS_OPEN = "mon-sun 00:00-24:00"


def chat_settings(settings: Settings, **overrides: object) -> Settings:
    values: dict[str, object] = {"chat_hours": ALWAYS_OPEN, "chat_require_agent_online": False, **overrides}
    return settings.model_copy(update=values)


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[LiveHub]:
    async with live_hub(chat_settings(settings)) as hub:
        yield hub


@pytest.fixture
async def agent_token(live: LiveHub) -> str:
    return await live.agent_token()
