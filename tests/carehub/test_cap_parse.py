"""CAP import, pure part: every file of google/cap-library's test data is imported or refused with a reason, the XXE
samples read nothing, and a CAP-CP alert becomes English and French composer text within the composer's limits."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree  # type: ignore[import-untyped]

from carehub.alerts.service import ChannelText, check_content
from carehub.cap import parse as cap_parse
from carehub.cap.parse import CapAlert, CapRejected, draft_content, for_city, parse_cap
from tests.support.corpus import CORPUS

CAP = CORPUS / "cap" / "google-cap-library"
SAMPLES = sorted([*CAP.glob("testdata/*"), *CAP.glob("validator-examples/*")])
XXE = ["xee.cap", "xee.atom"]
WATCHED_EVENTS = {"open", "socket.connect", "socket.getaddrinfo", "urllib.Request", "subprocess.Popen"}
_recorded: list[tuple[str, tuple[Any, ...]]] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _recorded is not None and event in WATCHED_EVENTS:
        _recorded.append((event, args))


sys.addaudithook(_audit)  # hooks cannot be removed; this one records only inside `outside_access()`


@contextmanager
def outside_access() -> Iterator[list[tuple[str, tuple[Any, ...]]]]:
    """Every file open and network call Python sees while the block runs."""
    global _recorded
    _recorded = []
    try:
        yield _recorded
    finally:
        _recorded = None


def sample(name: str) -> bytes:
    return (CAP / "testdata" / name).read_bytes()


@pytest.fixture(scope="module", autouse=True)
def _schema_loaded() -> None:
    cap_parse._schema()  # the schema file is read once, before any parse is watched


@pytest.mark.parametrize("path", SAMPLES, ids=[f"{p.parent.name}/{p.name}" for p in SAMPLES])
def test_every_corpus_file_is_imported_or_refused_with_a_reason(path: Path) -> None:
    outcome: CapAlert | CapRejected
    try:
        outcome = parse_cap(path.read_bytes())
    except CapRejected as rejected:
        outcome = rejected
    if isinstance(outcome, CapRejected):
        assert outcome.reason.strip()
    else:
        assert outcome.identifier
        assert outcome.sent.tzinfo is not None


def test_corpus_is_there() -> None:
    assert len(SAMPLES) > 30
    assert {p.name for p in SAMPLES} >= {"canada.cap", "invalid.cap", *XXE}


def test_canada_cap_profile_alert_is_read_in_english_and_french() -> None:
    alert = parse_cap(sample("canada.cap"))

    assert alert.identifier == "2.49.0.1.124.6bddbc91.2012"
    assert alert.sender == "cap@ec.gc.ca"
    assert alert.sent == datetime(2012, 5, 2, 23, 21, 4, tzinfo=UTC)
    assert (alert.status, alert.msg_type, alert.scope) == ("Actual", "Update", "Public")
    assert [info.language for info in alert.infos] == ["en", "fr"]
    english = alert.infos[0]
    assert english.categories == ("Met",)
    assert english.headline == "severe thunderstorm watch"
    assert english.expires == datetime(2012, 5, 3, 0, 20, tzinfo=UTC)
    assert english.areas[0].area_desc == "Windsor - Leamington - Essex County"
    assert ("profile:CAP-CP:Location:0.3", "3537001") in english.areas[0].geocodes
    assert english.areas[0].polygons[0].startswith("42.3481,-82.9314")


def test_update_has_the_alerts_it_follows_as_references() -> None:
    alert = parse_cap(sample("canada.cap"))

    assert alert.references == (
        ("cap@ec.gc.ca", "2.49.0.1.124.a3f342a4.2012", datetime(2012, 5, 2, 21, 45, 5, tzinfo=UTC)),
        ("cap@ec.gc.ca", "2.49.0.1.124.60f31a3a.2012", datetime(2012, 5, 2, 21, 55, 21, tzinfo=UTC)),
    )


def test_signed_alert_is_accepted_without_verifying_the_signature() -> None:
    alert = parse_cap(sample("canada_signed.cap"))

    assert [info.language for info in alert.infos] == ["en", "fr"]
    assert len(alert.references) == 9


def test_non_utf8_alert_is_read_in_its_declared_encoding() -> None:
    assert parse_cap(sample("earthquake-iso8859-1.cap")).infos[0].event == "Earthquake"


@pytest.mark.parametrize("name", XXE)
def test_xxe_sample_is_refused_before_the_xml_parser_sees_it(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_parsing(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the XML parser was reached")

    monkeypatch.setattr(etree, "fromstring", no_parsing)
    data = sample(name)

    with outside_access() as accessed, pytest.raises(CapRejected, match="DOCTYPE/DTD or entities") as rejected:
        parse_cap(data)

    assert accessed == []
    assert "passwd" not in rejected.value.reason


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)
    yield server
    server.close()


def test_xxe_hidden_from_the_byte_check_still_reads_nothing(listener: socket.socket, tmp_path: Path) -> None:
    # UTF-16 hides "<!DOCTYPE" from the byte check: libxml2 parses it, with entities, DTDs and network all off.
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    port = listener.getsockname()[1]
    text = sample("xee.cap").decode().replace("utf-8", "utf-16")
    text = text.replace("http://localhost:8080", f"http://127.0.0.1:{port}").replace("/etc/passwd", str(secret))
    text = text.replace(f'"http://127.0.0.1:{port}/payload3"', f'"file://{secret}"')
    data = text.encode("utf-16")
    assert b"<!DOCTYPE" not in data

    with outside_access() as accessed, pytest.raises(CapRejected, match=r"DOCTYPE/DTD or entities") as rejected:
        parse_cap(data)

    assert accessed == []
    assert "TOP-SECRET" not in rejected.value.reason
    with pytest.raises(BlockingIOError):
        listener.accept()  # nobody connected


def test_oversized_file_is_refused_before_parsing() -> None:
    data = sample("canada.cap")

    with pytest.raises(CapRejected, match="bytes"):
        parse_cap(data, max_bytes=len(data) - 1)


def test_malformed_xml_is_refused() -> None:
    with pytest.raises(CapRejected, match="not well-formed"):
        parse_cap(b"<alert xmlns='urn:oasis:names:tc:emergency:cap:1.2'><identifier>")


def test_cap_1_1_is_refused_as_unsupported() -> None:
    with pytest.raises(CapRejected, match=r"CAP 1\.1 is not supported; CAP 1\.2 only"):
        parse_cap(sample("weather.cap"))


def test_feed_is_refused_as_not_an_alert() -> None:
    with pytest.raises(CapRejected, match=r"Not a CAP 1\.2 alert.*'feed'"):
        parse_cap(sample("weather.atom"))


def test_schema_invalid_alert_is_refused_with_the_first_error_and_its_line() -> None:
    with pytest.raises(CapRejected, match=r"CAP 1\.2 schema: line 9: .*cap:scope") as rejected:
        parse_cap(sample("invalid.cap"))

    assert "urn:oasis" not in rejected.value.reason


def canada() -> CapAlert:
    return parse_cap(sample("canada.cap"))


@pytest.mark.parametrize("code", ["3537001", "3536029", "041410"])
def test_for_city_keeps_an_alert_naming_one_of_its_geocodes(code: str) -> None:
    kept = for_city(canada(), ["9999999", code])

    assert kept is not None
    assert [info.language for info in kept.infos] == ["en", "fr"]


def test_for_city_drops_an_alert_for_elsewhere() -> None:
    assert for_city(canada(), ["3520005", "3518001"]) is None


def test_for_city_keeps_only_the_info_blocks_for_the_city() -> None:
    alert = canada()
    english, french = alert.infos
    elsewhere = replace(english, areas=(replace(english.areas[0], geocodes=(("profile:CAP-CP:Location:0.3", "1"),)),))
    mixed = replace(alert, infos=(elsewhere, french))

    kept = for_city(mixed, {"3537001"})

    assert kept is not None
    assert kept.infos == (french,)


def test_draft_content_is_english_and_french_within_the_composer_limits() -> None:
    title, content = draft_content(canada())

    assert title == "severe thunderstorm watch"
    assert set(content) == {"en", "fr"}
    checked = check_content({lang: ChannelText(**parts) for lang, parts in content.items()}, ["sms", "email"])
    assert checked == content
    assert (
        content["en"]["sms"] == "severe thunderstorm watch. Monitor local conditions and take appropriate precautions"
    )
    assert content["fr"]["email_subject"] == "veille d'orages violents"
    body = content["en"]["email_body"]
    assert body.startswith("This is a test")
    assert "Expires: 2012-05-02 20:20 EDT" in body  # 00:20 UTC, shown in Toronto time
    assert body.endswith("http://www.weatheroffice.gc.ca/warnings/warnings_e.html")
    assert "Expire le : 2012-05-02 20:20 EDT" in content["fr"]["email_body"]


def test_long_text_is_trimmed_on_a_word_boundary() -> None:
    alert = canada()
    long_info = replace(alert.infos[0], headline="storm " * 40, instruction="stay inside " * 2000)

    _title, content = draft_content(replace(alert, infos=(long_info,)))

    parts = content["en"]
    assert len(parts["sms"]) <= 300
    assert parts["sms"].endswith(("stay...", "inside..."))  # whole words only
    assert len(parts["email_subject"]) <= 150
    assert len(parts["email_body"]) <= 20_000
    ChannelText(**parts)


def test_alert_without_english_uses_its_first_info_as_english() -> None:
    alert = canada()

    _title, content = draft_content(replace(alert, infos=alert.infos[1:]))

    assert content["en"] == content["fr"]
    assert content["en"]["email_subject"] == "veille d'orages violents"
