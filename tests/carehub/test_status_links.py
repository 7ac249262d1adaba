"""Status links: every acknowledgement carries one; it opens the resident's page (status in words, their
conversation, a box to add a message) while it is live, and an expired, revoked, tampered or unknown link gets one
and the same page that says what to do instead. A message added on the page reaches the agents' queue on the same
ticket, as if it had come by the ticket's own channel."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import create_async_engine

from carehub.agents import repository as agents
from carehub.clock import utcnow
from carehub.inbound import after_hours
from carehub.messaging.templates import MessageTemplates, default_templates_dir
from carehub.migrations import alembic_config
from carehub.models import AuditEvent, Message, Role, StatusLink, Ticket
from carehub.realtime.broker import Event
from carehub.realtime.events import AGENTS_TOPIC
from carehub.settings import Settings
from carehub.status import links
from channels.base import ChannelKind
from channels.sms.segments import sms_segments
from tests.carehub.chat.conftest import chat_settings
from tests.conftest import Hub
from tests.fakes.smtp_server import SmtpSink
from tests.fakes.twilio_api import FakeTwilioApi
from tests.support.chat import resident
from tests.support.live import live_hub
from tests.support.mail import post_email, resident_mail
from tests.support.twilio import text_hub
from tests.support.waiting import eventually

RESIDENT = "+19055550123"
NEIGHBOUR = "+19055550199"
LINK = re.compile(r"https://hub\.test/s/([A-Za-z0-9_-]{22})\b")
LINKS = StatusLink.__table__  # type: ignore[attr-defined]
AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]
MESSAGES = Message.__table__  # type: ignore[attr-defined]
TICKETS = Ticket.__table__  # type: ignore[attr-defined]
UNAVAILABLE = "This status link has expired, was cancelled, or is not complete."


async def text_and_get_link(hub: Hub, fake_twilio: FakeTwilioApi, body: str, number: str = RESIDENT) -> str:
    """The resident texts; returns the path of the status link in the acknowledgement."""
    before = len(fake_twilio.accepted)
    await text_hub(hub.client, number, body)
    sent = await fake_twilio.wait_for(before + 1)
    found = LINK.search(sent[before].body or "")
    assert found is not None, sent[before].body
    return f"/s/{found.group(1)}"


async def agent_headers(hub: Hub) -> dict[str, str]:
    return {"Authorization": f"Bearer {await hub.agent_token()}"}


async def post_message(hub: Hub, path: str, body: str, nonce: str = "n" * 24, **headers: str) -> Any:
    return await hub.client.post(f"{path}/messages", data={"body": body, "nonce": nonce}, headers=headers)


async def rows(hub: Hub, query: Any) -> list[Any]:
    async with hub.runtime.engine.connect() as conn:
        return list(await conn.execute(query))


async def set_status(hub: Hub, ticket_id: int, **values: Any) -> None:
    async with hub.runtime.transaction() as tx:
        await tx.conn.execute(update(TICKETS).where(TICKETS.c.id == ticket_id).values(**values))


async def test_sms_acknowledgement_link_opens_the_page_and_the_reading_is_audited(
    hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    path = await text_and_get_link(hub, fake_twilio, "Pothole on Kingston Rd near the school")

    page = await hub.client.get(path)

    assert page.status_code == 200
    assert "Your request PKR-000001" in page.text
    assert "We have your request and will look at it soon." in page.text
    assert "Pothole on Kingston Rd near the school" in page.text
    assert "we got your message" not in page.text  # automatic messages are not part of the conversation
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-robots-tag"] == "noindex"
    assert page.headers["referrer-policy"] == "same-origin"
    [link] = await rows(hub, select(LINKS))
    assert link.token_hash == links.hash_token(path.removeprefix("/s/"))  # only the hash is kept
    assert link.last_used_at is not None
    assert link.expires_at - link.created_at == timedelta(days=hub.settings.status_link_days)
    [read] = await rows(hub, select(AUDIT).where(AUDIT.c.action == "read"))
    assert (read.actor, read.entity_type, read.entity_id) == (f"status-link:{link.id}", "ticket", 1)


async def test_the_status_names_the_team_in_words(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    path = await text_and_get_link(hub, fake_twilio, "Streetlight out")
    await set_status(hub, 1, team="roads-operations", status="open")

    page = await hub.client.get(path)

    assert "We&#39;ve sent this to Roads Operations." in page.text


async def test_replies_show_with_the_agents_first_name_and_notes_never_show(
    hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    path = await text_and_get_link(hub, fake_twilio, "Streetlight out")
    async with hub.runtime.transaction() as tx:
        now = utcnow()
        agent_id = await agents.create_agent(
            tx.conn, email="marie@city.test", name="Marie Tremblay", role=Role.AGENT, now=now
        )
        headers = {"Authorization": f"Bearer {await agents.issue_token(tx.conn, agent_id, 'test', now)}"}
    note = await hub.client.post("/api/v1/tickets/PKR-000001/notes", json={"body": "INTERNAL ONLY"}, headers=headers)
    reply = await hub.client.post(
        "/api/v1/tickets/PKR-000001/replies", json={"body": "A crew is on the way."}, headers=headers
    )
    assert (note.status_code, reply.status_code) == (201, 201)

    page = await hub.client.get(path)

    assert "A crew is on the way." in page.text
    assert "Marie, City of Pickering" in page.text
    assert "Tremblay" not in page.text
    assert "INTERNAL ONLY" not in page.text


@pytest.mark.parametrize("how", ["expired", "revoked", "tampered", "unknown"])
async def test_a_dead_link_gets_one_page_that_reveals_nothing(hub: Hub, fake_twilio: FakeTwilioApi, how: str) -> None:
    path = await text_and_get_link(hub, fake_twilio, "Is the pool open?")
    token = path.removeprefix("/s/")
    if how == "expired":
        async with hub.runtime.transaction() as tx:
            await tx.conn.execute(update(LINKS).values(expires_at=utcnow() - timedelta(seconds=1)))
    elif how == "revoked":
        revoked = await hub.client.post(
            "/api/v1/tickets/PKR-000001/status-links/revoke", headers=await agent_headers(hub)
        )
        assert revoked.json() == {"revoked": 1}
    elif how == "tampered":
        path = "/s/" + token[:-1] + ("A" if token[-1] != "A" else "B")
    else:
        path = "/s/" + links.new_token()

    page = await hub.client.get(path)
    posted = await post_message(hub, path, "Hello?")

    assert (page.status_code, posted.status_code) == (404, 404)
    assert UNAVAILABLE in page.text
    assert "Ce lien de suivi est expiré" in page.text  # the request's language is not known: both
    assert "PKR-000001" not in page.text
    assert "STATUS" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert await rows(hub, select(AUDIT).where(AUDIT.c.action == "read")) == []
    assert len(await rows(hub, select(MESSAGES).where(MESSAGES.c.direction == "in"))) == 1


async def test_revoke_is_audited_and_a_fresh_link_works_once_issued(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    path = await text_and_get_link(hub, fake_twilio, "Is the pool open?")
    headers = await agent_headers(hub)

    revoked = await hub.client.post("/api/v1/tickets/PKR-000001/status-links/revoke", headers=headers)
    issued = await hub.client.post("/api/v1/tickets/PKR-000001/status-links", headers=headers)

    assert revoked.json() == {"revoked": 1}
    assert issued.status_code == 201
    fresh = LINK.search(issued.json()["url"])
    assert fresh is not None
    assert (await hub.client.get(path)).status_code == 404
    assert (await hub.client.get(f"/s/{fresh.group(1)}")).status_code == 200
    actions = [r.action for r in await rows(hub, select(AUDIT).where(AUDIT.c.actor.like("agent:%")))]
    assert {"revoke_status_links", "issue_status_link"} <= set(actions)
    [old] = await rows(hub, select(LINKS).where(LINKS.c.revoked_at.is_not(None)))
    assert old.revoked_by is not None


async def test_revoking_another_teams_ticket_is_refused(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    path = await text_and_get_link(hub, fake_twilio, "Is the pool open?")
    await set_status(hub, 1, team="recreation")
    headers = await agent_headers(hub)  # an agent in no team

    refused = await hub.client.post("/api/v1/tickets/PKR-000001/status-links/revoke", headers=headers)

    assert refused.status_code == 404
    assert (await hub.client.get(path)).status_code == 200


async def test_a_message_from_the_page_reaches_the_agents_queue_on_the_same_ticket(
    hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    path = await text_and_get_link(hub, fake_twilio, "Streetlight out on Kingston Rd")
    headers = await agent_headers(hub)
    assert (
        await hub.client.post("/api/v1/tickets/PKR-000001/replies", json={"body": "Which pole?"}, headers=headers)
    ).status_code == 201
    assert (
        await hub.client.patch("/api/v1/tickets/PKR-000001", json={"status": "pending"}, headers=headers)
    ).status_code == 200
    events: list[Event] = []
    await hub.runtime.broker.listen(AGENTS_TOPIC, events.append)

    posted = await post_message(hub, path, "The one outside number 1867.")

    assert posted.status_code == 303
    assert posted.headers["location"].startswith(f"{path}?")
    ticket = (await hub.client.get("/api/v1/tickets/PKR-000001", headers=headers)).json()
    assert ticket["status"] == "open"  # the resident's message reopens a ticket waiting on them
    last = ticket["messages"][-1]
    assert (last["direction"], last["channel"], last["body"]) == ("in", "sms", "The one outside number 1867.")
    assert len((await hub.client.get("/api/v1/tickets", headers=headers)).json()["items"]) == 1
    await eventually(
        lambda: _has([e.text for e in events], "The one outside number 1867."), what="the live message event"
    )
    shown = await hub.client.get(posted.headers["location"])
    assert "Thank you. We have your message" in shown.text
    assert "The one outside number 1867." in shown.text
    # Agents answer where they always did: by text to the resident's number.
    answer = await hub.client.post("/api/v1/tickets/PKR-000001/replies", json={"body": "Thanks!"}, headers=headers)
    assert answer.status_code == 201
    sent = await fake_twilio.wait_for(3)
    assert (sent[-1].to, sent[-1].body) == (RESIDENT, "Thanks!")
    [added] = await rows(hub, select(AUDIT).where(AUDIT.c.action == "message"))
    assert added.actor.startswith("status-link:")


async def _has(texts: list[str], needle: str) -> list[str]:
    return [t for t in texts if needle in t and t.startswith("event: message.created")]


async def test_a_double_submit_stores_one_message(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    path = await text_and_get_link(hub, fake_twilio, "Streetlight out")

    first = await post_message(hub, path, "It is pole 12.", nonce="same-form-nonce-123456")
    second = await post_message(hub, path, "It is pole 12.", nonce="same-form-nonce-123456")

    assert (first.status_code, second.status_code) == (303, 303)
    inbound = await rows(hub, select(MESSAGES.c.body).where(MESSAGES.c.direction == "in"))
    assert [r.body for r in inbound] == ["Streetlight out", "It is pole 12."]


async def test_an_empty_or_too_long_message_is_refused_with_the_text_kept(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    path = await text_and_get_link(hub, fake_twilio, "Streetlight out")

    empty = await post_message(hub, path, "   ")
    long = await post_message(hub, path, "x" * 2001)

    assert (empty.status_code, long.status_code) == (422, 422)
    assert "Write your message before sending it." in empty.text
    assert "Your message has 2001 characters" in long.text
    assert "x" * 2001 in long.text
    assert 'role="alert"' in long.text
    assert len(await rows(hub, select(MESSAGES).where(MESSAGES.c.direction == "in"))) == 1


async def test_a_post_from_another_site_is_refused(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    path = await text_and_get_link(hub, fake_twilio, "Streetlight out")

    forged = await post_message(hub, path, "spam", **{"Sec-Fetch-Site": "cross-site"})
    forged_origin = await post_message(hub, path, "spam", Origin="https://evil.example")

    assert (forged.status_code, forged_origin.status_code) == (403, 403)
    assert len(await rows(hub, select(MESSAGES).where(MESSAGES.c.direction == "in"))) == 1


async def test_a_closed_requests_page_starts_a_new_linked_request(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    path = await text_and_get_link(hub, fake_twilio, "Streetlight out")
    await set_status(hub, 1, status="closed")
    page = await hub.client.get(path)
    assert "This request is closed." in page.text
    assert "starts a new request, linked to this one" in page.text

    posted = await post_message(hub, path, "It is out again.", nonce="closed-form-nonce-0001")
    again = await post_message(hub, path, "It is out again.", nonce="closed-form-nonce-0001")

    assert posted.status_code == 303
    new_path = posted.headers["location"].split("?")[0]
    assert new_path != path
    assert again.status_code == 303
    assert again.headers["location"].split("?")[0] != path
    tickets = await rows(hub, select(TICKETS).order_by(TICKETS.c.id))
    assert [(t.id, t.status, t.linked_ticket_id, t.channel) for t in tickets] == [
        (1, "closed", None, "sms"),
        (2, "new", 1, "sms"),
    ]
    shown = await hub.client.get(posted.headers["location"])
    assert "Your message started a new request, PKR-000002." in shown.text
    assert "It is out again." in shown.text


async def test_a_merged_request_shows_the_ticket_it_joined(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    path = await text_and_get_link(hub, fake_twilio, "Streetlight out")
    neighbour = await text_and_get_link(hub, fake_twilio, "NEIGHBOUR SECRET: lamp out", number=NEIGHBOUR)
    headers = await agent_headers(hub)

    merged = await hub.client.post("/api/v1/tickets/PKR-000001/merge", json={"into": "PKR-000002"}, headers=headers)

    assert merged.status_code == 201, merged.text
    page = await hub.client.get(path)
    assert "Your request PKR-000001 is now part of PKR-000002." in page.text
    assert "Streetlight out" in page.text
    assert "NEIGHBOUR SECRET" not in page.text  # someone else's request: only what was ours
    assert (await post_message(hub, path, "more")).status_code == 422
    theirs = await hub.client.get(neighbour)
    assert "NEIGHBOUR SECRET" in theirs.text
    assert "Streetlight out" not in theirs.text  # nor ours on theirs


async def test_the_page_speaks_french_when_asked(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    path = await text_and_get_link(hub, fake_twilio, "Lampadaire brisé")

    by_query = await hub.client.get(f"{path}?lang=fr")
    by_browser = await hub.client.get(path, headers={"Accept-Language": "fr-CA,fr;q=0.9,en;q=0.5"})

    for page in (by_query, by_browser):
        assert '<html lang="fr">' in page.text
        assert "Votre demande PKR-000001" in page.text
        assert "Nous avons votre demande et allons l&#39;examiner sous peu." in page.text
        assert "Envoyer mon message" in page.text


async def test_email_acknowledgement_carries_the_link_in_both_parts(
    mail_hub: Hub, smtp_sink: SmtpSink, fake_twilio: FakeTwilioApi
) -> None:
    response = await post_email(mail_hub.client, resident_mail("jo@example.org", "Pothole", "Deep one on Kingston Rd"))
    assert response.status_code == 202

    [ack] = await smtp_sink.wait_for(1)
    text = ack.message.get_body(("plain",))
    html = ack.message.get_body(("html",))
    assert text is not None
    assert html is not None
    found = LINK.search(text.get_content())
    assert found is not None
    assert f'href="https://hub.test/s/{found.group(1)}"' in html.get_content()
    page = await mail_hub.client.get(f"/s/{found.group(1)}")
    assert page.status_code == 200
    assert "Deep one on Kingston Rd" in page.text
    posted = await post_message(mail_hub, f"/s/{found.group(1)}", "It is getting deeper.")
    assert posted.status_code == 303
    [added] = await rows(mail_hub, select(MESSAGES).where(MESSAGES.c.body == "It is getting deeper."))
    assert (added.ticket_id, added.channel, added.direction) == (1, "email", "in")


def test_link_is_found_in_a_stored_acknowledgement() -> None:
    token = links.new_token()
    assert len(token) == links.TOKEN_CHARS
    body = f"Your reference is PKR-000001. Status: https://hub.test/s/{token} Reply STOP to opt out."
    assert links.link_in(body) == f"https://hub.test/s/{token}"
    assert links.link_in("no link here") is None


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("after", [False, True])
def test_the_sms_acknowledgement_with_its_link_is_at_most_two_gsm7_segments(language: str, after: bool) -> None:
    """With the default city name, a longer-than-usual public URL, and the longest opening sentence."""
    settings = Settings(public_url="https://customercare.pickering.ca", business_hours="mon-fri 08:30-16:30")
    templates = MessageTemplates(default_templates_dir())
    link = links.url_for(settings, links.new_token())
    context: dict[str, Any] = {"city_name": settings.city_name, "reference": "PKR-1234567", "status_link": link}
    name = "ack"
    if after:
        name = after_hours.AFTER_HOURS
        opening = utcnow().replace(month=9, day=27, hour=12, minute=30)  # "mercredi 27 septembre à 8 h 30"
        context["reopens"] = after_hours.reopens_in(settings, opening, language)
    text = templates.render(ChannelKind.SMS, name, language, **context)

    segments = sms_segments(text)

    assert link in text
    assert segments.encoding == "GSM-7", segments.non_gsm
    assert segments.segments <= 2, (segments.units, text)


async def test_chat_acknowledgements_carry_the_link_and_a_page_message_joins_the_chat(
    settings: Settings, fake_twilio: FakeTwilioApi
) -> None:
    async with live_hub(chat_settings(settings)) as live, resident(live.ws_url) as jo:
        await jo.hello()
        await jo.say("Water in my basement after the storm")
        ack = await jo.expect("message", seq=2)
        found = LINK.search(ack["body"])
        assert found is not None, ack["body"]

        posted = await live.client.post(
            f"/s/{found.group(1)}/messages", data={"body": "It is rising.", "nonce": "chat-form-nonce-000001"}
        )

        assert posted.status_code == 303
        added = await jo.expect("message", seq=3)  # numbered in the chat, so the widget shows it in order
        assert (added["from"], added["body"]) == ("resident", "It is rising.")
        await jo.send(type="handoff", channel="sms", address="905 555 0142")
        await jo.expect("handoff")
        [text] = await fake_twilio.wait_for(1)
        assert LINK.search(text.body or "") is not None  # the hand-off's acknowledgement carries one too


async def test_migration_0021_downgrades_to_the_previous_ingest_functions(backend: str, database_url: str) -> None:
    if backend != "postgresql":
        pytest.skip("the ingest functions are PostgreSQL's")
    config = alembic_config(Settings(database_url=database_url))
    query = (
        "SELECT proname, pronargs FROM pg_proc WHERE proname IN ('carehub_ingest', 'carehub_ingest_email') "
        "ORDER BY proname"
    )
    engine = create_async_engine(database_url)
    try:
        await asyncio.to_thread(command.downgrade, config, "0020")
        try:
            async with engine.connect() as conn:
                before = [tuple(r) for r in await conn.execute(text(query))]
        finally:
            await asyncio.to_thread(command.upgrade, config, "head")
        async with engine.connect() as conn:
            after = [tuple(r) for r in await conn.execute(text(query))]
    finally:
        await engine.dispose()

    assert before == [("carehub_ingest", 10), ("carehub_ingest_email", 18)]
    assert after == [("carehub_ingest", 13), ("carehub_ingest_email", 21)]
