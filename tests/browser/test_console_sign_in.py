"""The console's sign-in in Debian's Chromium: by keyboard alone, with a wrong password first; axe-core finds no
WCAG 2.1 A/AA violation on the sign-in page (with its error shown) or the console home."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.browser.accessibility import assert_accessible
from tests.support.console import PASSWORD, agent_with_password
from tests.support.live import LiveHub


async def test_an_agent_signs_in_by_keyboard_and_out_again(live: LiveHub, page: Page) -> None:
    await agent_with_password(live, "ana@city.test")

    await page.goto(f"{live.url}/console")  # not signed in: sent to the sign-in page
    await expect(page).to_have_url(f"{live.url}/console/login")
    await expect(page.get_by_label("Email")).to_be_focused()
    await assert_accessible(page)

    await page.keyboard.type("ana@city.test")
    await page.keyboard.press("Tab")
    await page.keyboard.type("a wrong password entirely")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("alert")).to_have_text("That email and password do not match an active account.")
    await expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    await assert_accessible(page)

    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_label("Password").press("Enter")
    await expect(page).to_have_url(f"{live.url}/console")
    await expect(page.get_by_text("Signed in as agent")).to_be_visible()
    await assert_accessible(page)

    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(f"{live.url}/console/login")
    await page.goto(f"{live.url}/console")
    await expect(page).to_have_url(f"{live.url}/console/login")
