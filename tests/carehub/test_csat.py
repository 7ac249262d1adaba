"""The satisfaction survey: one question after an agent resolves a ticket they answered, on the ticket's channel
and in the resident's language; answered by reply ("5") without reopening the ticket, or on the survey page."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from carehub.chat import repository as chat_repository
from carehub.chat import service as chat
from carehub.clock import utcnow
from carehub.csat.messages import email_context, mail_context
from carehub.csat.replies import parse_rating
from carehub.messaging.templates import MessageTemplates, default_templates_dir
from carehub.models import Contact, ContactAddress, CsatSurvey, Message
from carehub.settings import Settings
from tests.conftest import Hub
from tests.fakes.smtp_server import SmtpSink
from tests.fakes.twilio_api import FakeTwilioApi
from tests.support.identities import PUBLIC_URL
from tests.support.mail import post_email, resident_mail
from tests.support.twilio import text_hub

RESIDENT = "+19055550123"
REF = "PKR-000001"
SURVEYS = CsatSurvey.__table__  # type: ignore[attr-defined]
MESSAGES = Message.__table__  # type: ignore[attr-defined]
ADDRESSES = ContactAddress.__table__  # type: ignore[attr-defined]
CONTACTS = Contact.__table__  # type: ignore[attr-defined]
LINK = re.compile(re.escape(PUBLIC_URL) + r"/csat/([A-Za-z0-9_-]{43})")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def reply(hub: Hub, token: str, body: str) -> None:
    response = await hub.client.post(f"/api/v1/tickets/{REF}/replies", json={"body": body}, headers=bearer(token))
    assert response.status_code == 201, response.text


async def set_status(hub: Hub, token: str, status: str) -> dict[str, Any]:
    response = await hub.client.patch(f"/api/v1/tickets/{REF}", json={"status": status}, headers=bearer(token))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def ticket(hub: Hub, token: str) -> dict[str, Any]:
    response = await hub.client.get(f"/api/v1/tickets/{REF}", headers=bearer(token))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def surveys(hub: Hub) -> list[Any]:
    async with hub.runtime.engine.connect() as conn:
        return list((await conn.execute(select(SURVEYS).order_by(SURVEYS.c.id))).all())


async def csat_messages(hub: Hub) -> list[Any]:
    async with hub.runtime.engine.connect() as conn:
        rows = (await conn.execute(select(MESSAGES).order_by(MESSAGES.c.id))).all()
    return [r for r in rows if (r.meta or {}).get("auto") == "csat"]


async def answered_sms_ticket(hub: Hub, fake_twilio: FakeTwilioApi) -> str:
    """A resident's text, answered by an agent: returns the agent's token. The ack and the reply are sent."""
    await text_hub(hub.client, RESIDENT, "The water is off on Rougemount Dr")
    token = await hub.agent_token()
    await reply(hub, token, "A crew is on the way.")
    await fake_twilio.wait_for(2)
    return token


async def survey_key(fake_twilio: FakeTwilioApi, count: int) -> str:
    sent = await fake_twilio.wait_for(count)
    found = LINK.search(sent[count - 1].body or "")
    assert found is not None, sent[count - 1].body
    return found.group(1)


def test_a_rating_is_a_digit_alone_or_with_a_little_punctuation_or_thanks() -> None:
    assert [parse_rating(b) for b in ("5", " 4 ", "5!", "4 thanks", "3.", "5/5", "2 merci", "1 👎")] == [
        5, 4, 5, 4, 3, 5, 2, 1,
    ]  # fmt: skip
    for body in ("6", "0", "10", "45", "the water is still off", "3 pipes burst", "5 more days?", "Thanks", ""):
        assert parse_rating(body) is None, body


async def test_resolving_an_answered_sms_ticket_sends_one_question(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    token = await answered_sms_ticket(hub, fake_twilio)
    await set_status(hub, token, "resolved")

    sent = await fake_twilio.wait_for(3)
    assert sent[2].to == RESIDENT
    key = await survey_key(fake_twilio, 3)
    assert sent[2].body == (
        f"How did we do with {REF}? Reply 1 (poor) to 5 (excellent), or rate us at {PUBLIC_URL}/csat/{key}"
    )
    [survey] = await surveys(hub)
    assert survey.channel == "sms"
    assert survey.rating is None
    assert key not in survey.token_hash  # only the hash is kept
    assert len(survey.token_hash) == 64

    # Reopened and resolved again: the resident is not asked twice.
    await set_status(hub, token, "open")
    await set_status(hub, token, "resolved")
    assert len(await surveys(hub)) == 1
    assert len(await csat_messages(hub)) == 1


async def test_no_question_without_an_agent_reply_or_to_an_opted_out_number(
    hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    await text_hub(hub.client, RESIDENT, "Never mind, found it")
    token = await hub.agent_token()
    await set_status(hub, token, "resolved")  # nobody answered: nothing to rate
    assert await surveys(hub) == []

    await set_status(hub, token, "open")
    await reply(hub, token, "Glad you found it.")
    async with hub.runtime.transaction() as tx:
        await tx.conn.execute(update(ADDRESSES).values(opted_out_at=utcnow()))
    await set_status(hub, token, "resolved")
    assert await surveys(hub) == []
    assert await csat_messages(hub) == []


async def test_replying_5_records_the_rating_and_the_ticket_stays_resolved(
    hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    token = await answered_sms_ticket(hub, fake_twilio)
    resolved = await set_status(hub, token, "resolved")
    await fake_twilio.wait_for(3)

    await text_hub(hub.client, RESIDENT, "5!")

    after = await ticket(hub, token)
    assert after["status"] == "resolved"
    assert after["resolved_at"] is not None
    assert after["resolved_at"][:19] == resolved["resolved_at"][:19]
    assert after["csat"]["rating"] == 5
    assert after["csat"]["comment"] is None
    [survey] = await surveys(hub)
    assert survey.rating == 5
    digit = [m for m in after["messages"] if m["direction"] == "in"][-1]
    assert digit["body"] == "5!"  # kept on the ticket for the record
    async with hub.runtime.engine.connect() as conn:
        meta = (await conn.execute(select(MESSAGES.c.meta).where(MESSAGES.c.id == digit["id"]))).scalar_one()
    assert meta["csat"] == 5


async def test_a_real_message_after_the_survey_reopens_and_records_nothing(
    hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    token = await answered_sms_ticket(hub, fake_twilio)
    await set_status(hub, token, "resolved")
    await fake_twilio.wait_for(3)

    await text_hub(hub.client, RESIDENT, "the water is still off")

    after = await ticket(hub, token)
    assert after["status"] == "open"
    assert after["csat"] is None
    [survey] = await surveys(hub)
    assert survey.rating is None
    # A digit after that is a rating, but the ticket is being worked again: it stays open.
    await text_hub(hub.client, RESIDENT, "3")
    again = await ticket(hub, token)
    assert again["status"] == "open"
    assert again["csat"]["rating"] == 3


async def test_email_question_has_a_link_per_rating_and_a_reply_answers_it(mail_hub: Hub, smtp_sink: SmtpSink) -> None:
    await post_email(mail_hub.client, resident_mail("jo@example.org", "Pothole", "Deep one on Brock Rd.\n"))
    token = await mail_hub.agent_token()
    await reply(mail_hub, token, "Filled this morning.")
    await smtp_sink.wait_for(2)
    await set_status(mail_hub, token, "resolved")

    question = (await smtp_sink.wait_for(3))[2].message
    assert question["Subject"] == f"Re: Pothole [{REF}]"
    assert question["Auto-Submitted"] == "auto-generated"
    text = question.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    html = question.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    key = LINK.search(text).group(1)  # type: ignore[union-attr]
    for rating in range(1, 6):
        assert f"{PUBLIC_URL}/csat/{key}?rating={rating}" in text
        assert f'href="{PUBLIC_URL}/csat/{key}?rating={rating}"' in html
    assert text.rstrip().endswith("https://www.pickering.ca")  # the CASL sender identity
    assert "One The Esplanade" in html
    [survey] = await surveys(mail_hub)
    assert survey.channel == "email"

    await post_email(mail_hub.client, resident_mail("jo@example.org", f"Re: Pothole [{REF}]", "4 thanks\n"))

    after = await ticket(mail_hub, token)
    assert (after["status"], after["csat"]["rating"]) == ("resolved", 4)


async def test_french_contact_gets_the_question_and_the_page_in_french(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    await text_hub(hub.client, RESIDENT, "Bonjour, l'eau est coupée")
    async with hub.runtime.transaction() as tx:
        await tx.conn.execute(update(CONTACTS).values(language="fr"))
    token = await hub.agent_token()
    await reply(hub, token, "Une équipe est en route.")
    await set_status(hub, token, "resolved")

    key = await survey_key(fake_twilio, 3)
    body = (await fake_twilio.wait_for(3))[2].body or ""
    assert body.startswith(f"Comment avons-nous traité votre demande {REF}? Répondez de 1 (mauvais) à 5 (excellent)")
    page = await hub.client.get(f"/csat/{key}")
    assert page.status_code == 200
    assert '<html lang="fr">' in page.text
    assert "Envoyer ma réponse" in page.text


async def test_answering_by_link_records_and_updates_the_answer(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    token = await answered_sms_ticket(hub, fake_twilio)
    await set_status(hub, token, "resolved")
    key = await survey_key(fake_twilio, 3)

    page = await hub.client.get(f"/csat/{key}?rating=4")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["referrer-policy"] == "same-origin"
    assert "<fieldset" in page.text
    assert f"<legend>How did we do with {REF}?</legend>" in page.text
    radios = re.findall(r'<input type="radio" id="rating-(\d)" name="rating" value="\d"( checked)?>', page.text)
    assert radios == [("1", ""), ("2", ""), ("3", ""), ("4", " checked"), ("5", "")]
    assert all(f'<label for="rating-{n}">' in page.text for n in range(1, 6))
    assert "<script" not in page.text

    done = await hub.client.post(
        f"/csat/{key}", data={"rating": "5", "comment": "  Quick and kind.  "}, headers={"Origin": PUBLIC_URL}
    )
    assert done.status_code == 200, done.text
    assert "Thank you" in done.text
    assert (await ticket(hub, token))["csat"]["comment"] == "Quick and kind."

    # Changing one's mind within 14 days replaces the answer; the page shows it chosen.
    changed = await hub.client.post(f"/csat/{key}", data={"rating": "3", "comment": ""})
    assert changed.status_code == 200
    [survey] = await surveys(hub)
    assert (survey.rating, survey.comment) == (3, None)
    assert 'value="3" checked' in (await hub.client.get(f"/csat/{key}")).text
    assert (await ticket(hub, token))["status"] == "resolved"


async def test_bad_input_other_sites_unknown_and_expired_keys_record_nothing(
    hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    token = await answered_sms_ticket(hub, fake_twilio)
    await set_status(hub, token, "resolved")
    key = await survey_key(fake_twilio, 3)

    no_rating = await hub.client.post(f"/csat/{key}", data={"comment": "hm"})
    assert no_rating.status_code == 422
    assert 'role="alert"' in no_rating.text
    assert "Choose a rating" in no_rating.text
    too_long = await hub.client.post(f"/csat/{key}", data={"rating": "2", "comment": "x" * 1001})
    assert too_long.status_code == 422
    assert "1001 characters" in too_long.text
    cross_site = await hub.client.post(f"/csat/{key}", data={"rating": "1"}, headers={"Origin": "https://evil.example"})
    assert cross_site.status_code == 403
    fetched_cross_site = await hub.client.post(
        f"/csat/{key}", data={"rating": "1"}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert fetched_cross_site.status_code == 403
    assert [s.rating for s in await surveys(hub)] == [None]

    unknown = await hub.client.get("/csat/" + "A" * 43, headers={"Accept": "text/html"})
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("text/html")
    assert "Survey not found" in unknown.text
    assert "Sondage introuvable" in unknown.text  # the language is not known: both
    assert (await hub.client.post("/csat/short", data={"rating": "5"})).status_code == 404

    async with hub.runtime.transaction() as tx:
        await tx.conn.execute(update(SURVEYS).values(sent_at=utcnow() - timedelta(days=15)))
    closed = await hub.client.get(f"/csat/{key}")
    assert closed.status_code == 410
    assert "This survey has closed" in closed.text
    late = await hub.client.post(f"/csat/{key}", data={"rating": "5"})
    assert late.status_code == 410
    assert [s.rating for s in await surveys(hub)] == [None]
    # A digit by text after 14 days is just a message.
    await text_hub(hub.client, RESIDENT, "5")
    assert [s.rating for s in await surveys(hub)] == [None]


async def test_the_survey_page_is_rate_limited_per_client(hub: Hub) -> None:
    statuses = [(await hub.client.get("/csat/" + "B" * 43)).status_code for _ in range(25)]
    assert statuses[0] == 404
    assert 429 in statuses


async def open_chat(hub: Hub) -> None:
    async with hub.runtime.transaction() as tx:
        await chat.open_conversation(
            tx,
            hub.runtime.settings,
            hub.runtime.templates,
            cid="first-message",
            body="Is the library open Monday?",
            language="en",
            name=None,
            email=None,
            phone=None,
            now=utcnow(),
        )


async def test_a_chat_still_open_is_asked_in_the_chat_before_it_ends(hub: Hub) -> None:
    await open_chat(hub)
    token = await hub.agent_token()
    await reply(hub, token, "Yes, from 9 to 5.")
    await set_status(hub, token, "resolved")

    [survey] = await surveys(hub)
    assert survey.channel == "chat"
    async with hub.runtime.engine.connect() as conn:
        rows = (await conn.execute(select(MESSAGES).order_by(MESSAGES.c.seq))).all()
    notices = [(r.meta or {}).get("auto") for r in rows if r.author_agent_id is None and r.direction == "out"]
    assert notices == ["ack", "csat", "closed"]  # asked while the resident is still there, then the chat ends
    question = next(r for r in rows if (r.meta or {}).get("auto") == "csat")
    assert LINK.search(question.body) is not None
    assert question.conversation_id is not None  # a chat message, numbered in the conversation


async def test_a_chat_the_resident_ended_is_not_asked(hub: Hub) -> None:
    await open_chat(hub)
    token = await hub.agent_token()
    await reply(hub, token, "Yes, from 9 to 5.")
    async with hub.runtime.transaction() as tx:
        conversation = await chat_repository.latest_for_ticket(tx.conn, 1)
        assert conversation is not None
        await chat.close(
            tx, hub.runtime.settings, hub.runtime.templates, conversation, transcript_to=None, now=utcnow()
        )
    await set_status(hub, token, "resolved")
    assert await surveys(hub) == []


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_survey_email_declares_its_language_and_ends_with_the_casl_identity(language: str) -> None:
    templates = MessageTemplates(default_templates_dir())
    settings = Settings(env="test")
    url = f"{PUBLIC_URL}/csat/{'k' * 43}"
    text, html = templates.render_email(
        "csat", language, **email_context(settings, REF, contact_name="Jane <b>Doe</b>"), survey_url=url
    )
    assert html.startswith("<!DOCTYPE html>")
    assert f'<html lang="{language}">' in html
    assert "Jane &lt;b&gt;Doe&lt;/b&gt;" in html  # escaped in HTML
    assert text.splitlines()[-4:] == [
        settings.city_name,
        settings.city_postal_address,
        ("Phone: " if language == "en" else "Téléphone : ") + settings.city_phone,
        settings.city_website,
    ]
    assert html.count(f'href="{url}?rating=') == 5
    assert mail_context(text) == {"survey_url": url}  # what delivery reads back to build the HTML part
