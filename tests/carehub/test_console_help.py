"""The help centre's console pages over the real app (tests/browser/test_console_help.py checks them in Chromium):
a supervisor writes an article through the form, previews it sanitised, publishes it for residents and archives it;
a refused form keeps what was typed; agents and forms without the CSRF token are refused; and what residents
searched for without a good answer shows up for staff."""

from __future__ import annotations

import re

from carehub.clock import utcnow
from carehub.help import service
from carehub.models import Role
from tests.conftest import Hub
from tests.support.console import agent_with_password, browser, csrf_of, sign_in

BODY = "Put your **green bin** out by 7 a.m.\n\n<script>alert('x')</script>\n\n[Schedule](https://city.test/waste)"
ARTICLE = {
    "key": "green-bin-rhubarb",
    "language": "en",
    "title": "Green bin for rhubarb leaves",
    "summary": "Rhubarb leaves go in the green bin.",
    "topic": "waste",
    "keywords": "rhubarb, compost, green bin",
    "related_services": "Waste collection",
    "review_due": "",
    "body": BODY,
}
ARTICLE_LINK = re.compile(r'href="/console/help/(\d+)"[^>]*>Green bin for rhubarb leaves<')


async def test_a_supervisor_writes_previews_publishes_and_archives_an_article(hub: Hub) -> None:
    await agent_with_password(hub, "sam@city.test", role=Role.SUPERVISOR)
    async with browser(hub) as sam:
        await sign_in(sam, "sam@city.test")
        listing = await sam.get("/console/help")
        assert listing.status_code == 200
        assert 'href="/console/help" aria-current="page">Help articles<' in listing.text
        form = await sam.get("/console/help/new")
        csrf = csrf_of(form)

        preview = await sam.post("/console/help/new", data={**ARTICLE, "csrf_token": csrf, "action": "preview"})
        assert preview.status_code == 200
        assert "<strong>green bin</strong>" in preview.text
        assert 'rel="noopener noreferrer"' in preview.text
        assert "<script>alert" not in preview.text  # neither in the preview nor in the textarea (escaped there)

        created = await sam.post("/console/help/new", data={**ARTICLE, "csrf_token": csrf, "action": "save"})
        assert created.status_code == 303
        location = created.headers["location"]
        assert re.fullmatch(r"/console/help/\d+\?done=created", location)
        saved = await sam.get(location)
        assert "Draft saved." in saved.text
        assert "<strong>green bin</strong>" in saved.text  # the stored article's preview

        listed = await sam.get("/console/help")
        found = ARTICLE_LINK.search(listed.text)
        assert found is not None
        article_id = found.group(1)
        assert "green-bin-rhubarb" in listed.text
        assert "status-draft" in listed.text
        assert "Write the French version" in listed.text
        assert (await hub.client.get("/help/green-bin-rhubarb")).status_code == 404  # a draft is not public

        edited = {**ARTICLE, "title": "Green bin for rhubarb leaves", "csrf_token": csrf, "action": "publish"}
        published = await sam.post(f"/console/help/{article_id}", data=edited)
        assert published.status_code == 303
        assert published.headers["location"] == f"/console/help/{article_id}?done=published"
        assert "Published: residents find it" in (await sam.get(published.headers["location"])).text
        public = await hub.client.get("/help/green-bin-rhubarb")
        assert public.status_code == 200
        assert "Green bin for rhubarb leaves" in public.text
        assert "<script>alert" not in public.text
        searched = await hub.client.get("/help/search", params={"q": "rhubarb leaves"})
        assert "/help/green-bin-rhubarb" in searched.text

        token = await hub.agent_token(role=Role.AGENT, email="ana@city.test")
        api_url, bearer = f"/api/v1/help/articles/{article_id}", {"Authorization": f"Bearer {token}"}
        due_before = (await hub.client.get(api_url, headers=bearer)).json()["review_due_at"]
        shown = re.search(r'name="review_due" value="([0-9-]+)"', (await sam.get(f"/console/help/{article_id}")).text)
        assert shown is not None
        unchanged = {**edited, "review_due": shown.group(1), "summary": "Leaves only.", "action": "save"}
        assert (await sam.post(f"/console/help/{article_id}", data=unchanged)).status_code == 303
        after_save = (await hub.client.get(api_url, headers=bearer)).json()
        assert after_save["summary"] == "Leaves only."
        assert after_save["review_due_at"] == due_before  # a date shown and sent back unchanged moves nothing
        assert after_save["status"] == "published"

        review = {**edited, "review_due": "2020-01-31", "action": "save"}
        assert (await sam.post(f"/console/help/{article_id}", data=review)).headers["location"].endswith("=saved")
        row = re.search(r"<code>green-bin-rhubarb</code>(.*?)</tr>", (await sam.get("/console/help")).text, re.S)
        assert row is not None
        assert "Review due <time" in row.group(1)
        assert ">2020-01-31</time>" in row.group(1)
        assert "Review overdue" in row.group(1)  # in words, not only a colour

        archived = await sam.post(f"/console/help/{article_id}/archive", data={"csrf_token": csrf})
        assert archived.status_code == 303
        assert archived.headers["location"] == f"/console/help/{article_id}?done=archived"
        assert (await hub.client.get("/help/green-bin-rhubarb")).status_code == 404
        assert "status-archived" in (await sam.get("/console/help")).text

        api = await hub.client.get(api_url, headers=bearer)
        assert api.json()["status"] == "archived"
        assert api.json()["keywords"] == ["rhubarb", "compost", "green bin"]


