"""The survey page and the supervisor page in Debian's Chromium: the survey answered by keyboard alone (with a
missing rating first), and axe-core finds no WCAG 2.1 A/AA violation on the question, its error, the thanks page,
or the supervisor overview."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.async_api import Page, expect

from carehub.agents import repository as agents
from carehub.agents import sessions
from carehub.agents.auth import SESSION_COOKIE
from carehub.clock import utcnow
from carehub.models import Role
from tests.browser.accessibility import assert_accessible
from tests.fakes.twilio_api import FakeTwilioApi
from tests.support.live import LiveHub
from tests.support.twilio import text_hub

LINK = re.compile(r"/csat/([A-Za-z0-9_-]{43})")


async def survey_key(live: LiveHub, fake_twilio: FakeTwilioApi) -> str:
    await text_hub(live.client, "+19055550123", "The water is off on Rougemount Dr")
    token = await live.agent_token()
    headers = {"Authorization": f"Bearer {token}"}
    replied = await live.client.post("/api/v1/tickets/PKR-000001/replies", json={"body": "Fixed."}, headers=headers)
    assert replied.status_code == 201
    resolved = await live.client.patch("/api/v1/tickets/PKR-000001", json={"status": "resolved"}, headers=headers)
    assert resolved.status_code == 200
    sent = await fake_twilio.wait_for(3)
    found = LINK.search(sent[2].body or "")
    assert found is not None
    return found.group(1)


async def test_a_resident_answers_the_survey_by_keyboard(live: LiveHub, fake_twilio: FakeTwilioApi, page: Page) -> None:
    key = await survey_key(live, fake_twilio)
    await page.goto(f"{live.url}/csat/{key}")
    await expect(page.get_by_role("group", name="How did we do with PKR-000001?")).to_be_visible()
    await assert_accessible(page)

    await page.get_by_role("button", name="Send my answer").click()  # no rating chosen
    await expect(page.get_by_role("alert")).to_have_text("Choose a rating from 1 (poor) to 5 (excellent).")
    await assert_accessible(page)

    await page.get_by_label("4: Very good").focus()
    await page.keyboard.press("Space")
    await page.keyboard.press("ArrowDown")  # radios move with the arrow keys: now 5
    await expect(page.get_by_label("5: Excellent")).to_be_checked()
    await page.keyboard.press("Tab")
    await page.keyboard.type("Quick and kind.")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Thank you")
    await expect(page.get_by_text("Your rating: 5 out of 5.")).to_be_visible()
    await assert_accessible(page)


async def test_the_supervisor_page_is_accessible(live: LiveHub, page: Page) -> None:
    await live.agent_token(Role.SUPERVISOR, "sup@city.test")
    async with live.runtime.transaction() as tx:
        row = await agents.agent_by_email(tx.conn, "sup@city.test")
        assert row is not None
        token, _ = await sessions.start(
            tx.conn, row.id, ttl=timedelta(hours=1), now=utcnow(), ip="127.0.0.1", user_agent="test"
        )
    await page.context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": live.url}])
    await page.goto(f"{live.url}/console/supervisor")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Supervisor overview")
    await expect(page.get_by_role("table", name="Active tickets by team and status")).to_be_visible()
    await assert_accessible(page)
