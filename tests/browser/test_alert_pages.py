"""The alert pages in Debian's Chromium: a communications officer types an alert and watches the preview follow
(segments, encoding, reading grade), sends it, and sees the delivery report reach 'sent' without a reload (htmx
polling); axe-core finds no WCAG 2.1 A/AA violation on the list, the composer with its preview, or the report.

With CAREHUB_SCREENSHOTS=<folder>, the composer and the report are saved there as PNGs (docs/screenshots keeps them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from playwright.async_api import Page, expect

from carehub.agents import repository as agents
from carehub.agents import sessions
from carehub.agents.auth import SESSION_COOKIE
from carehub.clock import utcnow
from carehub.models import Role
from carehub.settings import Settings
from channels.base import ChannelKind
from tests.browser.accessibility import assert_accessible
from tests.browser.test_console_queue import screenshot
from tests.fakes.twilio_api import FakeTwilioApi
from tests.support.alerts import phone, subscribe
from tests.support.console import agent_with_password
from tests.support.live import LiveHub, live_hub

RESIDENTS = [phone(i) for i in range(6)]
ENGLISH = "Water main break on Kingston Rd. Boil water for one minute before you drink it."
FRENCH = "Bris de conduite sur le chemin Kingston. Faites bouillir l'eau, même filtrée."


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[LiveHub]:
    """Three texts a second, so the six deliveries take long enough to watch the report move."""
    fast_ticks = {"sms_mps": 3.0, "email_mps": 100.0, "alert_interval_seconds": 1}
    async with live_hub(settings.model_copy(update=fast_ticks)) as live:
        yield live


async def sign_in_as_communications(live: LiveHub, page: Page, email: str) -> None:
    """A console session for a communications officer, its cookie handed to the browser. (The sign-in form sends
    everyone to the queue, which answers communications staff with a 403 that would fail this test's page.)"""
    await agent_with_password(live, email, role=Role.COMMUNICATIONS)
    async with live.runtime.transaction() as tx:
        officer = await agents.agent_by_email(tx.conn, email)
        assert officer is not None
        token, _ = await sessions.start(
            tx.conn, officer.id, ttl=timedelta(hours=1), now=utcnow(), ip="127.0.0.1", user_agent="test"
        )
    await page.context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": live.url}])
    await page.goto(f"{live.url}/console/alerts")


async def test_an_officer_composes_previews_sends_and_watches_the_report(
    live: LiveHub, page: Page, fake_twilio: FakeTwilioApi
) -> None:
    await subscribe(live.runtime, ChannelKind.SMS, RESIDENTS[:4])
    await subscribe(live.runtime, ChannelKind.SMS, RESIDENTS[4:], language="fr")
    await sign_in_as_communications(live, page, "cam@city.test")
    await expect(page.get_by_role("heading", name="Alerts", level=1)).to_be_visible()
    await expect(page.get_by_text("No alerts yet.")).to_be_visible()
    await assert_accessible(page)

    await page.get_by_role("link", name="New alert").click()
    await expect(page.get_by_role("heading", name="New alert")).to_be_visible()
    await page.get_by_label("Title").fill("Water main break")
    await page.get_by_label("Who receives it").select_option(label="Subscribers to Water service")
    await page.get_by_label("Email", exact=True).uncheck()
    preview = page.locator("#preview")
    await page.locator("#en-sms").press_sequentially(ENGLISH, delay=5)
    await expect(preview).to_contain_text("1 segment")
    await expect(preview).to_contain_text("Reading grade (text)")
    await expect(preview).to_contain_text("6 recipients")
    await expect(preview).to_contain_text("Not needed")

    await page.locator("#fr-sms").press_sequentially(FRENCH, delay=5)
    french = preview.locator("section", has=page.locator("#preview-fr"))
    await expect(french).to_contain_text("UCS-2, because of “ê”")
    await expect(french).to_contain_text("3 segments (67 per segment)")
    await expect(preview).to_contain_text("SMS segments in all")
    await assert_accessible(page)
    await screenshot(page, "alert-composer.png")

    await page.get_by_role("button", name="Send alert").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Alert: Water main break")
    await expect(page.get_by_role("status").filter(has_text="Sending")).to_be_visible()
    await page.evaluate("window.stillThisPage = true")  # gone if anything reloads the page
    report = page.locator("#report")
    await expect(report).to_contain_text("Status: Sent", timeout=20_000)
    await expect(report).to_contain_text("6 of 6 (100%)")
    await expect(page.locator("#live")).to_contain_text("Alert sent")
    assert await page.evaluate("window.stillThisPage === true")
    sent = await fake_twilio.wait_for(6)
    assert sorted(m.to for m in sent) == sorted(RESIDENTS)
    await page.reload()  # the per-recipient detail is read (and audited) once per page view
    await expect(page.get_by_role("row", name=RESIDENTS[0])).to_be_visible()
    await assert_accessible(page)
    await screenshot(page, "alert-report.png")
