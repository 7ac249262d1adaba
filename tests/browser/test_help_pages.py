"""The help centre in Debian's Chromium: a resident searches in everyday words, opens the answer, says it did not
help and is shown how to reach a person, all by keyboard; axe-core finds no WCAG 2.1 A/AA violation on the home,
results, article, topic and thank-you pages, in English and French; and every page reflows without sideways
scrolling at 320 CSS pixels (what 400% zoom leaves of a 1280-pixel window) and at 200% zoom; and the chat widget
suggests answers as the first message is typed, while sending still reaches a person."""

from __future__ import annotations

from playwright.async_api import Page, expect

from carehub.clock import utcnow
from carehub.help import service
from tests.browser.accessibility import assert_accessible
from tests.browser.test_chat_widget import agent_headers, agent_online, open_widget
from tests.support.live import LiveHub


async def seeded(live: LiveHub) -> None:
    await service.seed(live.runtime.engine, service.load_drafts(service.EXAMPLES), utcnow())


async def test_a_resident_finds_an_answer_and_reaches_a_person_by_keyboard(live: LiveHub, page: Page) -> None:
    await seeded(live)
    await page.goto(f"{live.url}/help")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Help centre")
    await assert_accessible(page)

    await page.keyboard.press("Tab")  # the skip link comes first
    await expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
    await page.get_by_label("Search for an answer").fill("garbage wasn't picked up")
    await page.keyboard.press("Enter")
    first = page.locator(".cards a").first
    await expect(first).to_have_text("Missed waste collection")
    await assert_accessible(page)

    await first.focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Missed waste collection")
    await expect(page.get_by_text("Last reviewed:")).to_be_visible()
    await assert_accessible(page)

    await page.get_by_role("button", name="No").focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Thank you")
    await expect(page.get_by_role("link", name="Call 905-683-7575")).to_be_visible()
    await assert_accessible(page)


async def test_french_pages_and_a_topic_are_accessible(live: LiveHub, page: Page) -> None:
    await seeded(live)
    await page.goto(f"{live.url}/help?lang=fr")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Centre d'aide")
    await assert_accessible(page)
    await page.get_by_role("link", name="Ordures et recyclage").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Ordures et recyclage")
    await assert_accessible(page)
    await page.get_by_role("link", name="Collecte des déchets manquée").click()
    await expect(page.locator("html")).to_have_attribute("lang", "fr")
    await assert_accessible(page)
    await page.goto(f"{live.url}/help/search?q=llama+adoption")
    await expect(page.get_by_role("heading", level=1)).to_have_text("No answer found")
    await assert_accessible(page)


async def test_the_pages_reflow_at_320_css_pixels_and_200_percent_zoom(live: LiveHub, page: Page) -> None:
    await seeded(live)
    paths = ["/help", "/help/search?q=my+road+wasn%27t+plowed", "/help/snow-clearing-windrows", "/help/topics/roads"]
    for width, height in ((320, 640), (640, 400)):
        await page.set_viewport_size({"width": width, "height": height})
        for path in paths:
            await page.goto(f"{live.url}{path}")
            overflow = await page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at {width}px"


async def test_the_chat_widget_suggests_answers_while_the_first_message_is_typed(live: LiveHub, page: Page) -> None:
    await seeded(live)
    headers = await agent_headers(live)
    async with agent_online(live, headers):
        await page.goto(f"{live.url}/chat/demo")
        dialog = await open_widget(page)
        box = page.get_by_label("Your message")
        await box.press_sequentially("my garbage wasn't picked up this morning", delay=5)
        suggestion = dialog.get_by_role("link", name="Missed waste collection")
        await expect(suggestion).to_be_visible()
        await expect(suggestion).to_have_attribute("target", "_blank")
        await expect(dialog.get_by_text("These answers may help")).to_be_visible()
        await assert_accessible(page)

        await box.press("Enter")  # one keystroke still reaches a person
        await expect(dialog.get_by_text("These answers may help")).to_have_count(0)
        await expect(page.get_by_role("log").get_by_text("my garbage wasn't picked up this morning")).to_be_visible()
