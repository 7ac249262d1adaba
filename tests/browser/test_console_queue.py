"""The agent console in Debian's Chromium: an agent signs in, sees a resident's text arrive in the queue live (no
reload), opens it and claims it by keyboard shortcuts, answers with a canned response (delivered through the fake
Twilio API) and resolves it; axe-core finds no WCAG 2.1 A/AA violation on the queue, ticket and settings pages.

With CAREHUB_SCREENSHOTS=<folder>, the queue and ticket pages are also saved there as PNGs (docs/ keeps them)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import insert

from carehub.agents import repository as agents
from carehub.clock import utcnow
from carehub.models import CannedResponse
from carehub.settings import Settings
from tests.browser.accessibility import assert_accessible
from tests.fakes.twilio_api import FakeTwilioApi
from tests.support.console import PASSWORD, agent_with_password
from tests.support.live import LiveHub, live_hub
from tests.support.twilio import text_hub

RESIDENT = "+19055550142"
REPLY = "Thank you for reporting this (PKR-000001). A crew is on the way."
CANNED = CannedResponse.__table__  # type: ignore[attr-defined]


async def sign_in(live: LiveHub, page: Page, email: str) -> None:
    await agent_with_password(live, email)
    await page.goto(f"{live.url}/console/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_label("Password").press("Enter")
    await expect(page).to_have_url(f"{live.url}/console")


async def screenshot(page: Page, name: str) -> None:
    folder = os.environ.get("CAREHUB_SCREENSHOTS")
    if folder:
        await page.screenshot(path=str(Path(folder) / name), full_page=True)  # Playwright makes the folder


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[LiveHub]:
    """Without round-robin, so the agent claims the ticket herself (tests/carehub/test_round_robin.py covers it)."""
    async with live_hub(settings.model_copy(update={"auto_assign": False})) as live:
        yield live


async def test_an_agent_works_a_text_from_arrival_to_resolved(
    live: LiveHub, page: Page, fake_twilio: FakeTwilioApi
) -> None:
    await sign_in(live, page, "ana@city.test")
    async with live.runtime.transaction() as tx:
        ana = await agents.agent_by_email(tx.conn, "ana@city.test")
        assert ana is not None
        await tx.conn.execute(
            insert(CANNED).values(
                title="Crew on the way",
                language="en",
                team=None,
                body="Thank you for reporting this ({reference}). A crew is on the way.",
                created_by=ana.id,
                created_at=utcnow(),
                updated_at=utcnow(),
            )
        )
    await expect(page.get_by_role("heading", name="Queue")).to_be_visible()
    await expect(page.get_by_text("No tickets match these filters.")).to_be_visible()
    await assert_accessible(page)

    # A resident texts the city while the queue is open: the row appears without a reload.
    response = await text_hub(live.client, RESIDENT, "Water is leaking from the hydrant on Liverpool Rd")
    assert response.status_code == 200, response.text
    row = page.get_by_role("row", name="PKR-000001")
    await expect(row).to_be_visible()
    await expect(row).to_contain_text("Water is leaking from the hydrant")
    await expect(row).to_contain_text("Unassigned")
    await expect(page.locator("#live")).to_have_text("New text message on PKR-000001.")
    await assert_accessible(page)
    await screenshot(page, "console-queue.png")

    # Keyboard first: "?" lists the shortcuts, "j" selects the first ticket, Enter opens it, "a" claims it.
    await page.keyboard.press("?")
    await expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    await page.keyboard.press("Escape")
    await page.keyboard.press("j")
    await expect(row.get_by_role("link", name="PKR-000001")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("PKR-000001")
    await assert_accessible(page)

    await page.keyboard.press("a")
    await expect(page.get_by_role("status").filter(has_text="assigned to you")).to_be_visible()

    await page.get_by_label("Canned response", exact=True).select_option(label="Crew on the way (en)")
    await page.get_by_role("button", name="Insert").click()
    await expect(page.get_by_label("Message")).to_have_value(REPLY)
    await page.get_by_role("button", name="Send reply").click()
    await expect(page.get_by_text("Reply sent.")).to_be_visible()
    sent = await fake_twilio.wait_for(2)  # the acknowledgement, then the reply
    assert sent[1].to == RESIDENT
    assert sent[1].body == REPLY
    await expect(page.locator("#conversation")).to_contain_text("A crew is on the way")
    await screenshot(page, "console-ticket.png")

    await page.get_by_label("Status").select_option("resolved")
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.get_by_text("Changes saved.")).to_be_visible()
    await expect(page.locator(".facts")).to_contain_text("Resolved")

    await page.get_by_role("link", name="Settings").click()
    await expect(page.get_by_role("heading", name="Settings")).to_be_visible()
    await assert_accessible(page)
