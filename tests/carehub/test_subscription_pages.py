"""The residents' alert pages and the topics/areas API, through the real app on SQLite and PostgreSQL: the subscribe
form's checks, double opt-in by texted code and by mailed link (a GET of the link changes nothing), RFC 8058
one-click unsubscribe with no cookie, the CASL consent record, and staff-only changes to topics and areas."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select

from carehub.models import Role, Subscription, SubscriptionStatus
from carehub.subscriptions import places, tokens
from carehub.subscriptions import repository as subs
from carehub.subscriptions.page_text import consent_wording
from channels.base import ChannelKind
from tests.conftest import Hub
from tests.fakes.smtp_server import SmtpSink
from tests.fakes.twilio_api import FakeTwilioApi
from tests.support.identities import PUBLIC_URL

RESIDENT = "+19055550123"
RESIDENT_TYPED = "(905) 555-0123"
CASL_SENTENCE = (
    "I agree to receive alerts from the City of Pickering about the topics I chose. I can unsubscribe at any time."
)
CODE = re.compile(r"\b(\d{6})\b")
CONFIRM_LINK = re.compile(re.escape(PUBLIC_URL) + r"(/alerts/confirm/[0-9]+\.[A-Za-z0-9_-]+)\?c=([A-Za-z0-9_-]+)")
UNSUBSCRIBE_LINK = re.compile(r'href="(/alerts/unsubscribe/[0-9]+\.[A-Za-z0-9_-]+)\?lang=en"')
# RFC 8058 lets the provider send the field as multipart/form-data too.
MULTIPART_ONE_CLICK = (
    b'--b0undary\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--b0undary--\r\n'
)
SUBSCRIPTIONS = Subscription.__table__  # type: ignore[attr-defined]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def form(**fields: Any) -> list[tuple[str, str]]:
    """Form fields as a browser posts them; topics=[...] become repeated `topic` fields."""
    pairs = [("topic", slug) for slug in fields.pop("topics", [])]
    return pairs + [(name, str(value)) for name, value in fields.items()]


async def subscribe(hub: Hub, lang: str = "en", **fields: Any) -> httpx.Response:
    return await hub.client.post(
        f"/alerts/subscribe?lang={lang}",
        content=urlencode(form(**fields)),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


async def address_id(hub: Hub, channel: ChannelKind, address: str) -> int:
    async with hub.runtime.transaction() as tx:
        found = await subs.existing_address_id(tx.conn, channel, address)
    assert found is not None
    return found


async def subscriptions(hub: Hub, address: int) -> list[subs.SubscriptionRow]:
    async with hub.runtime.transaction() as tx:
        return await subs.subscriptions_of(tx.conn, address)


async def consents(hub: Hub, address: int) -> list[dict[str, Any]]:
    async with hub.runtime.transaction() as tx:
        return await subs.consents_of(tx.conn, address)


async def texted_code(fake_twilio: FakeTwilioApi, count: int = 1) -> str:
    sent = await fake_twilio.wait_for(count)
    assert sent[count - 1].to == RESIDENT
    found = CODE.search(sent[count - 1].body or "")
    assert found is not None, sent[count - 1].body
    return found.group(1)


async def subscribed_by_phone(hub: Hub, fake_twilio: FakeTwilioApi, topics: list[str]) -> httpx.Response:
    asked = await subscribe(hub, topics=topics, phone=RESIDENT_TYPED, language="en", consent="yes")
    assert asked.status_code == 200, asked.text
    code = await texted_code(fake_twilio)
    confirmed = await hub.client.post("/alerts/confirm?lang=en", data={"phone": RESIDENT, "code": code})
    assert confirmed.status_code == 200, confirmed.text
    return confirmed


# ---------------------------------------------------------------- the form


async def test_the_form_shows_every_topic_unchecked_and_the_consent_in_full(hub: Hub) -> None:
    page = await hub.client.get("/alerts/subscribe")
    assert page.status_code == 200
    assert '<html lang="en">' in page.text
    for slug in ("emergencies", "water", "snow", "waste", "roads"):
        assert f'id="topic-{slug}" name="topic" value="{slug}">' in page.text  # present, not checked
    assert CASL_SENTENCE in page.text
    assert 'id="consent" name="consent" value="yes"' in page.text
    assert "checked" not in page.text.split('id="consent"')[1].split(">")[0]
    for identity in ("One The Esplanade, Pickering, ON L1V 6K7", "905-683-7575", "https://www.pickering.ca"):
        assert identity in page.text
    assert 'href="/alerts/subscribe?lang=fr"' in page.text


async def test_the_form_in_french(hub: Hub) -> None:
    page = await hub.client.get("/alerts/subscribe?lang=fr")
    assert '<html lang="fr">' in page.text
    assert "Quelles alertes voulez-vous recevoir?" in page.text
    assert "Déneigement" in page.text
    assert "Je peux me désabonner en tout temps." in page.text
    assert 'href="/alerts/subscribe?lang=en"' in page.text


async def test_every_problem_is_listed_linked_to_its_field_and_the_answers_are_kept(hub: Hub) -> None:
    page = await subscribe(hub, phone="555-01", email="", postal_code="12345", language="en")
    assert page.status_code == 422
    assert "<title>Error: Get city alerts" in page.text
    summary = page.text.split('class="error-summary"')[1].split("</div>")[0]
    assert 'href="#topic-emergencies">Choose at least one kind of alert.' in summary
    assert 'href="#postal_code">Enter a Canadian postal code' in summary
    assert 'href="#phone">Enter a Canadian or US mobile number' in summary
    assert 'href="#consent">Tick the box to agree to receive alerts.' in summary
    assert 'value="555-01" aria-describedby="phone-hint phone-error" aria-invalid="true"' in page.text
    assert 'value="12345"' in page.text


async def test_a_resident_must_give_a_way_to_reach_them_and_tick_consent(hub: Hub) -> None:
    page = await subscribe(hub, topics=["snow"], language="en")
    assert page.status_code == 422
    assert "Give a mobile number or an email address." in page.text
    assert "Tick the box to agree to receive alerts." in page.text
    assert 'value="snow" checked' in page.text
    bad_email = await subscribe(hub, topics=["snow"], email="not-an-address", consent="yes", language="en")
    assert bad_email.status_code == 422
    assert "Enter an email address in the form name@example.com." in bad_email.text


async def test_nothing_is_recorded_or_sent_when_the_form_has_a_problem(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    page = await subscribe(hub, topics=["snow"], phone=RESIDENT_TYPED, language="en")  # no consent
    assert page.status_code == 422
    async with hub.runtime.transaction() as tx:
        assert await subs.existing_address_id(tx.conn, ChannelKind.SMS, RESIDENT) is None
    assert fake_twilio.accepted == []


# ---------------------------------------------------------------- by text message


async def test_a_phone_subscription_starts_only_with_the_texted_code(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    asked = await subscribe(hub, topics=["snow", "water"], phone=RESIDENT_TYPED, language="en", consent="yes")
    assert asked.status_code == 200, asked.text
    assert "Enter the code we texted you" in asked.text
    assert f'name="phone" value="{RESIDENT}"' in asked.text
    code = await texted_code(fake_twilio)
    [text] = fake_twilio.accepted
    assert "City of Pickering" in (text.body or "")
    resident = await address_id(hub, ChannelKind.SMS, RESIDENT)
    assert {s.status for s in await subscriptions(hub, resident)} == {SubscriptionStatus.PENDING}

    wrong = "000000" if code != "000000" else "111111"
    refused = await hub.client.post("/alerts/confirm?lang=en", data={"phone": RESIDENT, "code": wrong})
    assert refused.status_code == 422
    assert "That code is not right, or it has expired." in refused.text
    assert {s.status for s in await subscriptions(hub, resident)} == {SubscriptionStatus.PENDING}

    confirmed = await hub.client.post("/alerts/confirm?lang=en", data={"phone": RESIDENT, "code": code})
    assert confirmed.status_code == 200, confirmed.text
    assert "You&#39;re subscribed" in confirmed.text
    assert "Snow clearing" in confirmed.text
    assert "Water service" in confirmed.text
    assert "reply STOP" in confirmed.text
    assert len(UNSUBSCRIBE_LINK.findall(confirmed.text)) == 2
    assert {s.status for s in await subscriptions(hub, resident)} == {SubscriptionStatus.ACTIVE}

    records = await consents(hub, resident)
    requested = [r for r in records if r["action"] == "requested"]
    given = [r for r in records if r["action"] == "given"]
    assert len(requested) == 2
    assert len(given) == 2
    wording = consent_wording(hub.settings, "en")
    assert wording.startswith(CASL_SENTENCE)
    assert "One The Esplanade" in wording
    for record in given:
        assert record["method"] == "web_form"
        assert record["wording"] == wording
        assert record["channel"] == "sms"


async def test_the_code_text_and_page_follow_the_chosen_language(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    asked = await subscribe(hub, "fr", topics=["snow"], phone=RESIDENT_TYPED, language="fr", consent="yes")
    assert asked.status_code == 200
    assert '<html lang="fr">' in asked.text
    assert "Entrez le code reçu par texto" in asked.text
    [text] = await fake_twilio.wait_for(1)
    assert "votre code est" in (text.body or "")


async def test_postal_codes_place_a_resident_in_an_area_or_the_whole_city(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    token = await hub.agent_token(Role.COMMUNICATIONS, "comms@city.test")
    for slug, name, codes in (("ward-1", "Ward 1", ["L1V"]), ("ward-2", "Ward 2", ["l1v 6k7"])):
        put = await hub.client.put(
            f"/api/v1/areas/{slug}", json={"name": name, "kind": "ward", "postal_codes": codes}, headers=bearer(token)
        )
        assert put.status_code == 201, put.text
    exact = await subscribe(
        hub, topics=["snow"], phone=RESIDENT_TYPED, postal_code="l1v6k7", language="en", consent="yes"
    )
    assert "Your alerts will be for Ward 2 and for the whole city." in exact.text
    by_fsa = await subscribe(
        hub, topics=["roads"], phone=RESIDENT_TYPED, postal_code="L1V 1B2", language="en", consent="yes"
    )
    assert "Your alerts will be for Ward 1 and for the whole city." in by_fsa.text
    elsewhere = await subscribe(
        hub, topics=["water"], phone=RESIDENT_TYPED, postal_code="K1A 0B1", language="en", consent="yes"
    )
    assert "so your alerts will be for the whole city" in elsewhere.text
    async with hub.runtime.transaction() as tx:
        areas = {a.id: a.slug for a in await places.areas(tx.conn)}
        topics = {t.id: t.slug for t in await subs.topics(tx.conn)}
    resident = await address_id(hub, ChannelKind.SMS, RESIDENT)
    placed = {
        topics[s.topic_id]: areas.get(s.area_id) if s.area_id else None for s in await subscriptions(hub, resident)
    }
    assert placed == {"snow": "ward-2", "roads": "ward-1", "water": None}


async def test_one_address_cannot_be_sent_code_after_code(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    for _ in range(3):
        asked = await subscribe(hub, topics=["snow"], phone=RESIDENT_TYPED, language="en", consent="yes")
        assert asked.status_code == 200
    limited = await subscribe(hub, topics=["snow"], phone=RESIDENT_TYPED, language="en", consent="yes")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "60"
    await fake_twilio.wait_for(3)
    assert len(fake_twilio.accepted) == 3


# ---------------------------------------------------------------- by email


async def test_an_email_subscription_is_confirmed_by_a_button_not_by_opening_the_link(
    mail_hub: Hub, smtp_sink: SmtpSink
) -> None:
    hub = mail_hub
    asked = await subscribe(hub, topics=["waste"], email="Resident@Example.com", language="en", consent="yes")
    assert asked.status_code == 200, asked.text
    assert "Check your email" in asked.text
    [mail] = await smtp_sink.wait_for(1)
    assert mail.rcpt_tos == ("resident@example.com",)
    assert mail.message["Subject"] == "Confirm your alerts from the City of Pickering"
    body = mail.message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    for identity in ("City of Pickering", "One The Esplanade, Pickering, ON L1V 6K7", "905-683-7575"):
        assert identity in text
    assert "If you did not ask for alerts, ignore this email" in text
    found = CONFIRM_LINK.search(text)
    assert found is not None, text
    path, code = found.groups()
    resident = await address_id(hub, ChannelKind.EMAIL, "resident@example.com")

    for _ in range(2):  # a mail scanner fetching the link, then the resident
        page = await hub.client.get(f"{path}?c={code}")
        assert page.status_code == 200
        assert "Confirm my subscription" in page.text
    assert {s.status for s in await subscriptions(hub, resident)} == {SubscriptionStatus.PENDING}
    assert [r["action"] for r in await consents(hub, resident)] == ["requested"]

    confirmed = await hub.client.post(f"{path}?lang=en", data={"c": code})
    assert confirmed.status_code == 200, confirmed.text
    assert "You&#39;re subscribed" in confirmed.text
    assert "Garbage and recycling" in confirmed.text
    assert {s.status for s in await subscriptions(hub, resident)} == {SubscriptionStatus.ACTIVE}
    given = [r for r in await consents(hub, resident) if r["action"] == "given"]
    assert [(r["method"], r["channel"]) for r in given] == [("email_link", "email")]
    assert given[0]["wording"] == consent_wording(hub.settings, "en")

    used = await hub.client.get(f"{path}?c={code}")
    assert used.status_code == 410


async def test_a_confirmation_link_with_a_wrong_code_or_forged_token_confirms_nothing(
    mail_hub: Hub, smtp_sink: SmtpSink
) -> None:
    hub = mail_hub
    await subscribe(hub, topics=["waste"], email="resident@example.com", language="en", consent="yes")
    [mail] = await smtp_sink.wait_for(1)
    body = mail.message.get_body(("plain",))
    assert body is not None
    found = CONFIRM_LINK.search(body.get_content())
    assert found is not None
    path, _ = found.groups()
    assert (await hub.client.get(f"{path}?c=wrong")).status_code == 410
    assert (await hub.client.post(path, data={"c": "wrong"})).status_code == 410
    forged = path.rsplit(".", 1)[0] + ".AAAAAAAAAAAAAAAAAAAAAA"
    assert (await hub.client.get(f"{forged}?c=x")).status_code == 404


# ---------------------------------------------------------------- unsubscribing


def one_click_client(hub: Hub, seen: list[httpx.Request]) -> httpx.AsyncClient:
    """A client like a mail provider's server: its own connection, no cookies, records what it sent."""

    async def record(request: httpx.Request) -> None:
        seen.append(request)

    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=hub.app), base_url=PUBLIC_URL, event_hooks={"request": [record]}
    )


