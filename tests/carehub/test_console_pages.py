"""The console's server-rendered pages over the real app (no browser): the queue with filters and search, a ticket
with its actions as plain HTML forms (no script needed), and who may see what. The browser tests in tests/browser/
drive the same pages in Chromium, live updates and accessibility included."""

from __future__ import annotations

import re

from carehub.models import Role
from tests.conftest import Hub
from tests.fakes.twilio_api import FakeTwilioApi
from tests.support.console import PASSWORD, agent_with_password, browser, csrf_of, sign_in
from tests.support.mail import post_email, resident_mail
from tests.support.twilio import text_hub

KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


async def test_the_queue_lists_filters_and_searches_what_the_agent_may_see(hub: Hub) -> None:
    await agent_with_password(hub, "ana@city.test")
    await text_hub(hub.client, "+19055550101", "Pothole on Kingston Rd is getting deeper")
    await post_email(hub.client, resident_mail("jo@example.org", "Garbage pickup missed", "Bins still full.\n"))
    async with browser(hub) as ana:
        await sign_in(ana, "ana@city.test")
        queue = await ana.get("/console")
        assert queue.status_code == 200
        assert "PKR-000001" in queue.text
        assert "PKR-000002" in queue.text
        assert queue.headers["content-security-policy"].startswith("default-src 'self'")

        found = await ana.get("/console", params={"q": "potholes"})  # stemmed: the text says "Pothole"
        assert "PKR-000001" in found.text
        assert "PKR-000002" not in found.text
        emails = await ana.get("/console", params={"channel": "email"})
        assert "PKR-000002" in emails.text
        assert "PKR-000001" not in emails.text
        rows = await ana.get("/console/queue/rows", params={"channel": "sms"})
        assert rows.text.lstrip().startswith("<table")  # the fragment console.js swaps in
        assert "PKR-000001" in rows.text

        bad = await ana.get("/console", params={"sort": "sideways"})
        assert bad.status_code == 422


