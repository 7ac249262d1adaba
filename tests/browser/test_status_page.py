"""The status page in Debian's Chromium: read and answered by keyboard alone (an empty message first), in English
and French, and the page a dead link gets; axe-core finds no WCAG 2.1 A/AA violation on any of them, and the page
reflows without sideways scrolling at 320 CSS pixels (what 400% zoom leaves of a 1280-pixel window)."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from carehub.status import links
from tests.browser.accessibility import assert_accessible
from tests.fakes.twilio_api import FakeTwilioApi
from tests.support.live import LiveHub
from tests.support.twilio import text_hub

LINK = re.compile(r"/s/[A-Za-z0-9_-]{22}")


async def status_path(live: LiveHub, fake_twilio: FakeTwilioApi) -> str:
    await text_hub(live.client, "+19055550123", "The streetlight outside 1867 Valley Farm Rd is out")
    [ack] = await fake_twilio.wait_for(1)
    found = LINK.search(ack.body or "")
    assert found is not None
    return found.group(0)


async def test_a_resident_reads_the_page_and_adds_a_message_by_keyboard(
    live: LiveHub, fake_twilio: FakeTwilioApi, page: Page
) -> None:
    path = await status_path(live, fake_twilio)
    await page.goto(f"{live.url}{path}")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your request PKR-000001")
    await expect(page.get_by_text("We have your request and will look at it soon.")).to_be_visible()
    await assert_accessible(page)

    await page.get_by_role("button", name="Send my message").click()  # nothing written
    await expect(page.get_by_role("alert")).to_have_text("Error: Write your message before sending it.")
    await assert_accessible(page)

    await page.get_by_label("Your message").focus()
    await page.keyboard.type("It flickers on and off at night.")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_have_text(
        "Thank you. We have your message and it is now part of your request."
    )
    await expect(page.get_by_text("It flickers on and off at night.")).to_be_visible()
    await assert_accessible(page)


async def test_the_french_page_and_the_dead_link_page_are_accessible(
    live: LiveHub, fake_twilio: FakeTwilioApi, page: Page
) -> None:
    path = await status_path(live, fake_twilio)
    await page.goto(f"{live.url}{path}?lang=fr")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Votre demande PKR-000001")
    await expect(page.get_by_role("link", name="English")).to_be_visible()
    await assert_accessible(page)

    dead = f"{live.url}/s/{links.new_token()}"
    await page.goto(dead)  # the browser asks for English (en-CA)
    await expect(page.get_by_role("heading", level=1)).to_have_text("This link does not work")
    await assert_accessible(page)
    await page.goto(f"{dead}?lang=fr")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Ce lien ne fonctionne pas")
    await assert_accessible(page)


async def test_the_page_reflows_at_320_css_pixels(live: LiveHub, fake_twilio: FakeTwilioApi, page: Page) -> None:
    path = await status_path(live, fake_twilio)
    await page.set_viewport_size({"width": 320, "height": 640})
    await page.goto(f"{live.url}{path}")
    await expect(page.get_by_role("button", name="Send my message")).to_be_visible()

    overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")

    assert overflow <= 0
    await assert_accessible(page)
