"""The city's own alerts as a CAP 1.2 feed: every published message valid against the schema and read back by our
own CAP parser as staff wrote it; updates reference their alert, a cancel part-way is a Cancel; drafts and alerts
that never started stay out; the Atom feed lists the newest first and its links resolve."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from lxml import etree  # type: ignore[import-untyped]

from carehub.cap.export import PublishedAlert, PublishedArea, Publisher, alert_xml, cap_time
from carehub.cap.parse import SCHEMA_PATH, CapAlert, parse_cap
from carehub.clock import utcnow
from channels.base import ChannelKind
from tests.conftest import Hub, mail_settings, running_hub
from tests.fakes.smtp_server import SmtpSink
from tests.fakes.twilio_api import FakeTwilioApi
from tests.support.alerts import FAST, WATER_MAIN, draft, phone, report_when_done, staff, subscribe
from tests.support.identities import PUBLIC_URL

ATOM = {"atom": "http://www.w3.org/2005/Atom"}
# Ward 1 as GeoJSON: [lon, lat] positions.
WARD = {
    "type": "Polygon",
    "coordinates": [[[-79.1, 43.8], [-79.0, 43.8], [-79.0, 43.9], [-79.1, 43.9], [-79.1, 43.8]]],
}
CLEAR = {
    "sms": "Tap water is safe to drink again.",
    "email_subject": "All clear: tap water is safe",
    "email_body": "The boil water advisory is lifted.\n\nTap water is safe to drink again.",
}
WARD_CAP = "43.8,-79.1 43.8,-79 43.9,-79 43.9,-79.1 43.8,-79.1"  # the same ring in CAP's lat,lon order


@pytest.fixture
async def cap_hub(settings: Any, smtp_sink: SmtpSink) -> AsyncIterator[Hub]:
    async with running_hub(mail_settings(settings, smtp_sink, **FAST)) as running:
        yield running


def valid(xml: bytes) -> bool:
    schema = etree.XMLSchema(etree.parse(str(SCHEMA_PATH)))
    return bool(schema.validate(etree.fromstring(xml)))


async def cap_of(hub: Hub, alert_id: int) -> tuple[bytes, CapAlert]:
    response = await hub.client.get(f"/cap/alerts/{alert_id}.xml")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/cap+xml"
    assert response.headers["cache-control"] == "public, max-age=60"
    assert valid(response.content), response.text
    return response.content, parse_cap(response.content)


async def sent_alert(hub: Hub, headers: dict[str, str], **overrides: Any) -> int:
    created = await hub.client.post("/api/v1/alerts", json=draft(**{"channels": ["sms"], **overrides}), headers=headers)
    assert created.status_code == 201, created.text
    alert_id: int = created.json()["id"]
    sent = await hub.client.post(f"/api/v1/alerts/{alert_id}/send", headers=headers)
    assert sent.status_code == 200, sent.text
    if sent.json()["status"] == "awaiting_approval":  # an emergency or all-residents alert: a second person approves
        approver = await staff(hub, email=f"approver{alert_id}@city.test")
        approved = await hub.client.post(f"/api/v1/alerts/{alert_id}/approve", headers=approver)
        assert approved.status_code == 200, approved.text
    await report_when_done(hub, headers, alert_id)
    return alert_id


async def test_a_sent_alert_and_its_update_are_valid_cap_that_reads_back_as_staff_wrote_them(cap_hub: Hub) -> None:
    await subscribe(cap_hub.runtime, ChannelKind.SMS, [phone(1)])
    headers = await staff(cap_hub)
    area = {"name": "Ward 1", "kind": "ward", "geometry": WARD}
    assert (await cap_hub.client.put("/api/v1/areas/ward-1", json=area, headers=headers)).status_code == 201
    alert_id = await sent_alert(cap_hub, headers, areas=["ward-1"], channels=["sms", "email"])
    update = await cap_hub.client.post(
        f"/api/v1/alerts/{alert_id}/updates",
        json={"kind": "all_clear", "content": {"en": CLEAR}},
        headers=headers,
    )
    assert update.status_code == 201, update.text
    update_id = update.json()["id"]
    await report_when_done(cap_hub, headers, update_id)

    _, alert = await cap_of(cap_hub, alert_id)
    assert alert.identifier == f"urn:carehub:hub.test:alert:{alert_id}"
    assert alert.sender == cap_hub.settings.email_from_address  # no cap_sender set
    assert (alert.status, alert.msg_type, alert.scope, alert.references) == ("Actual", "Alert", "Public", ())
    assert alert.sent.utcoffset() in (timedelta(hours=-5), timedelta(hours=-4))  # America/Toronto
    assert [info.language for info in alert.infos] == ["en", "fr"]
    for info in alert.infos:
        written = WATER_MAIN[info.language]
        assert (info.headline, info.description) == (written["email_subject"], written["email_body"])
        assert info.categories == ("Infra",)
        assert (info.urgency, info.severity, info.certainty) == ("Expected", "Moderate", "Likely")
        assert info.web == "https://hub.test/alerts"
        [ward] = info.areas
        assert (ward.area_desc, ward.polygons) == ("Ward 1", (WARD_CAP,))
    assert [info.event for info in alert.infos] == ["Water service", "Service d'eau"]

    _, clear = await cap_of(cap_hub, update_id)
    assert clear.msg_type == "Update"
    assert clear.references == ((alert.sender, alert.identifier, alert.sent),)
    [english] = clear.infos
    assert (english.headline, english.description) == (CLEAR["email_subject"], CLEAR["email_body"])


async def test_the_feed_lists_what_went_out_newest_first_and_its_links_resolve(cap_hub: Hub) -> None:
    await subscribe(cap_hub.runtime, ChannelKind.SMS, [phone(1)])
    headers = await staff(cap_hub)
    first = await sent_alert(cap_hub, headers, title="First")
    second = await sent_alert(cap_hub, headers, title="Second", topic=None, all_residents=True, emergency=True)
    never_sent = (await cap_hub.client.post("/api/v1/alerts", json=draft(title="Draft"), headers=headers)).json()["id"]
    later = (utcnow() + timedelta(days=1)).isoformat()
    scheduled = (
        await cap_hub.client.post("/api/v1/alerts", json=draft(title="Later", send_at=later), headers=headers)
    ).json()["id"]
    assert (await cap_hub.client.post(f"/api/v1/alerts/{scheduled}/send", headers=headers)).status_code == 200
    assert (await cap_hub.client.post(f"/api/v1/alerts/{scheduled}/cancel", headers=headers)).status_code == 200

    response = await cap_hub.client.get("/cap/alerts.atom")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/atom+xml"
    assert response.headers["cache-control"] == "public, max-age=60"
    feed = etree.fromstring(response.content)
    assert feed.findtext("atom:title", namespaces=ATOM) == "City of Pickering alerts"
    assert feed.find("atom:link[@rel='self']", ATOM).get("href") == f"{PUBLIC_URL}/cap/alerts.atom"
    entries = feed.findall("atom:entry", ATOM)
    assert [e.findtext("atom:title", namespaces=ATOM) for e in entries] == ["Second", "First"]
    assert [e.findtext("atom:id", namespaces=ATOM) for e in entries] == [
        f"urn:carehub:hub.test:alert:{second}",
        f"urn:carehub:hub.test:alert:{first}",
    ]
    for entry in entries:
        link = entry.find("atom:link[@rel='alternate']", ATOM)
        assert link.get("type") == "application/cap+xml"
        resolved = await cap_hub.client.get(link.get("href"))
        assert resolved.status_code == 200
        assert valid(resolved.content)
        assert parse_cap(resolved.content).identifier == entry.findtext("atom:id", namespaces=ATOM)
    for hidden in (never_sent, scheduled):
        assert (await cap_hub.client.get(f"/cap/alerts/{hidden}.xml")).status_code == 404

    _, everyone = await cap_of(cap_hub, second)
    info = everyone.infos[0]
    assert (info.event, info.categories) == ("Alert", ("Safety",))
    assert (info.urgency, info.severity, info.certainty) == ("Immediate", "Severe", "Observed")
    [city] = info.areas
    assert (city.area_desc, city.geocodes) == ("City of Pickering", (("profile:CAP-CP:Location:0.3", "3518001"),))


async def test_an_alert_cancelled_while_sending_is_published_as_a_cancel(
    cap_hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    rt = cap_hub.runtime
    await subscribe(rt, ChannelKind.SMS, [phone(i) for i in range(40)])
    headers = await staff(cap_hub)
    rt.settings.sms_mps = 10.0  # four seconds of sending: time to cancel part-way
    alert_id = (await cap_hub.client.post("/api/v1/alerts", json=draft(channels=["sms"]), headers=headers)).json()["id"]
    await cap_hub.client.post(f"/api/v1/alerts/{alert_id}/send", headers=headers)
    await fake_twilio.wait_for(3)
    assert (await cap_hub.client.post(f"/api/v1/alerts/{alert_id}/cancel", headers=headers)).status_code == 200
    await report_when_done(cap_hub, headers, alert_id)

    _, cancel = await cap_of(cap_hub, alert_id)
    assert cancel.msg_type == "Cancel"
    original = f"urn:carehub:hub.test:alert:{alert_id}"
    assert cancel.identifier == f"{original}:cancel"
    [(sender, identifier, sent)] = cancel.references
    assert (sender, identifier) == (cancel.sender, original)
    assert sent <= cancel.sent
    feed = etree.fromstring((await cap_hub.client.get("/cap/alerts.atom")).content)
    assert [e.findtext("atom:id", namespaces=ATOM) for e in feed.findall("atom:entry", ATOM)] == [cancel.identifier]


def test_cap_times_are_local_with_their_offset_and_no_fraction() -> None:
    assert cap_time(datetime(2026, 11, 30, 7, 55, 0, 123456, tzinfo=UTC)) == "2026-11-30T02:55:00-05:00"
    assert cap_time(datetime(2026, 7, 1, 16, 0, tzinfo=UTC)) == "2026-07-01T12:00:00-04:00"


def test_a_multipolygon_area_gives_one_closed_cap_polygon_per_outer_ring() -> None:
    holed = [WARD["coordinates"][0], [[-79.06, 43.84], [-79.04, 43.84], [-79.04, 43.86], [-79.06, 43.84]]]
    other = [[-78.9, 43.8], [-78.8, 43.8], [-78.8, 43.9], [-78.9, 43.8]]
    alert = PublishedAlert(
        id=7,
        kind="alert",
        title="Snow route",
        emergency=False,
        content={"fr": {"sms": "Stationnement interdit."}, "en": {"sms": "No parking on snow routes. Cars are towed."}},
        started_at=datetime(2026, 11, 30, 7, 55, tzinfo=UTC),
        cancelled_at=None,
        topic_slug="snow",
        topic_names={"en": "Snow clearing", "fr": "Déneigement"},
        areas=(PublishedArea("Wards 1 and 2", {"type": "MultiPolygon", "coordinates": [holed, [other]]}),),
        parent=None,
    )
    publisher = Publisher("alerts@city.example", "city.example", "City", "https://city.example", "3518001")
    xml = alert_xml(alert, publisher)

    assert valid(xml)
    parsed = parse_cap(xml)
    assert [info.language for info in parsed.infos] == ["en", "fr"]  # English first, whatever the stored order
    # SMS only (no email subject or body): the headline is the text's first sentence, the description all of it.
    assert parsed.infos[0].headline == "No parking on snow routes."
    assert parsed.infos[0].description == "No parking on snow routes. Cars are towed."
    assert parsed.infos[1].categories == ("Met",)
    assert parsed.infos[1].event == "Déneigement"
    assert parsed.infos[0].areas[0].polygons == (WARD_CAP, "43.8,-78.9 43.8,-78.8 43.9,-78.8 43.8,-78.9")


def test_a_cancelled_update_cancels_only_itself_not_the_alert_it_follows() -> None:
    started = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    update = PublishedAlert(
        id=9,
        kind="update",
        title="Update",
        emergency=False,
        content={"en": {"sms": "The break is repaired."}},
        started_at=started,
        cancelled_at=started + timedelta(minutes=2),
        topic_slug=None,
        topic_names={},
        areas=(),
        parent=(8, started - timedelta(hours=1)),
    )
    publisher = Publisher("alerts@city.example", "city.example", "City", "https://city.example", None)
    parsed = parse_cap(alert_xml(update, publisher))

    assert (parsed.msg_type, parsed.identifier) == ("Cancel", "urn:carehub:city.example:alert:9:cancel")
    assert parsed.references == (("alerts@city.example", "urn:carehub:city.example:alert:9", started),)
    assert parsed.infos[0].areas[0].geocodes == ()  # no city geocode configured: the city's name alone