async def test_a_ticket_is_worked_with_plain_forms(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    await agent_with_password(hub, "ana@city.test")
    await text_hub(hub.client, "+19055550101", "Streetlight out at Brock and Kingston")
    async with browser(hub) as ana:
        await sign_in(ana, "ana@city.test")
        page = await ana.get("/console/tickets/PKR-000001")
        assert page.status_code == 200
        assert "Streetlight out at Brock and Kingston" in page.text
        csrf = csrf_of(page)

        claimed = await ana.post("/console/tickets/PKR-000001/claim", data={"csrf_token": csrf})
        assert claimed.status_code == 303
        assert claimed.headers["location"] == "/console/tickets/PKR-000001?done=claim"

        key_match = KEY.search(page.text)
        assert key_match is not None
        form = {"csrf_token": csrf, "idempotency_key": key_match.group(1), "body": "A crew is on the way."}
        first = await ana.post("/console/tickets/PKR-000001/reply", data=form)
        again = await ana.post("/console/tickets/PKR-000001/reply", data=form)  # a double click
        assert first.status_code == again.status_code == 303
        sent = await fake_twilio.wait_for(2)  # the acknowledgement and the reply, once
        assert [m.body for m in sent][1] == "A crew is on the way."

        noted = await ana.post("/console/tickets/PKR-000001/note", data={"csrf_token": csrf, "body": "Called works."})
        assert noted.status_code == 303
        updated = await ana.post(
            "/console/tickets/PKR-000001/update", data={"csrf_token": csrf, "status": "resolved", "priority": "high"}
        )
        assert updated.status_code == 303
        after = await ana.get(updated.headers["location"])
        assert "Changes saved." in after.text
        assert "Called works." in after.text
        assert "status-resolved" in after.text

        refused = await ana.post(
            "/console/tickets/PKR-000001/reply", data={**form, "idempotency_key": "k2", "body": "x" * 1601}
        )
        assert refused.status_code == 422
        assert "at most 1600 characters" in refused.text
        assert "x" * 1601 in refused.text  # the draft is kept

        forged = await ana.post("/console/tickets/PKR-000001/note", data={"body": "no token"})
        assert forged.status_code == 403


async def test_who_may_open_console_pages(hub: Hub) -> None:
    await agent_with_password(hub, "ana@city.test")
    await agent_with_password(hub, "cam@city.test", role=Role.COMMUNICATIONS)
    await text_hub(hub.client, "+19055550101", "Hello")
    async with browser(hub) as nobody:
        for path in ("/console", "/console/tickets/PKR-000001", "/console/settings", "/console/next"):
            response = await nobody.get(path)
            assert (response.status_code, response.headers.get("location")) == (303, "/console/login"), path
    async with browser(hub) as cam:
        await sign_in(cam, "cam@city.test")
        assert (await cam.get("/console/tickets/PKR-000001")).status_code == 403
        assert (await cam.get("/console/settings")).status_code == 200
    async with browser(hub) as ana:
        await sign_in(ana, "ana@city.test")
        missing = await ana.get("/console/tickets/PKR-000999")
        assert missing.status_code == 404
        nxt = await ana.get("/console/next")
        assert nxt.headers["location"] == "/console/tickets/PKR-000001"


async def test_labels_merge_and_undo_from_the_ticket_page(hub: Hub) -> None:
    await agent_with_password(hub, "ana@city.test")
    await text_hub(hub.client, "+19055550101", "Tree down on Finch Ave")
    await post_email(hub.client, resident_mail("jo@example.org", "Fallen tree", "A tree is across Finch Ave.\n"))
    async with browser(hub) as ana:
        await sign_in(ana, "ana@city.test")
        csrf = csrf_of(await ana.get("/console/tickets/PKR-000001"))

        labelled = await ana.post(
            "/console/tickets/PKR-000001/labels", data={"csrf_token": csrf, "labels": "Storm, trees , storm"}
        )
        assert labelled.status_code == 303
        storm = await ana.get("/console", params={"label": "storm"})
        assert "PKR-000001" in storm.text
        assert "PKR-000002" not in storm.text

        merged = await ana.post("/console/tickets/PKR-000002/merge", data={"csrf_token": csrf, "into": "pkr-000001"})
        assert merged.status_code == 303
        target = await ana.get("/console/tickets/PKR-000001")
        assert "A tree is across Finch Ave." in target.text
        source = await ana.get("/console/tickets/PKR-000002")
        assert "Undo the merge into PKR-000001" in source.text

        undone = await ana.post("/console/tickets/PKR-000002/unmerge", data={"csrf_token": csrf})
        assert undone.status_code == 303
        assert "A tree is across Finch Ave." not in (await ana.get("/console/tickets/PKR-000001")).text
        assert "A tree is across Finch Ave." in (await ana.get("/console/tickets/PKR-000002")).text

        itself = await ana.post("/console/tickets/PKR-000001/merge", data={"csrf_token": csrf, "into": "PKR-000001"})
        assert itself.status_code == 422
        assert 'role="alert"' in itself.text


async def test_changing_the_password_ends_every_session(hub: Hub) -> None:
    await agent_with_password(hub, "ana@city.test")
    async with browser(hub) as laptop, browser(hub) as phone:
        await sign_in(laptop, "ana@city.test")
        await sign_in(phone, "ana@city.test")
        settings = await laptop.get("/console/settings")
        assert settings.status_code == 200
        csrf = csrf_of(settings)
        change = "/console/settings/password"

        wrong = await laptop.post(
            change, data={"csrf_token": csrf, "current_password": "not it at all", "new_password": "x" * 20}
        )
        assert wrong.status_code == 422
        assert "current password is not right" in wrong.text
        weak = await laptop.post(
            change, data={"csrf_token": csrf, "current_password": PASSWORD, "new_password": "short"}
        )
        assert weak.status_code == 422
        assert "at least 12 characters" in weak.text

        new_password = "a much longer pass phrase"
        done = await laptop.post(
            change, data={"csrf_token": csrf, "current_password": PASSWORD, "new_password": new_password}
        )
        assert (done.status_code, done.headers["location"]) == (303, "/console/login")
        assert (await phone.get("/console")).headers["location"] == "/console/login"  # the other session ended too
        assert (await sign_in(laptop, "ana@city.test")).status_code == 401
        assert (await sign_in(laptop, "ana@city.test", new_password)).headers["location"] == "/console"
