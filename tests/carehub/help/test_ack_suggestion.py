"""An answer in the acknowledgement (off by default, per topic): a text or email that confidently matches a
published article of a chosen topic gets the article's link in its acknowledgement, with "reply to talk to a
person"; it is a ticket all the same. Other topics, vague messages and the default settings get none."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from carehub.clock import utcnow
from carehub.help import search, service
from carehub.help.suggestion import confident, in_text
from carehub.settings import Settings
from tests.conftest import Hub, mail_settings, running_hub
from tests.fakes.smtp_server import SmtpSink
from tests.fakes.twilio_api import FakeTwilioApi
from tests.support.mail import post_email, resident_mail
from tests.support.twilio import text_hub

WASTE_ANSWER = "https://hub.test/help/missed-waste-collection"
FIXTURES = Path(__file__).with_name("fixtures")


async def seeded(hub: Hub) -> Hub:
    await service.seed(hub.runtime.engine, service.load_drafts(service.EXAMPLES), utcnow())
    return hub


@pytest.fixture
async def waste_answers(settings: Settings) -> AsyncIterator[Hub]:
    async with running_hub(settings.model_copy(update={"help_ack_topics": ["waste"]})) as hub:
        yield await seeded(hub)


async def acknowledgement(hub: Hub, fake_twilio: FakeTwilioApi, number: str, body: str) -> str:
    """The acknowledgement this text got (which names its ticket: a suggestion never stands in for one)."""
    assert (await text_hub(hub.client, number, body)).status_code == 200
    (ack,) = [m for m in await fake_twilio.wait_for(len(fake_twilio.accepted) + 1) if m.to == number]
    assert "PKR-" in (ack.body or "")
    return ack.body or ""


async def test_a_confident_match_of_a_chosen_topic_is_suggested_in_the_text(
    waste_answers: Hub, fake_twilio: FakeTwilioApi
) -> None:
    ack = await acknowledgement(waste_answers, fake_twilio, "+19055550181", "My garbage wasn't picked up this week")
    assert f"This may answer your question: Missed waste collection {WASTE_ANSWER} Reply to talk to a person." in ack
    assert ack.index("PKR-000001") < ack.index(WASTE_ANSWER)  # after the usual acknowledgement


async def test_other_topics_vague_messages_and_the_default_get_no_suggestion(
    waste_answers: Hub, settings: Settings, fake_twilio: FakeTwilioApi
) -> None:
    pothole = await acknowledgement(waste_answers, fake_twilio, "+19055550182", "Huge pothole on Kingston Road")
    vague = await acknowledgement(waste_answers, fake_twilio, "+19055550183", "Hello, can someone call me back")
    assert "/help/" not in pothole  # roads is not a chosen topic
    assert "/help/" not in vague
    async with running_hub(settings) as default:
        await seeded(default)
        off = await acknowledgement(default, fake_twilio, "+19055550184", "My garbage wasn't picked up this week")
    assert "/help/" not in off


async def test_mail_gets_the_suggestion_in_text_and_html(settings: Settings, smtp_sink: SmtpSink) -> None:
    configured = mail_settings(settings, smtp_sink, help_ack_topics=["waste"])
    async with running_hub(configured) as hub:
        await seeded(hub)
        raw = resident_mail("jo@mail.example", "Missed pickup", "Our green bin was not emptied on Tuesday.\n")
        assert (await post_email(hub.client, raw)).json()["status"] == "processed"
        (mail,) = await smtp_sink.wait_for(1)
    text = mail.message.get_body(("plain",))
    html = mail.message.get_body(("html",))
    assert text is not None
    assert html is not None
    assert f"This may answer your question: Missed waste collection\n{WASTE_ANSWER}\n" in text.get_content()
    assert f'<a href="{WASTE_ANSWER}">Missed waste collection</a>. Reply to talk to a person.' in html.get_content()


VAGUE = [
    "Hello, can someone call me back",
    "I have a question about my account",
    "Please help me",
    "Who do I talk to about this?",
    "thank you for your help",
    "I want to make a complaint",
    "Is anyone there?",
    "my neighbour is annoying",
    "When is the office open",
    "I need information",
]


async def test_suggestions_on_the_quality_fixture_are_nearly_always_right(hub: Hub) -> None:
    drafts = service.load_drafts(FIXTURES / "articles.json")
    await service.seed(hub.runtime.engine, drafts, utcnow())
    questions = json.loads((FIXTURES / "questions.json").read_text(encoding="utf-8"))
    given = right = 0
    for question in questions:
        top = confident(await search.search(hub.runtime.engine, question["q"], "en", limit=2))
        given += top is not None
        right += top is not None and top.key == question["expect"]
    vague = [v for v in VAGUE if confident(await search.search(hub.runtime.engine, v, "en", limit=2)) is not None]
    print(f"\nacknowledgement suggestions: {given} of {len(questions)} questions, {right} right; vague: {vague}")  # noqa: T201
    assert right >= 0.95 * given
    assert given >= 0.5 * len(questions)  # useful, not only safe
    assert vague == []


def test_a_stored_acknowledgement_gives_its_suggestion_back() -> None:
    stored = f"... Your reference is PKR-000001.\nThis may answer your question: Bulky items {WASTE_ANSWER}x Reply"
    found = in_text(stored)
    assert found is not None
    assert (found.title, found.url) == ("Bulky items", f"{WASTE_ANSWER}x")
    assert in_text("Your reference is PKR-000001.") is None
