"""The help centre's console pages in Debian's Chromium: a supervisor signs in, finds what residents searched for
without a good answer, writes an article by keyboard, previews it, is told what to fix, saves it and publishes it;
axe-core finds no WCAG 2.1 A/AA violation on the list, the form with its errors and preview, or the edit page."""

from __future__ import annotations

from playwright.async_api import Page, expect

from carehub.clock import utcnow
from carehub.help import service
from carehub.models import Role
from tests.browser.accessibility import assert_accessible
from tests.browser.test_console_queue import screenshot
from tests.support.console import PASSWORD, agent_with_password
from tests.support.live import LiveHub


async def sign_in_as_supervisor(live: LiveHub, page: Page, email: str) -> None:
    await agent_with_password(live, email, role=Role.SUPERVISOR)
    await page.goto(f"{live.url}/console/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_label("Password").press("Enter")
    await expect(page).to_have_url(f"{live.url}/console")


async def test_a_supervisor_sees_what_residents_missed_and_writes_the_answer(live: LiveHub, page: Page) -> None:
    await service.seed(live.runtime.engine, service.load_drafts(service.EXAMPLES), utcnow())
    assert (await live.client.get("/help/search", params={"q": "rent a canoe at the marina"})).status_code == 200
    await sign_in_as_supervisor(live, page, "sam@city.test")

    await page.get_by_role("link", name="Help articles").click()
    await expect(page.get_by_role("heading", name="Help articles", level=1)).to_be_visible()
    await expect(page.get_by_role("row", name="rent a canoe at the marina")).to_contain_text("1")
    await expect(page.get_by_role("link", name="Help articles")).to_have_attribute("aria-current", "page")
    await assert_accessible(page)
    await screenshot(page, "help-articles.png")

    await page.get_by_role("link", name="New article").click()
    await expect(page.get_by_role("heading", name="New help article", level=1)).to_be_visible()
    await page.get_by_label("Key", exact=True).fill("canoe-rental")
    await page.get_by_label("Title", exact=True).fill("C")  # too short: the form says so next to the field
    await page.get_by_label("Topic", exact=True).fill("parks")
    await page.get_by_label("Body (Markdown)").fill("## Where\n\nCanoes are rented at the **marina** in summer.")
    await page.get_by_role("button", name="Save draft").click()
    await expect(page.get_by_role("heading", name="There is a problem")).to_be_visible()
    title = page.get_by_label("Title", exact=True)
    await expect(title).to_have_attribute("aria-invalid", "true")
    await expect(title).to_have_accessible_description("Title: String should have at least 3 characters")
    await expect(page.get_by_label("Body (Markdown)")).to_have_value(
        "## Where\n\nCanoes are rented at the **marina** in summer."
    )
    await expect(page.locator(".article-preview strong")).to_have_text("marina")
    await assert_accessible(page)

    await title.fill("Rent a canoe at the marina")
    await page.get_by_role("button", name="Preview").press("Enter")
    await expect(page.locator(".article-preview h3")).to_have_text("Rent a canoe at the marina")
    await page.get_by_role("button", name="Save draft").click()
    await expect(page.get_by_role("status").filter(has_text="Draft saved.")).to_be_visible()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Edit: Rent a canoe at the marina")
    await expect(page.get_by_label("Key", exact=True)).to_have_attribute("readonly", "")
    await assert_accessible(page)
    await screenshot(page, "help-article.png")

    await page.get_by_role("button", name="Publish").click()
    await expect(page.get_by_role("status").filter(has_text="Published")).to_be_visible()
    await expect(page.get_by_role("link", name="Open the public page")).to_be_visible()
    await page.get_by_role("link", name="Back to the help articles").click()
    await expect(page.get_by_role("row", name="canoe-rental")).to_contain_text("Published")
    await assert_accessible(page)
