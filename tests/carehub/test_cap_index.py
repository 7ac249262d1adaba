"""CAP feeds, pure part: every feed-like file of google/cap-library's test data is read or refused with a reason
(links, embedded alerts, EDXL-DE envelopes, bare alerts), the XXE feed reads nothing, links are resolved and only
http(s) ones kept; a CAP-CP area coded by province or census division concerns the city inside it. Plus the import
API taking an EDXL-DE envelope."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree  # type: ignore[import-untyped]

from carehub.cap import parse as cap_parse
from carehub.cap.index import FeedIndex, parse_index
from carehub.cap.parse import CapAlert, CapArea, CapRejected, for_city, parse_cap
from tests.carehub.test_cap_parse import outside_access
from tests.conftest import Hub
from tests.support.alerts import staff
from tests.support.corpus import CORPUS

CAP = CORPUS / "cap" / "google-cap-library"
TESTDATA = CAP / "testdata"
FEEDS = sorted(
    p for p in [*CAP.glob("testdata/*"), *CAP.glob("validator-examples/*")] if p.suffix in (".atom", ".rss", ".edxlde")
)
BASE = "https://feeds.example.ca/alerts/index.atom"
LIMIT = 5_000_000
SGC = "profile:CAP-CP:Location:0.3"
# What each feed-like corpus file lists: (kind, linked, embedded, skipped), or the reason it is refused.
EXPECTED: dict[str, tuple[str, int, int, int] | str] = {
    "amber.atom": ("atom", 0, 1, 0),  # embeds a CAP 1.1 alert: the message is refused, not the feed
    "canada_signed.atom": ("atom", 0, 1, 0),  # NAADS: a signed CAP-CP 1.2 alert in the entry
    "earthquake_index.atom": ("atom", 1, 0, 0),
    "empty_weather_index.atom": ("atom", 0, 0, 0),
    "invalid_element.atom": ("atom", 0, 0, 1),
    "no_entries.atom": ("atom", 0, 0, 0),  # its alert is outside any entry: foreign markup, not an entry
    "no_id.atom": ("atom", 0, 0, 1),
    "no_link.atom": ("atom", 0, 0, 1),
    "no_title.atom": ("atom", 0, 0, 1),
    "weather.atom": ("atom", 0, 1, 0),
    "weather_index.atom": ("atom", 2, 0, 0),
    "weather_invalid.atom": ("atom", 0, 1, 0),
    "xee.atom": "DOCTYPE/DTD or entities",
    "invalid.rss": ("rss", 0, 0, 1),
    "ny_index.rss": ("rss", 2, 0, 0),
    "amber.rss": ("rss", 1, 0, 0),
    "earthquake.atom": ("atom", 0, 1, 0),
    "bushfire_valid.edxlde": ("edxl-de", 0, 7, 0),
    "bushfire_invalid.edxlde": ("edxl-de", 0, 7, 0),  # two of the seven fail the CAP schema when read
}


def read_or_refuse(message: bytes) -> CapAlert | CapRejected:
    try:
        return parse_cap(message)
    except CapRejected as rejected:
        return rejected


def index_of(name: str, base: str = BASE) -> FeedIndex:
    return parse_index((TESTDATA / name).read_bytes(), base, max_bytes=LIMIT)


@pytest.fixture(scope="module", autouse=True)
def _schema_loaded() -> None:
    cap_parse._schema()  # the schema file is read once, before any parse is watched


def test_every_feed_like_corpus_file_is_expected() -> None:
    assert {p.name for p in FEEDS} == set(EXPECTED)


@pytest.mark.parametrize("path", FEEDS, ids=[f"{p.parent.name}/{p.name}" for p in FEEDS])
def test_every_feed_like_corpus_file_is_read_or_refused_with_a_reason(path: Path) -> None:
    expected = EXPECTED[path.name]
    if isinstance(expected, str):
        with pytest.raises(CapRejected, match=expected):
            parse_index(path.read_bytes(), BASE, max_bytes=LIMIT)
        return
    index = parse_index(path.read_bytes(), BASE, max_bytes=LIMIT)
    linked = [e for e in index.entries if e.url is not None]
    embedded = [e for e in index.entries if e.message is not None]
    assert (index.kind, len(linked), len(embedded), len(index.skipped)) == expected
    assert all(e.key for e in index.entries)
    assert all(reason.strip() for reason in index.skipped)
    for entry in embedded:  # each embedded message is read on its own, or refused with a reason
        assert entry.message is not None
        read = read_or_refuse(entry.message)
        assert read.reason.strip() if isinstance(read, CapRejected) else read.identifier


@pytest.mark.parametrize(
    "path",
    sorted([*CAP.glob("testdata/*"), *CAP.glob("validator-examples/*"), *CAP.glob("schema/*")]),
    ids=lambda p: p.name,
)
def test_any_corpus_file_given_as_a_feed_is_read_or_refused(path: Path) -> None:
    outcome: FeedIndex | CapRejected
    try:
        outcome = parse_index(path.read_bytes(), BASE, max_bytes=LIMIT)
    except CapRejected as rejected:
        outcome = rejected
    if isinstance(outcome, CapRejected):
        assert outcome.reason.strip()
    else:
        assert outcome.kind in ("atom", "rss", "cap", "edxl-de")


def test_nws_index_entries_link_to_their_cap_messages() -> None:
    index = index_of("weather_index.atom")

    first = index.entries[0]
    key = "http://www.weather.gov/alerts-beta/wwacapget.php?x=CT20100831030400OKXAirQualityAlertOKX20100901031500CT"
    assert (first.key, first.url, first.message) == (key, key, None)
    assert first.updated == datetime(2010, 8, 31, 3, 4, tzinfo=UTC)


def test_usgs_index_follows_the_cap_link_not_the_web_page() -> None:
    (entry,) = index_of("earthquake_index.atom").entries

    assert entry.key == "urn:earthquake-usgs-gov:us:2010apcd"
    assert entry.url == "http://earthquake.usgs.gov/earthquakes/catalogs/cap/us2010apcd"


def test_rss_items_give_their_link_guid_and_date() -> None:
    first, second = index_of("ny_index.rss").entries

    assert first.key == "NYAlert-ALLHAZALERT-3167113"
    assert first.url == "http://www.nyalert.gov/Public/News/GetCapAlert.aspx?capID=NYAlert-ALLHAZALERT-3167113"
    assert first.updated == datetime(2011, 2, 4, 20, 20, tzinfo=UTC)
    assert second.key == "NYAlert-ALLHAZALERT-3162202"


def test_naads_feed_embeds_a_cap_cp_alert_that_reads_as_one() -> None:
    (entry,) = index_of("canada_signed.atom").entries
    assert entry.message is not None

    alert = parse_cap(entry.message)

    assert alert.identifier == "2.49.0.1.124.f2c83f5f.2013"
    assert [info.language for info in alert.infos] == ["en", "fr"]


def test_embedded_cap_1_1_is_refused_when_read() -> None:
    (entry,) = index_of("amber.atom").entries
    assert entry.message is not None

    with pytest.raises(CapRejected, match=r"CAP 1\.1 is not supported"):
        parse_cap(entry.message)


def test_edxl_de_distribution_lists_each_alert_and_the_invalid_ones_are_refused() -> None:
    index = index_of("bushfire_invalid.edxlde")
    reasons = []
    for entry in index.entries:
        assert entry.message is not None
        try:
            parse_cap(entry.message)
        except CapRejected as rejected:
            reasons.append(rejected.reason)

    assert index.entries[0].key == "tag:www.rfs.nsw.gov.au2011-10-18:40500"
    assert index.entries[1].key == "RFSuniqueID12345#2"  # no identifier: the distribution's id and position
    assert len(reasons) == 2
    assert "Missing child element(s). Expected is ( cap:identifier )" in reasons[0]
    assert "Foobar" in reasons[1]


def test_bare_cap_alert_is_a_feed_of_itself() -> None:
    data = (TESTDATA / "canada.cap").read_bytes()

    index = parse_index(data, BASE, max_bytes=LIMIT)

    assert index.kind == "cap"
    assert [(e.key, e.url, e.message) for e in index.entries] == [("2.49.0.1.124.6bddbc91.2012", None, data)]


def test_xxe_feed_is_refused_before_the_xml_parser_sees_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_parsing(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the XML parser was reached")

    monkeypatch.setattr(etree, "fromstring", no_parsing)
    data = (TESTDATA / "xee.atom").read_bytes()

    with outside_access() as accessed, pytest.raises(CapRejected, match="DOCTYPE/DTD or entities"):
        parse_index(data, BASE, max_bytes=LIMIT)

    assert accessed == []


def test_oversized_feed_is_refused_before_parsing() -> None:
    data = (TESTDATA / "weather_index.atom").read_bytes()

    with pytest.raises(CapRejected, match=r"CAP feeds over 4,000 bytes are refused"):
        parse_index(data, BASE, max_bytes=4_000)


def test_other_xml_is_not_a_feed() -> None:
    with pytest.raises(CapRejected, match=r"Not a CAP feed.*'schema'"):
        parse_index((CAP / "schema" / "cap12.xsd").read_bytes(), BASE, max_bytes=LIMIT)


def feed(*entries: str) -> bytes:
    body = "".join(f"<entry>{e}</entry>" for e in entries)
    return f'<feed xmlns="http://www.w3.org/2005/Atom"><id>f</id>{body}</feed>'.encode()


def test_relative_links_are_resolved_against_the_feed_and_only_http_links_are_kept() -> None:
    index = parse_index(
        feed(
            '<id>a</id><link href="messages/a.cap"/>',
            '<id>b</id><link href="//other.example.ca/b.cap"/>',
            '<id>c</id><link href="file:///etc/passwd"/>',
            '<id>d</id><link href="ftp://feeds.example.ca/d.cap"/>',
            '<id>e</id><link rel="alternate" type="text/html" href="e.html"/>',
        ),
        BASE,
        max_bytes=LIMIT,
    )

    assert [(e.key, e.url) for e in index.entries] == [
        ("a", "https://feeds.example.ca/alerts/messages/a.cap"),
        ("b", "https://other.example.ca/b.cap"),
    ]
    assert len(index.skipped) == 3
    assert "'file:///etc/passwd': only http and https links are followed" in index.skipped[0]
    assert "no link to a CAP message" in index.skipped[2]


def test_an_entry_listed_twice_is_read_once() -> None:
    index = parse_index(
        feed('<id>a</id><link href="a.cap"/>', '<id>a</id><link href="a2.cap"/>'), BASE, max_bytes=LIMIT
    )

    assert [e.url for e in index.entries] == ["https://feeds.example.ca/alerts/a.cap"]
    assert index.skipped == ("Entry 'a' is listed twice; the first is read.",)


# ---------------------------------------------------------------- EDXL-DE through parse_cap and the import API


def edxl(*alerts: bytes) -> bytes:
    objects = "".join(
        "<contentObject><xmlContent><embeddedXMLContent>"
        + a.decode().split("?>", 1)[-1]
        + "</embeddedXMLContent></xmlContent></contentObject>"
        for a in alerts
    )
    return (
        '<EDXLDistribution xmlns="urn:oasis:names:tc:emergency:EDXL:DE:1.0"><distributionID>d1</distributionID>'
        f"{objects}</EDXLDistribution>"
    ).encode()


def test_edxl_de_with_one_alert_is_unwrapped() -> None:
    canada = (TESTDATA / "canada.cap").read_bytes()

    assert parse_cap(edxl(canada)) == parse_cap(canada)


def test_edxl_de_with_several_alerts_is_refused_by_the_one_message_import() -> None:
    with pytest.raises(CapRejected, match="carries 7 embedded messages"):
        parse_cap((TESTDATA / "bushfire_valid.edxlde").read_bytes())


async def test_edxl_de_posted_to_the_import_api_drafts_its_alert(hub: Hub) -> None:
    headers = {**await staff(hub), "Content-Type": "application/xml"}
    canada = (TESTDATA / "canada.cap").read_bytes()

    body = edxl(canada.replace(b"3537001", b"3518001"))  # Pickering, the default city
    answer = await hub.client.post("/api/v1/alerts/cap", content=body, headers=headers)

    assert answer.status_code == 201, answer.text
    assert answer.json()["alert"]["title"] == "severe thunderstorm watch"


# ---------------------------------------------------------------- CAP-CP areas: SGC codes nest


def canada_with(*codes: tuple[str, str]) -> CapAlert:
    alert = parse_cap((TESTDATA / "canada.cap").read_bytes())
    area = CapArea("somewhere", codes, ())
    return replace(alert, infos=tuple(replace(info, areas=(area,)) for info in alert.infos))


@pytest.mark.parametrize(
    ("code", "city"),
    [
        ("3518", "3518001"),  # Durham census division: Pickering is in it
        ("35", "3518001"),  # Ontario
        ("3518001", "3518"),  # a city configured as its region is concerned by one of its municipalities
        ("3518001", "3518001"),
    ],
)
def test_cap_cp_location_containing_the_city_concerns_it(code: str, city: str) -> None:
    assert for_city(canada_with((SGC, code)), [city]) is not None


@pytest.mark.parametrize(
    ("name", "code", "city"),
    [
        (SGC, "3519", "3518001"),  # York, next door
        (SGC, "3518002", "3518001"),  # another municipality of Durham
        (SGC, "351", "3518001"),  # not an SGC code length: no nesting
        ("layer:EC-MSC-SMC:1.0:CLC", "35", "3518001"),  # other layers match exactly
        ("profile:CAP-CP:Location:0.3", "041410", "04"),  # a CLC-like value under the SGC name is not nested
    ],
)
def test_other_codes_do_not_concern_the_city(name: str, code: str, city: str) -> None:
    assert for_city(canada_with((name, code)), [city]) is None
