"""The resident's chat widget in a real browser against a real hub: keyboard use and accessibility (axe, WCAG 2.1
A/AA, also at 200 % zoom and 320 px), a conversation that survives a reload and a lost connection, French, the "not
available" handoff, ending a chat, a refused token, and the widget's size."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from playwright.async_api import Locator, Page, WebSocketRoute, expect

from tests.browser.accessibility import assert_accessible
from tests.support.live import LiveHub
from tests.support.waiting import eventually

UNAVAILABLE = "Our team is not available right now."
HANDED_OFF = re.compile(r"continue by email at .+@example\.org\. You can close this window\.")
ACKNOWLEDGEMENT = re.compile(r"Your reference number is PKR-\d+\.")
# Elements in the panel that stick out of it (clipped) or a panel wider than its window (horizontal scrolling).
OVERFLOW_JS = """panel => {
    const box = panel.getBoundingClientRect();
    const out = [];
    if (box.right > window.innerWidth + 1 || box.left < -1) out.push('panel ' + box.left + '..' + box.right);
    if (panel.scrollWidth > panel.clientWidth + 1) out.push('panel scrolls sideways');
    for (const el of panel.querySelectorAll('*')) {
        const r = el.getBoundingClientRect();
        if (!r.width || getComputedStyle(el).visibility === 'hidden') continue;
        if (r.right > box.right + 1 || r.left < box.left - 1) out.push(el.tagName + '.' + el.className);
        if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== 'visible')
            out.push(el.tagName + '.' + el.className + ' scrolls sideways');
    }
    return out;
}"""


async def open_widget(page: Page, launcher_name: str = "Chat with us") -> Locator:
    await page.get_by_role("button", name=launcher_name).click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_be_visible()
    return dialog


async def send(page: Page, text: str) -> None:
    box = page.get_by_label("Your message")
    await box.fill(text)
    await box.press("Enter")


async def stored_token(page: Page) -> str | None:
    # Polled with evaluate (which CSP allows), not wait_for_function (which evals, and the demo's CSP forbids that).
    token: str | None = await page.evaluate("localStorage.getItem('carehub-chat:token')")
    return token


async def forgot_token(page: Page) -> bool:
    return await stored_token(page) is None


async def agent_headers(hub: LiveHub) -> dict[str, str]:
    return {"Authorization": f"Bearer {await hub.agent_token()}"}


async def chat_references(hub: LiveHub, headers: dict[str, str]) -> list[str]:
    response = await hub.client.get("/api/v1/tickets", params={"channel": "chat"}, headers=headers)
    response.raise_for_status()
    return [item["reference"] for item in response.json()["items"]]


async def reply(hub: LiveHub, headers: dict[str, str], reference: str, body: str) -> None:
    response = await hub.client.post(f"/api/v1/tickets/{reference}/replies", json={"body": body}, headers=headers)
    assert response.status_code == 201, response.text


@asynccontextmanager
async def agent_online(hub: LiveHub, headers: dict[str, str]) -> AsyncIterator[None]:
    """An agent with the live queue open, which is what makes chat available."""
    async with hub.client.stream("GET", "/api/v1/events", headers=headers, timeout=None) as stream:
        assert stream.status_code == 200
        # Keep one line iterator for the whole stream: a discarded one closes the connection (and the agent leaves).
        lines = stream.aiter_lines()
        while not (await anext(lines)).startswith(": connected"):  # presence is recorded before this comment
            pass
        yield


async def test_widget_opens_by_keyboard_and_has_no_axe_violations(live: LiveHub, page: Page) -> None:
    await page.goto(f"{live.url}/chat/demo")
    launcher = page.get_by_role("button", name="Chat with us")
    await expect(launcher).to_be_visible()
    for _ in range(10):  # the demo page has a language link before the widget
        await page.keyboard.press("Tab")
        if await launcher.evaluate("el => el === document.activeElement"):
            break
    else:
        pytest.fail("Tab never reached the chat button")
    await page.keyboard.press("Enter")

    dialog = page.get_by_role("dialog", name="Chat with us")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_have_attribute("aria-modal", "false")
    await expect(launcher).to_have_attribute("aria-expanded", "true")
    await expect(page.get_by_label("Your message")).to_be_focused()
    await expect(page.get_by_role("log")).to_have_attribute("aria-live", "polite")
    await expect(page.get_by_role("status").first).to_be_attached()
    await assert_accessible(page)

    # 200 % zoom on a 1280x720 window, and a 320 px wide phone: the panel fills the window and nothing is clipped.
    for width, height in ((640, 360), (320, 640)):
        await page.set_viewport_size({"width": width, "height": height})
        await expect(dialog).to_be_visible()
        assert await dialog.evaluate(OVERFLOW_JS) == [], f"overflow at {width}x{height}"
        assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        await assert_accessible(page)

    await page.set_viewport_size({"width": 1280, "height": 800})
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(launcher).to_be_focused()
    await expect(launcher).to_have_attribute("aria-expanded", "false")


async def test_conversation_survives_a_reload_and_stays_one_ticket(live: LiveHub, page: Page) -> None:
    headers = await agent_headers(live)
    async with agent_online(live, headers):
        await page.goto(f"{live.url}/chat/demo")
        await open_widget(page)
        await expect(page.get_by_text(UNAVAILABLE)).to_be_hidden()
        await page.get_by_label("Your name (optional)").fill("Jo")
        await send(page, "Pothole on Kingston Rd")
        log = page.get_by_role("log")
        await expect(log.locator(".ch-resident .ch-meta")).to_have_text(re.compile(r"Sent$"))
        [reference] = await chat_references(live, headers)

        typing = await live.client.post(f"/api/v1/tickets/{reference}/typing", json={"on": True}, headers=headers)
        assert typing.status_code == 204
        await expect(page.get_by_role("status").get_by_text("An agent is typing…")).to_be_visible()
        read = await live.client.post(f"/api/v1/tickets/{reference}/read", json={"seq": 1}, headers=headers)
        assert read.status_code == 204
        await expect(log.locator(".ch-resident .ch-meta")).to_have_text(re.compile(r"Seen$"))
        await reply(live, headers, reference, "Thanks, a crew is on the way.")
        await expect(log.locator(".ch-agent")).to_contain_text("Thanks, a crew is on the way.")
        await expect(page.get_by_text("An agent is typing…")).to_be_hidden()

        await page.reload()
        await open_widget(page)
        texts = log.locator(".ch-text")
        before: list[str | re.Pattern[str]] = [
            "Pothole on Kingston Rd",
            ACKNOWLEDGEMENT,
            "Thanks, a crew is on the way.",
        ]
        await expect(texts).to_have_text(before)
        await reply(live, headers, reference, "It is fixed.")
        await expect(texts).to_have_text([*before, "It is fixed."])
        await send(page, "Thank you!")
        await expect(log.locator(".ch-resident .ch-meta").last).to_have_text(re.compile(r"Sent$"))

    assert await chat_references(live, headers) == [reference]
    detail = await live.client.get(f"/api/v1/tickets/{reference}", headers=headers)
    expected = ["Pothole on Kingston Rd", "Thanks, a crew is on the way.", "It is fixed.", "Thank you!"]
    assert [m["body"] for m in detail.json()["messages"] if m["body"] in expected] == expected


async def test_french_page_shows_the_widget_in_french_without_motion(live: LiveHub, page: Page) -> None:
    await page.emulate_media(reduced_motion="reduce")
    await page.goto(f"{live.url}/chat/demo?lang=fr")
    dialog = await open_widget(page, "Clavarder avec nous")
    assert await page.evaluate("document.getAnimations().length") == 0, "reduced motion still animates"
    await expect(dialog).to_have_accessible_name("Clavarder avec nous")
    await expect(page.locator(".ch-root")).to_have_attribute("lang", "fr")
    await expect(page.get_by_label("Votre message")).to_be_focused()
    await expect(page.get_by_role("button", name="Envoyer")).to_be_visible()
    await expect(page.get_by_text("Notre équipe n'est pas disponible pour le moment.")).to_be_visible()
    await expect(page.get_by_role("group", name="Comment voulez-vous que nous vous répondions?")).to_be_visible()
    await assert_accessible(page)


async def test_unavailable_chat_hands_off_to_email(live: LiveHub, page: Page) -> None:
    await page.goto(f"{live.url}/chat/demo")
    await open_widget(page)
    await expect(page.get_by_text(UNAVAILABLE)).to_be_visible()
    await expect(page.get_by_text("We answer Monday to Sunday")).to_be_visible()
    group = page.get_by_role("group", name="How should we reply?")
    await expect(group.get_by_role("radio", name="Email")).to_be_checked()

    # Before any message there is no conversation to hand off: the widget asks for the message first.
    await page.get_by_label("Your email address").fill("jo@example.org")
    await page.get_by_role("button", name="Continue by email").click()
    await expect(page.get_by_label("Your message")).to_be_focused()
    await expect(page.get_by_label("Your message")).to_have_attribute("aria-invalid", "true")
    await assert_accessible(page)

    await page.get_by_label("Your message").fill("The swing at Kinsmen Park is broken.")
    await page.get_by_role("button", name="Continue by email").click()
    await expect(page.get_by_text("Thank you. We will reply by email.")).to_be_focused()
    await expect(page.get_by_role("log")).to_contain_text(HANDED_OFF)
    await expect(group).to_be_hidden()

    headers = await agent_headers(live)
    [reference] = await chat_references(live, headers)
    detail = await live.client.get(f"/api/v1/tickets/{reference}", headers=headers)
    assert "email:jo@example.org" in detail.json()["contact_addresses"]


async def test_resident_ends_the_chat_and_starts_a_new_one(live: LiveHub, page: Page) -> None:
    async with agent_online(live, await agent_headers(live)):
        await page.goto(f"{live.url}/chat/demo")
        await open_widget(page)
        await page.get_by_label("Email or phone (optional, so we can reply if you leave)").fill("jo@example.org")
        await send(page, "Is the pool open on Sunday?")
        await expect(page.get_by_role("log").locator(".ch-resident .ch-meta")).to_have_text(re.compile(r"Sent$"))

        await page.get_by_role("button", name="End chat").click()
        transcript = page.get_by_label("Email me a transcript (optional)")
        await expect(transcript).to_be_focused()
        await expect(transcript).to_have_value("jo@example.org")
        await page.get_by_role("button", name="End chat").click()
        await expect(page.get_by_text("Chat ended.")).to_be_visible()
        new_chat = page.get_by_role("button", name="Start a new chat")
        await expect(new_chat).to_be_focused()
        await assert_accessible(page)

        await new_chat.click()
        await expect(page.get_by_role("log").locator(".ch-msg")).to_have_count(0)
        await expect(page.get_by_label("Your message")).to_be_focused()
        assert await page.evaluate("localStorage.getItem('carehub-chat:token')") is None


async def test_message_whose_ack_was_lost_is_resent_after_reconnect_and_stored_once(live: LiveHub, page: Page) -> None:
    sent: list[list[dict[str, object]]] = []  # frames the page sent, per connection
    routes: list[WebSocketRoute] = []

    def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        frames: list[dict[str, object]] = []
        sent.append(frames)
        routes.append(ws)

        def to_server(message: str | bytes) -> None:
            frames.append(json.loads(message))
            server.send(message)

        def to_page(message: str | bytes) -> None:
            frame = json.loads(message)
            lost = frame["type"] == "ack" or (frame["type"] == "message" and frame["from"] == "resident")
            if len(routes) > 1 or not lost:  # the first connection loses every sign that the message was stored
                ws.send(message)

        ws.on_message(to_server)
        server.on_message(to_page)

    await page.route_web_socket(re.compile(r"/chat/ws$"), route)
    headers = await agent_headers(live)
    async with agent_online(live, headers):
        await page.goto(f"{live.url}/chat/demo")
        await open_widget(page)
        await send(page, "Is leaf pickup this week?")
        [reference] = await eventually(lambda: chat_references(live, headers), what="the chat ticket")
        # The conversation is open (the widget holds its token) but the message's ack never came.
        await eventually(lambda: stored_token(page), what="the widget to store its token")
        own = page.get_by_role("log").locator(".ch-resident")
        await expect(own.locator(".ch-meta")).to_have_text("Sending…")

        await routes[0].close(code=4000, reason="the test drops the connection")
        await expect(page.get_by_role("status").filter(has_text="Reconnecting…")).to_be_visible()
        await expect(own.locator(".ch-meta")).to_have_text(re.compile(r"Sent$"))
        await expect(page.get_by_role("status").filter(has_text="Reconnecting…")).to_have_count(0)
        await expect(own).to_have_count(1)
        await reply(live, headers, reference, "Yes, on Thursday.")
        await expect(page.get_by_role("log").locator(".ch-agent")).to_contain_text("Yes, on Thursday.")

    first_message = next(f for f in sent[0] if f["type"] == "message")
    hello, *after_hello = sent[1]
    assert hello["type"] == "hello"
    assert hello["token"]
    assert {"type": "message", "cid": first_message["cid"], "body": "Is leaf pickup this week?"}.items() <= next(
        f for f in after_hello if f["type"] == "message"
    ).items()
    assert len(str(first_message["cid"])) == 22
    detail = await live.client.get(f"/api/v1/tickets/{reference}", headers=headers)
    assert [m["body"] for m in detail.json()["messages"]].count("Is leaf pickup this week?") == 1


async def test_unknown_token_is_forgotten_and_a_new_chat_starts(live: LiveHub, page: Page) -> None:
    await page.add_init_script("localStorage.setItem('carehub-chat:token', 'expired-or-forged')")
    await page.goto(f"{live.url}/chat/demo")
    # The widget resumes at once because it holds a token; the hub refuses it (4401) and the widget drops it.
    await eventually(lambda: forgot_token(page), what="the widget to forget the refused token")
    await open_widget(page)
    await send(page, "Hello?")
    await expect(page.get_by_role("log").locator(".ch-resident .ch-meta")).to_have_text(re.compile(r"Sent$"))
    token = await stored_token(page)
    assert token
    assert token != "expired-or-forged"


async def test_widget_files_are_small_when_gzipped(live: LiveHub) -> None:
    total = 0
    for name in ("widget.js", "widget.css"):
        response = await live.client.get(f"/chat/{name}", headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200
        if response.headers.get("content-encoding") == "gzip":
            total += response.num_bytes_downloaded
        else:
            total += len(gzip.compress(response.content, 9))
    assert total < 30 * 1024, f"widget.js + widget.css are {total} bytes gzipped"
