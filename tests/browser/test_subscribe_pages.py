"""The alert subscription pages in Debian's Chromium: a resident subscribes by keyboard alone (Tab, Space, Enter),
types the code texted through the fake Twilio, sees the confirmation and unsubscribes; axe-core finds no WCAG 2.1
A/AA violation on the form (English, French, with errors), the code page, the subscribed page or the unsubscribe
pages."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from tests.browser.accessibility import assert_accessible
from tests.fakes.twilio_api import FakeTwilioApi
from tests.support.live import LiveHub

CODE = re.compile(r"\b(\d{6})\b")


async def tab_to(page: Page, selector: str) -> None:
    """One Tab, which must land on this element."""
    await page.keyboard.press("Tab")
    await expect(page.locator(selector)).to_be_focused()


async def test_a_resident_subscribes_by_keyboard_and_confirms_the_texted_code(
    live: LiveHub, fake_twilio: FakeTwilioApi, page: Page
) -> None:
    await page.goto(f"{live.url}/alerts/subscribe")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Get city alerts")
    await assert_accessible(page)

    await tab_to(page, "a.switch")
    await tab_to(page, "#topic-emergencies")
    await tab_to(page, "#topic-water")
    await tab_to(page, "#topic-snow")
    await page.keyboard.press("Space")
    await tab_to(page, "#topic-waste")
    await tab_to(page, "#topic-roads")
    await tab_to(page, "#postal_code")
    await tab_to(page, "#street_address")
    await tab_to(page, "#phone")
    await page.keyboard.type("905 555 0123")
    await tab_to(page, "#email")
    await tab_to(page, "#language-en")  # a radio group is one stop, on the chosen language
    await tab_to(page, "#consent")
    await page.keyboard.press("Space")
    await tab_to(page, "button[type=submit]")
    await page.keyboard.press("Enter")

    await expect(page.get_by_role("heading", level=1)).to_have_text("Enter the code we texted you")
    await expect(page.get_by_label("6-digit code")).to_be_focused()
    await assert_accessible(page)
    [text] = await fake_twilio.wait_for(1)
    found = CODE.search(text.body or "")
    assert found is not None, text.body

    await page.keyboard.type("000000" if found.group(1) != "000000" else "111111")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("alert")).to_contain_text("That code is not right")
    await assert_accessible(page)

    await page.get_by_label("6-digit code").focus()
    await page.keyboard.type(found.group(1))
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_have_text("You're subscribed")
    await expect(page.get_by_role("listitem").filter(has_text="Snow clearing").first).to_be_visible()
    await assert_accessible(page)

    await page.get_by_role("link", name="Unsubscribe from Snow clearing").focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Unsubscribe")
    await expect(page.get_by_text("You will stop getting Snow clearing alerts by text message.")).to_be_visible()
    await assert_accessible(page)

    await page.get_by_role("button", name="Unsubscribe from Snow clearing").focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_have_text("You're unsubscribed")
    await assert_accessible(page)


async def test_the_form_is_accessible_in_french_and_with_its_errors(live: LiveHub, page: Page) -> None:
    await page.goto(f"{live.url}/alerts/subscribe")
    await page.get_by_role("link", name="Français").click()
    await expect(page.locator("html")).to_have_attribute("lang", "fr")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Recevoir les alertes de la Ville")
    await assert_accessible(page)

    await page.get_by_role("button", name="M'abonner").click()
    summary = page.get_by_role("alert")
    await expect(summary).to_contain_text("Il y a un problème")
    await expect(summary).to_be_focused()  # the summary takes focus on load, so it is read first
    await assert_accessible(page)
    await summary.get_by_role("link", name="Cochez la case pour accepter de recevoir des alertes.").click()
    await expect(page.locator("#consent")).to_be_in_viewport()

    await page.get_by_role("link", name="English").click()
    await page.get_by_role("button", name="Subscribe").click()
    await expect(page.get_by_role("alert")).to_contain_text("There is a problem")
    await assert_accessible(page)
