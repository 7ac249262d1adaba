"""Browser fixtures: Debian's Chromium driven by Playwright against a real hub on a loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, ConsoleMessage, Error, Page, async_playwright

from carehub.settings import Settings
from tests.carehub.chat.conftest import chat_settings
from tests.support.live import LiveHub, live_hub

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def backend() -> str:
    """The widget does not care which store the hub uses: one backend keeps the browser tests quick."""
    return "sqlite"


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium: Playwright's own browser download does not work here. Missing is a failure, not a skip."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[LiveHub]:
    # Always staffed by the clock, so whether chat is offered depends only on an agent holding the live queue open.
    async with live_hub(chat_settings(settings, chat_require_agent_online=True)) as live:
        yield live


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh browser profile (empty localStorage) per test; any script error or CSP refusal fails the test."""
    context = await browser.new_context(
        viewport={"width": 1280, "height": 800}, locale="en-CA", timezone_id="America/Toronto"
    )
    context.set_default_timeout(10_000)
    page = await context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        url = message.location.get("url", "")
        if message.type != "error" or url.endswith("/favicon.ico"):  # the demo page has no icon
            return
        refused_form = url.endswith("/console/login") or any(
            part in url for part in ("/csat/", "/alerts/", "/console/help", "/s/")
        )
        if refused_form and message.text.startswith("Failed to load resource"):
            # A refused sign-in (401, 429), survey answer, alerts, help article or status page form (422), or a dead
            # status link (404), answers with a page; Chromium reports a load error.
            return
        problems.append(f"console: {message.text} ({url})")

    def on_page_error(error: Error) -> None:
        problems.append(f"page error: {error.message}")

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    yield page
    await context.close()
    assert not problems, "\n".join(problems)