async def only_subscription(hub: Hub) -> subs.SubscriptionRow:
    resident = await address_id(hub, ChannelKind.SMS, RESIDENT)
    [subscription] = await subscriptions(hub, resident)
    return subscription


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
async def test_one_click_unsubscribe_works_without_cookies_and_is_idempotent(
    hub: Hub, fake_twilio: FakeTwilioApi, encoding: str
) -> None:
    await subscribed_by_phone(hub, fake_twilio, ["snow"])
    subscription = await only_subscription(hub)
    url = f"/alerts/unsubscribe/{tokens.sign(hub.settings, tokens.UNSUBSCRIBE, subscription.id)}"
    if encoding == "urlencoded":
        content = b"List-Unsubscribe=One-Click"
        content_type = "application/x-www-form-urlencoded"
    else:
        content = MULTIPART_ONE_CLICK
        content_type = "multipart/form-data; boundary=b0undary"
    seen: list[httpx.Request] = []
    async with one_click_client(hub, seen) as provider:
        for _ in range(2):
            done = await provider.post(url, content=content, headers={"Content-Type": content_type})
            assert done.status_code == 200, done.text
            assert "You&#39;re unsubscribed" in done.text
            assert "Snow clearing" in done.text
    assert all("cookie" not in request.headers for request in seen)
    assert (await only_subscription(hub)).status is SubscriptionStatus.ENDED
    withdrawn = [r for r in await consents(hub, subscription.address_id) if r["action"] == "withdrawn"]
    assert len(withdrawn) == 1  # the second post changed nothing
    assert withdrawn[0]["method"] == "one_click"
    assert withdrawn[0]["topic_id"] == subscription.topic_id


