"""Placing residents by street address: addresses normalised to one key however they are typed, the city's address
points loaded from its CSV file (bad lines reported and skipped), and the subscribe form placing a resident in the
area whose boundary holds their address point, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from carehub import cli
from carehub.models import Role
from carehub.subscriptions import places
from carehub.subscriptions import repository as subs
from carehub.subscriptions.addresses import normalise_address
from channels.base import ChannelKind
from tests.conftest import Hub
from tests.fakes.twilio_api import FakeTwilioApi

RESIDENTS = {topic: f"+1905555010{i}" for i, topic in enumerate(("snow", "water", "roads", "waste", "emergencies"))}

# Around Valley Farm Road and the civic centre in Pickering; the rest of the city is in no area.
CENTRE: dict[str, Any] = {
    "type": "Polygon",
    "coordinates": [[[-79.10, 43.82], [-79.07, 43.82], [-79.07, 43.85], [-79.10, 43.85], [-79.10, 43.82]]],
}
POINTS_CSV = """OBJECTID,address,lon,lat,municipality
1,1867 VALLEY FARM RD,-79.0869,43.8366,Pickering
2,1 The Esplanade,-79.0859,43.8372,Pickering
3,1200 Bayly St,-79.0905,43.8177,Pickering
4,,-79.0,43.8,Pickering
5,99 Nowhere Cres,west,43.8,Pickering
"""


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("1867 Valley Farm Rd.", "1867 valley farm road"),
        ("1867 VALLEY FARM ROAD", "1867 valley farm road"),
        ("  1867   valley  farm   rd  ", "1867 valley farm road"),
        ("1 The Esplanade", "1 the esplanade"),
        ("1 the esplanade, Pickering, ON L1V 6K7", "1 the esplanade"),
        ("12 Main St E", "12 main street east"),
        ("12 Main Street East", "12 main street east"),
        ("40 Kingston Rd W", "40 kingston road west"),
        ("5 Oak Ave", "5 oak avenue"),
        ("5 Oak Av.", "5 oak avenue"),
        ("9 Rosebank Dr", "9 rosebank drive"),
        ("3 Maple Cres", "3 maple crescent"),
        ("3 Maple Cr", "3 maple crescent"),
        ("7 Liverpool Blvd", "7 liverpool boulevard"),
        ("8 Elm Ct", "8 elm court"),
        ("2 Oak Cir", "2 oak circle"),
        ("4 Birch Pl", "4 birch place"),
        ("6 Pine Ln", "6 pine lane"),
        ("1 Hwy 2", "1 hwy 2"),  # "Hwy" names this street: the first word of a name stays
        ("1 Old Hwy 2", "1 old highway 2"),
        ("10 Taunton Pkwy", "10 taunton parkway"),
        ("11 Market Sq", "11 market square"),
        ("13 Seaton Trl", "13 seaton trail"),
        ("100 St. Mary's St", "100 st marys street"),
        ("1867 Valley Farm Rd, Unit 4", "1867 valley farm road"),
        ("Unit 4, 1867 Valley Farm Rd", "1867 valley farm road"),
        ("apt. 2 1867 Valley Farm Rd", "1867 valley farm road"),
        ("1867 Valley Farm Rd #12", "1867 valley farm road"),
        ("1867 Valley Farm Rd Suite 100", "1867 valley farm road"),
        ("4-1867 Valley Farm Rd", "1867 valley farm road"),
        ("12A Rue Sainte-Thérèse", "12a rue sainte therese"),
        ("N Service Rd", None),
        ("Valley Farm Rd", None),
        ("1867", None),
        ("", None),
        ("#12", None),
    ],
)
def test_an_address_is_one_key_however_it_is_typed(typed: str, expected: str | None) -> None:
    assert normalise_address(typed) == expected


def test_directions_are_spelled_out_only_after_the_street_name() -> None:
    assert normalise_address("5 W Shore Blvd") == "5 w shore boulevard"
    assert normalise_address("5 West Shore Blvd") == "5 west shore boulevard"
    assert normalise_address("5 Shore Blvd W") == "5 shore boulevard west"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def load_points(hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The command as an operator runs it (its own engine and event loop); what it printed."""
    path = tmp_path / "address_points.csv"
    path.write_text(POINTS_CSV, encoding="utf-8")
    monkeypatch.setattr(cli, "get_settings", lambda: hub.settings)
    printed: list[str] = []
    monkeypatch.setattr(cli, "_print", printed.append)
    await asyncio.to_thread(cli.main, ["load-address-points", str(path)])
    return "\n".join(printed)