async def test_a_refused_form_keeps_the_text_and_names_the_field(hub: Hub) -> None:
    await agent_with_password(hub, "cam@city.test", role=Role.COMMUNICATIONS)
    async with browser(hub) as cam:
        await sign_in(cam, "cam@city.test")
        csrf = csrf_of(await cam.get("/console/help/new"))
        typed = {**ARTICLE, "key": "Not A Slug", "topic": "Waste Things", "csrf_token": csrf, "action": "save"}
        refused = await cam.post("/console/help/new", data=typed)
        assert refused.status_code == 422
        assert "<title>Error: New help article" in refused.text
        assert 'id="topic" name="topic" value="Waste Things"' in refused.text
        assert 'aria-describedby="topic-error topic-hint"' in refused.text
        assert 'id="topic-error" class="error">Topic: lower-case letters' in refused.text
        assert 'id="key-error" class="error">Key: lower-case letters' in refused.text
        assert 'value="Not A Slug"' in refused.text
        assert '<li><a href="#topic">' in refused.text  # the summary links to the field
        assert "Put your **green bin** out by 7 a.m." in refused.text  # the body as typed

        short = await cam.post("/console/help/new", data={**typed, "key": "ok-key", "topic": "waste", "title": "G"})
        assert short.status_code == 422
        assert 'id="title-error" class="error">Title: String should have at least 3 characters' in short.text
        assert 'aria-invalid="true" aria-describedby="title-error"' in short.text

        await cam.post("/console/help/new", data={**typed, "key": "green-bin-rhubarb", "topic": "waste"})
        twice = await cam.post("/console/help/new", data={**typed, "key": "green-bin-rhubarb", "topic": "waste"})
        assert twice.status_code == 409
        assert "already has a en version" in twice.text


async def test_agents_and_forms_without_the_token_are_refused(hub: Hub) -> None:
    await agent_with_password(hub, "ana@city.test")
    await agent_with_password(hub, "sam@city.test", role=Role.SUPERVISOR)
    async with browser(hub) as ana, browser(hub) as sam:
        await sign_in(ana, "ana@city.test")
        queue = await ana.get("/console")
        assert "Help articles" not in queue.text  # no nav link for agents
        for path in ("/console/help", "/console/help/new"):
            assert (await ana.get(path)).status_code == 403
        refused = await ana.post("/console/help/new", data={**ARTICLE, "csrf_token": csrf_of(queue)})
        assert refused.status_code == 403

        await sign_in(sam, "sam@city.test")
        forged = await sam.post("/console/help/new", data={**ARTICLE, "action": "save"})
        assert forged.status_code == 403
        assert "green-bin-rhubarb" not in (await sam.get("/console/help")).text


async def test_searches_without_a_good_answer_are_shown_to_staff(hub: Hub) -> None:
    await service.seed(hub.runtime.engine, service.load_drafts(service.EXAMPLES), utcnow())
    await hub.client.get("/help/search", params={"q": "recipe for banana bread please"})
    await hub.client.get("/help/search", params={"q": "recipe for banana bread please"})
    await agent_with_password(hub, "adi@city.test", role=Role.ADMIN)
    async with browser(hub) as adi:
        await sign_in(adi, "adi@city.test")
        page = await adi.get("/console/help", params={"days": 7})
        assert page.status_code == 200
        assert '<option value="7" selected>Last 7 days</option>' in page.text
        row = re.search(r'<th scope="row" lang="en">recipe for banana bread please</th>(.*?)</tr>', page.text, re.S)
        assert row is not None, page.text
        assert "<td>2</td>" in row.group(1)
        assert "Report a pothole" in page.text  # the seeded examples, listed
        assert "Published" in page.text
