"""The residents' help pages without a browser (tests/browser/test_help_pages.py drives them in Chromium): the
language follows ?lang= or Accept-Language, articles are cacheable and searches are not, a Yes/No from another
site is refused, the chat widget's suggestions need three words and a confident match, and an agent puts an
article's link into a reply from the ticket page, in the resident's language; `carehub dev` seeds examples."""

from __future__ import annotations

from carehub.cli import _first_run
from carehub.clock import utcnow
from carehub.help import service
from carehub.settings import Settings
from tests.conftest import Hub, running_hub
from tests.support.console import agent_with_password, browser, sign_in
from tests.support.twilio import text_hub


async def seeded(hub: Hub) -> None:
    await service.seed(hub.runtime.engine, service.load_drafts(service.EXAMPLES), utcnow())


async def test_pages_follow_the_resident_language_and_cache_only_what_is_public(hub: Hub) -> None:
    await seeded(hub)
    english = await hub.client.get("/help/pothole")
    assert english.status_code == 200
    assert '<html lang="en">' in english.text
    assert "Report a pothole" in english.text
    assert 'href="/help/pothole?lang=fr"' in english.text
    assert english.headers["cache-control"] == "public, max-age=60"
    assert "default-src 'none'" in english.headers["content-security-policy"]

    french = await hub.client.get("/help/pothole", headers={"Accept-Language": "fr-CA,fr;q=0.9"})
    assert '<html lang="fr">' in french.text
    assert "Signaler un nid-de-poule" in french.text
    assert "Dernière révision" in french.text

    found = await hub.client.get("/help/search", params={"q": "ma rue n'a pas été déneigée", "lang": "fr"})
    assert found.headers["cache-control"] == "no-store"
    assert "/help/snow-clearing-windrows?lang=fr" in found.text
    assert (await hub.client.get("/help/no-such-answer")).status_code == 404
    assert (await hub.client.get("/help/topics/waste")).status_code == 200
    css = await hub.client.get("/help/help.css")
    assert css.headers["content-type"].startswith("text/css")


async def test_feedback_from_another_site_is_refused(hub: Hub) -> None:
    await seeded(hub)
    forged = await hub.client.post(
        "/help/pothole/feedback", data={"helpful": "yes"}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert forged.status_code == 403
    ours = await hub.client.post(
        "/help/pothole/feedback", data={"helpful": "no"}, headers={"Sec-Fetch-Site": "same-origin"}
    )
    assert ours.status_code == 200
    assert "A person can help you" in ours.text
    assert 'href="tel:9056837575"' in ours.text


async def test_widget_suggestions_need_three_words_and_a_confident_match(hub: Hub) -> None:
    await seeded(hub)
    short = await hub.client.get("/help/suggest", params={"q": "garbage"})
    assert short.json() == {"suggestions": []}
    found = await hub.client.get("/help/suggest", params={"q": "my garbage wasn't picked up"})
    suggestions = found.json()["suggestions"]
    assert 1 <= len(suggestions) <= 3
    assert suggestions[0]["title"] == "Missed waste collection"
    assert suggestions[0]["url"].endswith("/help/missed-waste-collection")
    unrelated = await hub.client.get("/help/suggest", params={"q": "recipe for banana bread please"})
    assert unrelated.json() == {"suggestions": []}


async def test_an_agent_inserts_an_article_link_into_a_reply(hub: Hub) -> None:
    await seeded(hub)
    await agent_with_password(hub, "ana@city.test")
    await text_hub(hub.client, "+19055550101", "Pothole at Brock and Kingston")
    async with browser(hub) as ana:
        await sign_in(ana, "ana@city.test")
        page = await ana.get("/console/tickets/PKR-000001")
        assert '<option value="pothole">Report a pothole</option>' in page.text
        filled = await ana.get("/console/tickets/PKR-000001", params={"article": "pothole"})
        assert "Report a pothole: https://" in filled.text
        assert "/help/pothole</textarea>" in filled.text


async def test_the_dev_first_run_seeds_example_articles(settings: Settings) -> None:
    """`carehub dev` on an empty store: a newcomer finds answers at /help (carehub/help/examples.json)."""
    first = await _first_run(settings)
    assert first is not None
    async with running_hub(settings) as hub:
        home = await hub.client.get("/help")
        assert "Garbage and recycling" in home.text
        found = await hub.client.get("/help/search", params={"q": "my road wasn't plowed"})
        assert "/help/snow-clearing-windrows" in found.text
    assert await _first_run(settings) is None  # a second start adds nothing
