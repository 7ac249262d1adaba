"""axe-core in the page under test: zero WCAG 2.1 A/AA violations, checked once animations have settled."""

from __future__ import annotations

from axe_playwright_python.async_playwright import Axe  # type: ignore[import-untyped]
from playwright.async_api import Page

AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    "resultTypes": ["violations"],
}


async def assert_accessible(page: Page) -> None:
    # Colours are only what they are once any fade-in has finished.
    await page.evaluate("Promise.all(document.getAnimations().map(a => a.finished))")
    results = await Axe().run(page, options=AXE_OPTIONS)
    assert results.violations_count == 0, results.generate_report()
