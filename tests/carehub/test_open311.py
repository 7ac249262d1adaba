"""Open311 GeoReport v2: every endpoint in JSON and XML through two independently written client libraries from
PyPI (georeport reads both formats; civicbot posts, and checks our service definitions before it does) and
through raw HTTP, errors included; a request is a ticket in the same queue, and its requester is told of a
status change once."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import xmltodict
from civicbot.http import HttpTransport, RateLimiter
from civicbot.open311 import Open311Client
from civicbot.registry import Endpoint
from georeport import GeoReport
from sqlalchemy import select, update

from carehub.clock import utcnow
from carehub.models import Message, Open311Request, Outbox, Role, Ticket
from carehub.open311.notify import tell_status_changes
from carehub.settings import Settings
from tests.fakes.twilio_api import FakeTwilioApi
from tests.support.alerts import staff
from tests.support.console import agent_with_password, sign_in
from tests.support.identities import PUBLIC_URL
from tests.support.live import LiveHub, live_hub
from tests.support.waiting import eventually

TICKETS = Ticket.__table__  # type: ignore[attr-defined]
MESSAGES = Message.__table__  # type: ignore[attr-defined]
OUTBOX = Outbox.__table__  # type: ignore[attr-defined]
REQUESTS = Open311Request.__table__  # type: ignore[attr-defined]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}

POTHOLE = {
    "code": "POTHOLE",
    "name": "Pothole",
    "description": "A hole in a road or a municipal parking lot.",
    "group": "Roads",
    "keywords": ["road", "pothole", "asphalt"],
    "team": "roads-operations",
    "attributes": [
        {
            "code": "SIZE",
            "description": "How big is it?",
            "datatype": "singlevaluelist",
            "required": True,
            "order": 1,
            "values": [{"key": "small", "name": "Smaller than a plate"}, {"key": "large", "name": "Larger"}],
        },
        {"code": "DEPTH_CM", "description": "About how deep, in cm?", "datatype": "number", "order": 2},
    ],
}
GRAFFITI = {"code": "GRAFFITI", "name": "Graffiti", "description": "Graffiti on city property.", "group": "Parks"}


@dataclass
class City:
    hub: LiveHub
    admin: dict[str, str]
    agent: dict[str, str]
    api_key: str

    @property
    def base(self) -> str:
        return f"{self.hub.url}/open311/v2"

    def georeport(self, fmt: str) -> GeoReport:
        return GeoReport(self.base, jurisdiction="pickering.ca", output_format=fmt)

    def civicbot(self) -> Open311Client:
        endpoint = Endpoint(id="pickering", name="Pickering", base_url=self.base, write=True)
        transport = HttpTransport(rate_limiter=RateLimiter(min_interval=0))
        return Open311Client(endpoint, transport=transport, jurisdiction_id="pickering.ca")


@pytest.fixture
async def city(settings: Settings) -> AsyncIterator[City]:
    async with live_hub(settings.model_copy(update={"event_feed_interval_seconds": 1})) as hub:
        admin = await staff(hub, Role.ADMIN, "admin@city.test")
        for service in (POTHOLE, GRAFFITI):
            created = await hub.client.post("/api/v1/open311/services", json=service, headers=admin)
            assert created.status_code == 201, created.text
        issued = await hub.client.post("/api/v1/open311/keys", json={"label": "PickerFix app"}, headers=admin)
        assert issued.status_code == 201
        agent = await staff(hub, Role.SUPERVISOR, "supervisor@city.test")
        yield City(hub, admin, agent, issued.json()["key"])


def pothole(city: City, **extra: Any) -> dict[str, Any]:
    return {
        "api_key": city.api_key,
        "service_code": "POTHOLE",
        "lat": "43.8384",
        "long": "-79.0868",
        "description": "Deep pothole in the curb lane, eastbound.",
        "attribute[SIZE]": "large",
        **extra,
    }


async def post(city: City, fmt: str, form: dict[str, Any], **headers: str) -> tuple[int, Any]:
    answer = await city.hub.client.post(f"/open311/v2/requests.{fmt}", data=form, headers={**FORM, **headers})
    return answer.status_code, answer.json() if fmt == "json" else xmltodict.parse(answer.content)


async def ticket_of(city: City, reference: str) -> dict[str, Any]:
    answer = await city.hub.client.get(f"/api/v1/tickets/{reference}", headers=city.agent)
    assert answer.status_code == 200, answer.text
    detail: dict[str, Any] = answer.json()
    return detail


# ---- through the independent client libraries ------------------------------------------------------------


async def test_services_and_definitions_read_by_georeport_in_json_and_xml(city: City) -> None:
    as_json = await asyncio.to_thread(city.georeport("json").get_service_list)
    as_xml = await asyncio.to_thread(city.georeport("xml").get_service_list)

    assert [s["service_code"] for s in as_json] == ["GRAFFITI", "POTHOLE"]  # by group: Parks, then Roads
    pothole_json = as_json[1]
    assert pothole_json["metadata"] is True
    assert pothole_json["keywords"] == "road, pothole, asphalt"
    assert pothole_json["type"] == "realtime"
    assert [s["service_code"] for s in as_xml] == ["GRAFFITI", "POTHOLE"]
    assert as_xml[1]["service_name"] == "Pothole"
    assert as_xml[1]["metadata"] == "true"
    assert as_xml[0]["metadata"] == "false"

    definition_json = await asyncio.to_thread(city.georeport("json").get_service_definition, "POTHOLE")
    definition_xml = await asyncio.to_thread(city.georeport("xml").get_service_definition, "POTHOLE")
    size = definition_json["attributes"][0]
    assert size["code"] == "SIZE"
    assert size["required"] is True
    assert size["values"] == [{"key": "small", "name": "Smaller than a plate"}, {"key": "large", "name": "Larger"}]
    xml_attributes = definition_xml["attributes"]["attribute"]
    assert [a["code"] for a in xml_attributes] == ["SIZE", "DEPTH_CM"]
    assert xml_attributes[0]["values"]["value"][1] == {"key": "large", "name": "Larger"}
    assert xml_attributes[1]["datatype"] == "number"


async def test_civicbot_posts_a_request_checked_against_our_definition_and_reads_it_back(
    city: City, fake_twilio: FakeTwilioApi
) -> None:
    client = city.civicbot()
    sent = await asyncio.to_thread(
        lambda: client.create_request(
            "POTHOLE",
            dry_run=False,
            confirm="SEND",
            api_key=city.api_key,
            validate_remote=True,  # civicbot reads services and the definition first and checks its form
            lat=43.8384,
            lng=-79.0868,
            description="Pothole by the bus stop on Kingston Rd.",
            attributes={"SIZE": "small", "DEPTH_CM": "8"},
            phone="905-555-0142",
            first_name="Avery",
        )
    )
    (created,) = sent.response
    reference = created["service_request_id"]
    assert reference.startswith("PKR-")

    fetched = await asyncio.to_thread(client.get_request, reference)
    assert fetched is not None
    assert fetched["status"] == "open"
    assert fetched["service_code"] == "POTHOLE"
    assert fetched["description"] == "Pothole by the bus stop on Kingston Rd."
    assert fetched["agency_responsible"] == "City of Pickering: Roads Operations"
    assert fetched["lat"] == pytest.approx(43.8384)
    token = await asyncio.to_thread(client.get_token, created["token"])
    assert token == [{"service_request_id": reference, "token": created["token"]}]
    listed = await asyncio.to_thread(lambda: client.list_requests(service_code="POTHOLE", status="open"))
    assert [r["service_request_id"] for r in listed] == [reference]

    # The same queue as every other channel: the agent sees the ticket, in the service's team, with the details.
    ticket = await ticket_of(city, reference)
    assert ticket["team"] == "roads-operations"
    assert ticket["channel"] == "sms"  # the requester gave a phone: they are answered by text
    first = ticket["messages"][0]
    assert first["channel"] == "open311"
    assert "How big is it?: small" in first["body"]
    assert "43.838400, -79.086800" in first["body"]
    (ack,) = await fake_twilio.wait_for(1)
    assert ack.to == "+19055550142"
    assert reference in (ack.body or "")
    assert re.search(r"https://hub\.test/s/[A-Za-z0-9_-]{22}", ack.body or "")  # the request's status link


async def test_georeport_lists_requests_in_json_and_xml(city: City) -> None:
    status, created = await post(city, "json", pothole(city))
    assert status == 201
    reference = created[0]["service_request_id"]
    async with city.hub.runtime.transaction() as tx:  # the SLA's resolution target, as the SLA timer sets it
        await tx.conn.execute(
            update(TICKETS)
            .where(TICKETS.c.id == int(reference.split("-")[1]))
            .values(resolution_due_at=datetime(2026, 12, 8, 14, 30, tzinfo=UTC))
        )

    as_json = await asyncio.to_thread(city.georeport("json").get_service_requests)
    one_json = await asyncio.to_thread(city.georeport("json").get_service_request, reference)
    one_xml = await asyncio.to_thread(city.georeport("xml").get_service_request, reference)
    listed_xml = await asyncio.to_thread(
        lambda: city.georeport("xml").get_service_requests(service_request_id=reference)
    )

    assert [r["service_request_id"] for r in as_json] == [reference]
    assert one_json["status"] == "open"
    assert one_json["status_notes"] == "Received. It will be looked at soon."
    assert one_xml["service_request_id"] == reference
    assert one_xml["service_code"] == "POTHOLE"
    assert one_xml["requested_datetime"] == one_json["requested_datetime"]
    assert listed_xml["lat"] == "43.8384"
    assert one_json["expected_datetime"] == one_xml["expected_datetime"] == "2026-12-08T09:30:00-05:00"  # Toronto


# ---- raw HTTP ----------------------------------------------------------------------------------------------


async def test_posting_in_xml_and_looking_up_the_token_in_xml(city: City) -> None:
    photo = "https://photos.fixit.test/p/771.jpg"
    form = pothole(
        city, address_string="1 The Esplanade", email="Resident@Example.ORG", lat="", long="", media_url=photo
    )
    status, created = await post(city, "xml", form)
    assert status == 201
    request = created["service_requests"]["request"]
    token_xml = await city.hub.client.get(f"/open311/v2/tokens/{request['token']}.xml")
    assert token_xml.headers["content-type"].startswith("text/xml")
    assert xmltodict.parse(token_xml.content)["service_requests"]["request"] == {
        "service_request_id": request["service_request_id"],
        "token": request["token"],
    }
    one = (await city.hub.client.get(f"/open311/v2/requests/{request['service_request_id']}.json")).json()[0]
    assert one["address"] == "1 The Esplanade"
    assert one["lat"] is None
    assert one["media_url"] == photo
    # The requester's identity is never published.
    raw = (await city.hub.client.get(f"/open311/v2/requests/{request['service_request_id']}.xml")).text
    assert "example.org" not in raw.lower()
    ticket = await ticket_of(city, request["service_request_id"])
    assert ticket["channel"] == "email"
    assert "email:resident@example.org" in ticket["contact_addresses"]
    assert f"Photo: {photo}" in ticket["messages"][0]["body"]


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_every_endpoint_answers_in_its_format_over_raw_http(city: City, fmt: str) -> None:
    status, created = await post(city, fmt, pothole(city))
    assert status == 201
    request = created[0] if fmt == "json" else created["service_requests"]["request"]
    reference, token = request["service_request_id"], request["token"]
    paths = {
        f"/open311/discovery.{fmt}": "discovery",
        f"/open311/v2/services.{fmt}": "services",
        f"/open311/v2/services/POTHOLE.{fmt}": "service_definition",
        f"/open311/v2/requests.{fmt}?service_code=POTHOLE": "service_requests",
        f"/open311/v2/requests/{reference}.{fmt}": "service_requests",
        f"/open311/v2/tokens/{token}.{fmt}": "service_requests",
    }
    for path, root in paths.items():
        answer = await city.hub.client.get(path)
        assert answer.status_code == 200, (path, answer.text)
        if fmt == "json":
            assert answer.headers["content-type"] == "application/json; charset=utf-8"
            assert answer.json()
        else:
            assert answer.headers["content-type"] == "text/xml; charset=utf-8"
            assert list(xmltodict.parse(answer.content)) == [root], path


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_errors_follow_the_spec_format(city: City, fmt: str) -> None:
    client = city.hub.client

    async def error(answer: Any) -> tuple[int, int, str]:
        if fmt == "json":
            assert answer.headers["content-type"].startswith("application/json")
            (body,) = answer.json()
            return answer.status_code, body["code"], body["description"]
        body = xmltodict.parse(answer.content)["errors"]["error"]
        return answer.status_code, int(body["code"]), body["description"]

    no_key = {k: v for k, v in pothole(city).items() if k != "api_key"}
    cases = [
        (client.post(f"/open311/v2/requests.{fmt}", data=no_key, headers=FORM), 400, "api_key is required"),
        (client.post(f"/open311/v2/requests.{fmt}", data=pothole(city, api_key="o311_wrong")), 403, "Invalid api_key"),
        (client.post(f"/open311/v2/requests.{fmt}", data=pothole(city, service_code="NOPE")), 400, "'NOPE'"),
        (client.get(f"/open311/v2/services/NOPE.{fmt}"), 404, "'NOPE' is not a service"),
        (client.get(f"/open311/v2/requests.{fmt}?start_date=yesterday"), 400, "start_date must be a W3C"),
        (
            client.get(f"/open311/v2/requests.{fmt}?start_date=2026-01-01T00:00:00Z&end_date=2026-06-01T00:00:00Z"),
            400,
            "more than 90 days",
        ),
        (
            client.get(f"/open311/v2/requests.{fmt}?start_date=2026-06-01T00:00:00Z&end_date=2026-05-01T00:00:00Z"),
            400,
            "end_date is before start_date",
        ),
        (client.get(f"/open311/v2/requests.{fmt}?status=pending"), 400, "status must be open or closed"),
        (client.get(f"/open311/v2/requests/PKR-999999.{fmt}"), 404, "no service request 'PKR-999999'"),
        (client.get(f"/open311/v2/tokens/unknown.{fmt}"), 404, "no service request with token"),
        (client.get(f"/open311/v2/services.{fmt}?jurisdiction_id=toronto.ca"), 404, "'toronto.ca' is not served"),
        (
            client.post(f"/open311/v2/requests.{fmt}", data=pothole(city, lat="", long="")),
            400,
            "a location is required",
        ),
        (
            client.post(f"/open311/v2/requests.{fmt}", data=pothole(city, **{"attribute[SIZE]": "huge"})),
            400,
            "attribute[SIZE] must be one of large, small, not huge",
        ),
        (
            client.post(f"/open311/v2/requests.{fmt}", data={**pothole(city), "attribute[SIZE]": ""}),
            400,
            "attribute[SIZE] is required: How big is it?",
        ),
        (
            client.post(f"/open311/v2/requests.{fmt}", data=pothole(city, **{"attribute[DEPTH_CM]": "deep"})),
            400,
            "must be a number",
        ),
        (client.post(f"/open311/v2/requests.{fmt}", data=pothole(city, email="not-an-email")), 400, "email"),
        (client.post(f"/open311/v2/requests.{fmt}", json=pothole(city)), 400, "application/x-www-form-urlencoded"),
    ]
    for call, status, words in cases:
        answer_status, code, description = await error(await call)
        assert (answer_status, code) == (status, status), description
        assert words in description
    unknown_format = await client.get("/open311/v2/services.csv")
    assert unknown_format.status_code == 404
    assert unknown_format.json()[0]["description"] == "Unknown format '.csv': use .json or .xml."

    async with city.hub.runtime.transaction() as tx:
        made = (await tx.conn.execute(select(TICKETS.c.id))).all()
    assert made == []  # no refused request left anything behind


async def test_listing_filters_dates_status_and_ids(city: City) -> None:
    references = []
    graffiti_form = {"api_key": city.api_key, "service_code": "GRAFFITI", "address_string": "Esplanade Park"}
    for form in (pothole(city), pothole(city), graffiti_form):
        status, created = await post(city, "json", form)
        assert status == 201, created
        references.append(created[0]["service_request_id"])
    old, closed, graffiti = references
    async with city.hub.runtime.transaction() as tx:  # one of them was made 100 days ago
        old_id = int(old.split("-")[1])
        await tx.conn.execute(
            update(TICKETS).where(TICKETS.c.id == old_id).values(created_at=utcnow() - timedelta(days=100))
        )
    changed = await city.hub.client.patch(f"/api/v1/tickets/{closed}", json={"status": "closed"}, headers=city.agent)
    assert changed.status_code == 200, changed.text

    async def ids(query: str) -> list[str]:
        answer = await city.hub.client.get(f"/open311/v2/requests.json?{query}")
        assert answer.status_code == 200, answer.text
        return [r["service_request_id"] for r in answer.json()]

    assert await ids("") == [graffiti, closed]  # the last 90 days by default, newest first
    assert await ids("service_code=GRAFFITI") == [graffiti]
    assert await ids("service_code=POTHOLE,GRAFFITI&status=closed") == [closed]
    assert await ids("status=open") == [graffiti]
    assert await ids("page_size=1") == [graffiti]
    long_ago = (utcnow() - timedelta(days=120)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert await ids(f"start_date={long_ago}") == [old]  # 90 days from the start
    assert await ids(f"service_request_id={old},{graffiti}&status=closed") == [graffiti, old]  # ids override


async def test_a_status_change_is_told_once_and_staff_notes_are_published(
    city: City, fake_twilio: FakeTwilioApi
) -> None:
    status, created = await post(city, "json", pothole(city, phone="+1 905 555 0177"), **{"Accept-Language": "fr"})
    assert status == 201
    reference = created[0]["service_request_id"]
    await fake_twilio.wait_for(1)  # the acknowledgement

    note = "Crew booked for Tuesday; the lane stays open."
    published = await city.hub.client.post(
        f"/api/v1/tickets/{reference}/replies", json={"body": note, "channel": "open311"}, headers=city.agent
    )
    assert published.status_code == 201, published.text
    one = (await city.hub.client.get(f"/open311/v2/requests/{reference}.json")).json()[0]
    assert one["status_notes"] == note
    assert len(fake_twilio.accepted) == 1  # a published note is not sent anywhere

    # Closed, not resolved: resolving also asks the satisfaction survey, which is another message.
    closed = await city.hub.client.patch(f"/api/v1/tickets/{reference}", json={"status": "closed"}, headers=city.agent)
    assert closed.status_code == 200
    told = await fake_twilio.wait_for(2, timeout=10)
    notice = told[1].body or ""
    assert notice.startswith(f"City of Pickering : votre demande {reference} (Pothole) est maintenant fermée.")
    assert note in notice
    assert await tell_status_changes(city.hub.runtime) == 0  # told once, however often the pass runs
    async with city.hub.runtime.transaction() as tx:
        notices = (
            await tx.conn.execute(
                select(OUTBOX.c.id)
                .join(MESSAGES, MESSAGES.c.id == OUTBOX.c.message_id)
                .where(MESSAGES.c.ticket_id == int(reference.split("-")[1]))
            )
        ).all()
    assert len(notices) == 2  # the acknowledgement and the one notice
    one = (await city.hub.client.get(f"/open311/v2/requests/{reference}.json")).json()[0]
    assert one["status"] == "closed"


async def test_an_anonymous_request_is_answered_only_through_the_api(city: City, fake_twilio: FakeTwilioApi) -> None:
    status, created = await post(city, "json", pothole(city, device_id="ios-42"))
    assert status == 201
    reference = created[0]["service_request_id"]
    ticket = await ticket_of(city, reference)
    assert ticket["channel"] == "open311"
    replied = await city.hub.client.post(
        f"/api/v1/tickets/{reference}/replies", json={"body": "Filled on Monday."}, headers=city.agent
    )
    assert replied.status_code == 201, replied.text
    closed = await city.hub.client.patch(f"/api/v1/tickets/{reference}", json={"status": "closed"}, headers=city.agent)
    assert closed.status_code == 200

    async def recorded_as_told() -> bool:
        async with city.hub.runtime.transaction() as tx:
            told = await tx.conn.execute(select(REQUESTS.c.notified_status))
            return bool(told.scalar_one() == "closed")

    await eventually(recorded_as_told, what="the status change recorded (by the hub's own timer)")
    async with city.hub.runtime.transaction() as tx:
        assert (await tx.conn.execute(select(OUTBOX.c.id))).all() == []  # nowhere to send it
    one = (await city.hub.client.get(f"/open311/v2/requests/{reference}.json")).json()[0]
    assert (one["status"], one["status_notes"]) == ("closed", "Filled on Monday.")
    assert fake_twilio.requests == []


async def test_a_repeated_idempotency_key_makes_one_request(city: City) -> None:
    first = await post(city, "json", pothole(city), **{"Idempotency-Key": "app-7f3a"})
    again = await post(city, "json", pothole(city), **{"Idempotency-Key": "app-7f3a"})
    assert first[0] == again[0] == 201
    assert first[1] == again[1]
    async with city.hub.runtime.transaction() as tx:
        assert len((await tx.conn.execute(select(TICKETS.c.id))).all()) == 1


async def test_only_admins_configure_services_and_keys(city: City) -> None:
    for path, body in (("/api/v1/open311/services", GRAFFITI), ("/api/v1/open311/keys", {"label": "x"})):
        refused = await city.hub.client.post(path, json=body, headers=city.agent)
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
    duplicate = await city.hub.client.post("/api/v1/open311/services", json=GRAFFITI, headers=city.admin)
    assert duplicate.status_code == 409
    bad = {**GRAFFITI, "code": "LIST", "attributes": [{"code": "A", "description": "?", "datatype": "singlevaluelist"}]}
    invalid = await city.hub.client.post("/api/v1/open311/services", json=bad, headers=city.admin)
    assert invalid.status_code == 422
    keys = (await city.hub.client.get("/api/v1/open311/keys", headers=city.admin)).json()
    revoked = await city.hub.client.delete(f"/api/v1/open311/keys/{keys[0]['id']}", headers=city.admin)
    assert revoked.status_code == 204
    status, body = await post(city, "json", pothole(city))
    assert (status, body[0]["description"]) == (403, "Invalid api_key")
    retired = await city.hub.client.put(
        "/api/v1/open311/services/GRAFFITI", json={**GRAFFITI, "is_active": False}, headers=city.admin
    )
    assert retired.status_code == 200
    listed = (await city.hub.client.get("/open311/v2/services.json")).json()
    assert [s["service_code"] for s in listed] == ["POTHOLE"]


async def test_discovery_names_the_endpoint(city: City) -> None:
    discovery = (await city.hub.client.get("/open311/discovery.json")).json()
    (endpoint,) = discovery["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"] == "https://hub.test/open311/v2"
    xml = xmltodict.parse((await city.hub.client.get("/open311/discovery.xml")).content)
    assert xml["discovery"]["endpoints"]["endpoint"]["formats"]["format"] == ["application/json", "text/xml"]


async def test_the_console_shows_an_open311_ticket(city: City) -> None:
    status, created = await post(city, "json", pothole(city, device_id="android-7"))
    assert status == 201
    reference = created[0]["service_request_id"]
    await agent_with_password(city.hub, "ana@city.test", Role.SUPERVISOR)
    transport = httpx.ASGITransport(app=city.hub.app)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as ana:
        await sign_in(ana, "ana@city.test")
        queue = await ana.get("/console")
        page = await ana.get(f"/console/tickets/{reference}")
    assert queue.status_code == page.status_code == 200
    assert "Open311 app" in queue.text
    assert "Deep pothole in the curb lane" in page.text
    assert '<option value="open311" selected>Open311 app' in page.text