async def test_the_unsubscribe_page_says_what_stops_and_its_button_records_an_email_link(
    hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    confirmed = await subscribed_by_phone(hub, fake_twilio, ["snow"])
    [path] = UNSUBSCRIBE_LINK.findall(confirmed.text)
    page = await hub.client.get(f"{path}?lang=en")
    assert page.status_code == 200
    assert "You will stop getting Snow clearing alerts by text message." in page.text
    assert (await only_subscription(hub)).status is SubscriptionStatus.ACTIVE  # looking changes nothing
    french = await hub.client.get(f"{path}?lang=fr")
    assert "Vous ne recevrez plus les alertes « Déneigement » par texto." in french.text
    done = await hub.client.post(f"{path}?lang=en", data={})
    assert done.status_code == 200
    assert (await only_subscription(hub)).status is SubscriptionStatus.ENDED
    subscription = await only_subscription(hub)
    [withdrawn] = [r for r in await consents(hub, subscription.address_id) if r["action"] == "withdrawn"]
    assert withdrawn["method"] == "email_link"
    assert withdrawn["wording"] == "Unsubscribe from Snow clearing"
    again = await hub.client.get(f"{path}?lang=en")
    assert "You are not subscribed to Snow clearing alerts by text message." in again.text


async def test_a_bad_unsubscribe_token_is_not_found(hub: Hub) -> None:
    forged = tokens.sign(hub.settings, tokens.CONFIRM, 1)  # signed, but for another purpose
    for token in ("1.AAAAAAAAAAAAAAAAAAAAAA", "nonsense", forged):
        page = await hub.client.get(f"/alerts/unsubscribe/{token}")
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert "Page not found" in page.text
        posted = await hub.client.post(
            f"/alerts/unsubscribe/{token}",
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        )
        assert posted.status_code == 404
        assert posted.headers["content-type"] == "application/problem+json"
        assert posted.json()["status"] == 404
    never = tokens.sign(hub.settings, tokens.UNSUBSCRIBE, 999_999)  # ours, but no such subscription
    assert (await hub.client.get(f"/alerts/unsubscribe/{never}")).status_code == 404


# ---------------------------------------------------------------- the topics and areas API


async def test_anyone_can_list_topics_and_only_communications_or_admins_change_them(hub: Hub) -> None:
    listed = await hub.client.get("/api/v1/topics")
    assert listed.status_code == 200
    assert {
        "slug": "snow",
        "keyword": "SNOW",
        "name_en": "Snow clearing",
        "name_fr": "Déneigement",
        "active": True,
    } in (listed.json())
    topic = {"keyword": "parks", "name_en": "Parks", "name_fr": "Parcs"}
    agent = await hub.agent_token(Role.AGENT, "agent@city.test")
    refused = await hub.client.put("/api/v1/topics/parks", json=topic, headers=bearer(agent))
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert (await hub.client.put("/api/v1/topics/parks", json=topic)).status_code == 401

    comms = await hub.agent_token(Role.COMMUNICATIONS, "comms@city.test")
    created = await hub.client.put("/api/v1/topics/parks", json=topic, headers=bearer(comms))
    assert created.status_code == 201, created.text
    assert created.json()["keyword"] == "PARKS"
    renamed = await hub.client.put(
        "/api/v1/topics/parks", json={**topic, "name_en": "Parks and trails"}, headers=bearer(comms)
    )
    assert renamed.status_code == 200
    assert renamed.json()["name_en"] == "Parks and trails"
    taken = await hub.client.put("/api/v1/topics/parks", json={**topic, "keyword": "SNOW"}, headers=bearer(comms))
    assert taken.status_code == 409
    assert "SNOW" in taken.json()["detail"]
    for keyword in ("P", "PARKS2", "ÉTÉ", "A" * 17):
        bad = await hub.client.put("/api/v1/topics/parks", json={**topic, "keyword": keyword}, headers=bearer(comms))
        assert bad.status_code == 422, keyword
        assert "2 to 16 letters" in bad.json()["detail"]
    admin = await hub.agent_token(Role.ADMIN, "admin@city.test")
    retired = await hub.client.put("/api/v1/topics/parks", json={**topic, "active": False}, headers=bearer(admin))
    assert retired.status_code == 200
    assert "parks" not in {t["slug"] for t in (await hub.client.get("/api/v1/topics")).json()}
    assert "Parks" not in (await hub.client.get("/alerts/subscribe")).text


SQUARE = {
    "type": "Polygon",
    "coordinates": [[[-79.1, 43.8], [-79.0, 43.8], [-79.0, 43.9], [-79.1, 43.9], [-79.1, 43.8]]],
}


async def test_areas_are_written_by_communications_with_checked_geometry(hub: Hub) -> None:
    agent = await hub.agent_token(Role.AGENT, "agent@city.test")
    comms = await hub.agent_token(Role.COMMUNICATIONS, "comms@city.test")
    area = {"name": "Ward 1", "kind": "ward", "geometry": SQUARE, "postal_codes": ["l1v 6k7", "L1W"]}
    assert (await hub.client.put("/api/v1/areas/ward-1", json=area, headers=bearer(agent))).status_code == 403
    created = await hub.client.put("/api/v1/areas/ward-1", json=area, headers=bearer(comms))
    assert created.status_code == 201, created.text
    assert created.json()["postal_codes"] == ["L1V 6K7", "L1W"]
    [listed] = (await hub.client.get("/api/v1/areas")).json()
    assert listed["slug"] == "ward-1"
    assert listed["geometry"] == SQUARE

    open_ring = {**SQUARE, "coordinates": [[*SQUARE["coordinates"][0][:-1], [-79.05, 43.95]]]}
    cases = [
        ({"type": "Point", "coordinates": [-79.0, 43.8]}, "must be 'Polygon' or 'MultiPolygon'"),
        (open_ring, "not closed"),
        ({"type": "Polygon", "coordinates": [[[-79.1, 43.8], [-79.0, 43.8], [-79.1, 43.8]]]}, "at least 4 positions"),
        (
            {"type": "Polygon", "coordinates": [[[-79.1, 43.8], [-79.0, 95.0], [-79.0, 43.9], [-79.1, 43.8]]]},
            "coordinates[0][1]: the latitude 95.0 is outside -90 to 90",
        ),
    ]
    for geometry, message in cases:
        refused = await hub.client.put(
            "/api/v1/areas/ward-1", json={**area, "geometry": geometry}, headers=bearer(comms)
        )
        assert refused.status_code == 422, geometry
        assert refused.headers["content-type"] == "application/problem+json"
        assert message in refused.json()["detail"]
    bad_code = await hub.client.put(
        "/api/v1/areas/ward-1", json={**area, "postal_codes": ["L1V", "90210"]}, headers=bearer(comms)
    )
    assert bad_code.status_code == 422
    assert "postal_codes[1]" in bad_code.json()["detail"]
    assert (
        await hub.client.put("/api/v1/areas/ward-2", json={"name": "Empty"}, headers=bearer(comms))
    ).status_code == 422


async def test_an_area_body_may_be_larger_than_other_requests_but_is_still_limited(hub: Hub) -> None:
    comms = await hub.agent_token(Role.COMMUNICATIONS, "comms@city.test")
    ring = [[-79.1 + i * 1e-5, 43.8] for i in range(9_000)] + [[-79.0, 43.9], [-79.1, 43.8]]
    big = {"name": "Ward 3", "geometry": {"type": "Polygon", "coordinates": [ring]}}
    accepted = await hub.client.put("/api/v1/areas/ward-3", json=big, headers=bearer(comms))
    assert accepted.status_code == 201, accepted.text[:300]
    huge = {"name": "Ward 3", "postal_codes": ["L1V"] * 200_000}
    refused = await hub.client.put("/api/v1/areas/ward-3", json=huge, headers=bearer(comms))
    assert refused.status_code == 413
    assert (await hub.client.post("/alerts/subscribe", content=b"x" * 9_000)).status_code == 413


async def test_a_subscription_for_a_retired_topic_is_refused(hub: Hub) -> None:
    async with hub.runtime.engine.connect() as conn:
        assert (await conn.execute(select(SUBSCRIPTIONS))).first() is None
    page = await subscribe(hub, topics=["gardening"], phone=RESIDENT_TYPED, language="en", consent="yes")
    assert page.status_code == 422
    assert "Choose at least one kind of alert." in page.text


async def test_a_phone_and_an_email_are_each_asked_for_their_own_consent(
    mail_hub: Hub, fake_twilio: FakeTwilioApi, smtp_sink: SmtpSink
) -> None:
    hub = mail_hub
    asked = await subscribe(
        hub, topics=["roads"], phone=RESIDENT_TYPED, email="resident@example.com", language="en", consent="yes"
    )
    assert asked.status_code == 200, asked.text
    assert "Enter the code we texted you" in asked.text
    assert "We sent an email to resident@example.com." in asked.text
    await texted_code(fake_twilio)
    await smtp_sink.wait_for(1)
    contacts = set()
    for channel, address in ((ChannelKind.SMS, RESIDENT), (ChannelKind.EMAIL, "resident@example.com")):
        resident = await address_id(hub, channel, address)
        assert [s.status for s in await subscriptions(hub, resident)] == [SubscriptionStatus.PENDING]
        async with hub.runtime.transaction() as tx:
            contacts.add(await subs.contact_of(tx.conn, resident))
    assert len(contacts) == 1  # one resident: an alert whose text fails can reach them by mail


async def test_a_form_posted_from_another_site_is_refused(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    fields = urlencode(form(topics=["snow"], phone=RESIDENT_TYPED, language="en", consent="yes"))
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
        refused = await hub.client.post(
            "/alerts/subscribe",
            content=fields,
            headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
        )
        assert refused.status_code == 403
    assert fake_twilio.accepted == []


async def test_typing_an_address_that_is_already_subscribed_shows_no_unsubscribe_links(
    hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    await subscribed_by_phone(hub, fake_twilio, ["snow"])
    again = await subscribe(hub, topics=["snow"], phone=RESIDENT_TYPED, language="en", consent="yes")
    assert again.status_code == 200
    assert "You&#39;re subscribed" in again.text
    assert "Snow clearing" in again.text
    assert "/alerts/unsubscribe/" not in again.text  # anyone can type a number; only its holder gets the links
    assert len(fake_twilio.accepted) == 1  # no second code: nothing was pending


async def test_one_click_posts_from_one_mail_provider_are_never_rate_limited(
    hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    await subscribed_by_phone(hub, fake_twilio, ["snow"])
    subscription = await only_subscription(hub)
    url = f"/alerts/unsubscribe/{tokens.sign(hub.settings, tokens.UNSUBSCRIBE, subscription.id)}"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    for _ in range(70):  # past the per-client page limit (60 a minute, in bursts of 30)
        done = await hub.client.post(url, content=b"List-Unsubscribe=One-Click", headers=headers)
        assert done.status_code == 200