async def test_the_city_file_is_loaded_and_its_bad_lines_are_reported(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    printed = await load_points(hub, tmp_path, monkeypatch)
    assert "skipped line 5: no address" in printed
    assert "skipped line 6: bad longitude or latitude ('west', '43.8')" in printed
    assert "loaded 3 address points" in printed
    assert printed.endswith("skipped 2")
    async with hub.runtime.transaction() as tx:
        assert await places.address_point(tx.conn, "1867 valley farm road") == (-79.0869, 43.8366)
        assert await places.address_point(tx.conn, "1200 bayly street") == (-79.0905, 43.8177)
    # Loading again moves nothing and adds nothing: upserted by address.
    await load_points(hub, tmp_path, monkeypatch)
    async with hub.runtime.transaction() as tx:
        assert await places.address_point(tx.conn, "1 the esplanade") == (-79.0859, 43.8372)


async def test_a_file_without_the_columns_is_refused(hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "wrong.csv"
    path.write_text("street,x,y\n1 The Esplanade,-79.0,43.8\n", encoding="utf-8")
    monkeypatch.setattr(cli, "get_settings", lambda: hub.settings)
    with pytest.raises(SystemExit, match="no address, lon, lat column"):
        await asyncio.to_thread(cli.main, ["load-address-points", str(path)])


async def subscribe(hub: Hub, topic: str, **fields: str) -> httpx.Response:
    """One resident per topic (each number may be sent only a few codes a minute)."""
    phone = RESIDENTS[topic]
    pairs = [("topic", topic), ("phone", phone), ("language", "en"), ("consent", "yes"), *fields.items()]
    return await hub.client.post(
        "/alerts/subscribe?lang=en",
        content=urlencode(pairs),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


async def test_a_street_address_places_a_resident_when_the_postal_code_does_not(
    hub: Hub, fake_twilio: FakeTwilioApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await hub.agent_token(Role.COMMUNICATIONS)
    for slug, body in (
        ("city-centre", {"name": "City Centre", "kind": "zone", "geometry": CENTRE}),
        ("ward-3", {"name": "Ward 3", "kind": "ward", "postal_codes": ["L1Y"]}),
    ):
        put = await hub.client.put(f"/api/v1/areas/{slug}", json=body, headers=bearer(token))
        assert put.status_code == 201, put.text
    await load_points(hub, tmp_path, monkeypatch)

    form = await hub.client.get("/alerts/subscribe?lang=en")
    assert 'autocomplete="street-address"' in form.text
    assert 'aria-describedby="street_address-hint"' in form.text
    assert "For alerts about your part of the city, e.g. 1 The Esplanade." in form.text

    by_address = await subscribe(hub, "snow", street_address="1867 valley farm rd.")
    assert by_address.status_code == 200, by_address.text
    assert "Your alerts will be for City Centre and for the whole city." in by_address.text
    # A postal code in no area leaves the address to place the resident.
    both = await subscribe(hub, "water", postal_code="L1V 6K7", street_address="1 THE ESPLANADE")
    assert "Your alerts will be for City Centre and for the whole city." in both.text
    unknown = await subscribe(hub, "roads", street_address="42 Nowhere Lane")
    assert unknown.status_code == 200, unknown.text
    assert "We could not place your address in one of our alert areas, so your alerts will be for the whole city." in (
        unknown.text
    )
    outside = await subscribe(hub, "waste", street_address="1200 Bayly Street")
    assert "so your alerts will be for the whole city" in outside.text
    postal_wins = await subscribe(hub, "emergencies", postal_code="l1y 2a2", street_address="1867 Valley Farm Rd")
    assert "Your alerts will be for Ward 3 and for the whole city." in postal_wins.text

    async with hub.runtime.transaction() as tx:
        areas = {a.id: a.slug for a in await places.areas(tx.conn)}
        topics = {t.id: t.slug for t in await subs.topics(tx.conn)}
        placed = {}
        for phone in RESIDENTS.values():
            resident = await subs.existing_address_id(tx.conn, ChannelKind.SMS, phone)
            assert resident is not None
            for s in await subs.subscriptions_of(tx.conn, resident):
                placed[topics[s.topic_id]] = (s.status.value, areas.get(s.area_id) if s.area_id else None)
    assert placed == {
        "snow": ("pending", "city-centre"),
        "water": ("pending", "city-centre"),
        "roads": ("pending", None),
        "waste": ("pending", None),
        "emergencies": ("pending", "ward-3"),
    }


async def test_the_street_address_is_kept_when_the_form_has_a_problem(hub: Hub) -> None:
    shown = await hub.client.post(
        "/alerts/subscribe?lang=fr",
        content=urlencode([("topic", "snow"), ("street_address", "1 The Esplanade")]),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert shown.status_code == 422
    assert 'value="1 The Esplanade"' in shown.text
    assert "Adresse municipale (facultatif)" in shown.text
