"""Read a CAP 1.2 / CAP-CP alert safely, keep the city's part of it, and turn it into alert-composer text.

Pure functions: no database, no HTTP. The XML is never allowed to reach outside the bytes given.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from lxml import etree  # type: ignore[import-untyped]

CAP12 = "urn:oasis:names:tc:emergency:cap:1.2"
EDXL_DE = "urn:oasis:names:tc:emergency:EDXL:DE:1.0"
CAP_CP_LOCATION = "profile:CAP-CP:Location:"  # CAP-CP's geocode valueName, versioned: "profile:CAP-CP:Location:0.3"
OLDER_CAP = {"urn:oasis:names:tc:emergency:cap:1.1": "1.1", "http://www.incident.com/cap/1.0": "1.0"}
SCHEMA_PATH = Path(__file__).with_name("cap12.xsd")
TORONTO = ZoneInfo("America/Toronto")
SMS_CHARS = 300  # well under the composer's 1600 (SMS_MAX_CHARS): about two segments
SUBJECT_CHARS = 150  # ChannelText.email_subject
BODY_CHARS = 20_000  # ChannelText.email_body
TITLE_CHARS = 200  # AlertDraft.title
_NS = {"cap": CAP12}
_EDXL_CONTENT = "de:contentObject/de:xmlContent/de:embeddedXMLContent/*"
# CAP never needs a DTD or an entity; finding one in the raw bytes refuses the file before libxml2 reads it.
_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
_EXPIRES_LABEL = {"en": "Expires:", "fr": "Expire le :"}


class CapRejected(Exception):
    """The file is not an alert we import; `reason` says why, for staff."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CapArea:
    area_desc: str
    geocodes: tuple[tuple[str, str], ...]  # (valueName, value), e.g. ("profile:CAP-CP:Location:0.3", "3537001")
    polygons: tuple[str, ...]


@dataclass(frozen=True)
class CapInfo:
    language: str  # "en", "fr": the CAP language tag without its region
    categories: tuple[str, ...]
    event: str
    urgency: str
    severity: str
    certainty: str
    headline: str
    description: str
    instruction: str
    expires: datetime | None
    web: str
    areas: tuple[CapArea, ...]


@dataclass(frozen=True)
class CapAlert:
    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str  # Alert, Update, Cancel, Ack, Error
    scope: str
    references: tuple[tuple[str, str, datetime], ...]  # (sender, identifier, sent) of the messages this one follows
    infos: tuple[CapInfo, ...]


@cache
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMA_PATH), _safe_parser()))


def _safe_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def read_xml(data: bytes, *, max_bytes: int, what: str = "CAP alerts") -> etree._Element:
    """The root element of an XML document read with entities, DTDs and network off, or CapRejected.

    Refused: more than `max_bytes`; any DOCTYPE or entity declaration (refused unread, so nothing is ever fetched
    from disk or network); not well-formed. Shared by CAP messages and the feeds that list them.
    """
    if len(data) > max_bytes:
        raise CapRejected(f"The file is {len(data):,} bytes; {what} over {max_bytes:,} bytes are refused.")
    if _DECLARATION.search(data):
        raise CapRejected("The file declares a DOCTYPE/DTD or entities; CAP never needs one, so it is refused unread.")
    try:
        root = etree.fromstring(data, _safe_parser())
    except etree.XMLSyntaxError as error:
        raise CapRejected(f"The file is not well-formed XML: {error}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise CapRejected("The file declares a DOCTYPE/DTD or entities; CAP never needs one, so it is refused.")
    return root


def edxl_alerts(root: etree._Element) -> list[etree._Element]:
    """The messages an EDXL-DE 1.0 distribution carries in contentObject/xmlContent/embeddedXMLContent."""
    return list(root.iterfind(_EDXL_CONTENT, {"de": EDXL_DE}))


def parse_cap(data: bytes, *, max_bytes: int = 1_000_000) -> CapAlert:
    """Parse and validate one CAP 1.2 alert, or raise CapRejected with the reason.

    Refused: more than `max_bytes`; not well-formed; any DOCTYPE or entity declaration (nothing is ever fetched from
    disk or network); CAP 1.0/1.1 (CAP 1.2 only: Canadian feeds are CAP-CP 1.2); Atom/RSS envelopes (the poller
    reads those: carehub.cap.index); anything the CAP 1.2 schema rejects. An EDXL-DE 1.0 distribution carrying
    exactly one CAP alert is unwrapped (the envelope itself is not validated). An XML-DSig <Signature> is allowed by
    the schema and kept, but NOT verified: a signed alert is trusted no more than an unsigned one, and staff review
    every draft before it is sent.
    """
    root = _unwrap(read_xml(data, max_bytes=max_bytes))
    _check_root(root)
    schema = _schema()
    if not schema.validate(root):
        first = schema.error_log[0]
        message = first.message.replace("{" + CAP12 + "}", "cap:")
        raise CapRejected(f"The alert does not match the CAP 1.2 schema: line {first.line}: {message}")
    return _alert(root)


def _unwrap(root: etree._Element) -> etree._Element:
    name = etree.QName(root)
    if name.namespace != EDXL_DE or name.localname != "EDXLDistribution":
        return root
    embedded = edxl_alerts(root)
    if len(embedded) != 1:
        raise CapRejected(
            f"The EDXL-DE distribution carries {len(embedded)} embedded messages; one CAP alert at a time is "
            "imported (a feed poller reads them all)."
        )
    return embedded[0]


def _check_root(root: etree._Element) -> None:
    name = etree.QName(root)
    if name.namespace == CAP12 and name.localname == "alert":
        return
    if name.localname == "alert" and name.namespace in OLDER_CAP:
        raise CapRejected(f"CAP {OLDER_CAP[name.namespace]} is not supported; CAP 1.2 only.")
    raise CapRejected(f"Not a CAP 1.2 alert: the root element is {name.localname!r} in namespace {name.namespace!r}.")


def _text(element: etree._Element, path: str) -> str:
    found = element.find(path, _NS)
    return (found.text or "").strip() if found is not None else ""


def _when(value: str, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CapRejected(f"The {what} time {value!r} is not a date and time.") from None
    if moment.tzinfo is None:
        raise CapRejected(f"The {what} time {value!r} has no UTC offset.")
    return moment


def _references(value: str) -> tuple[tuple[str, str, datetime], ...]:
    triples: list[tuple[str, str, datetime]] = []
    for item in value.split():
        parts = item.split(",")
        if len(parts) != 3:
            raise CapRejected(f"The reference {item!r} is not 'sender,identifier,sent'.")
        triples.append((parts[0], parts[1], _when(parts[2], "reference's sent")))
    return tuple(triples)


def _language(tag: str) -> str:
    # CAP's default language is en-US; CAP-CP sends en-CA and fr-CA.
    return (tag or "en").split("-")[0].lower()


def _area(element: etree._Element) -> CapArea:
    return CapArea(
        area_desc=_text(element, "cap:areaDesc"),
        geocodes=tuple(
            (_text(code, "cap:valueName"), _text(code, "cap:value")) for code in element.iterfind("cap:geocode", _NS)
        ),
        polygons=tuple((p.text or "").strip() for p in element.iterfind("cap:polygon", _NS)),
    )


def _info(element: etree._Element) -> CapInfo:
    expires = _text(element, "cap:expires")
    return CapInfo(
        language=_language(_text(element, "cap:language")),
        categories=tuple((c.text or "").strip() for c in element.iterfind("cap:category", _NS)),
        event=_text(element, "cap:event"),
        urgency=_text(element, "cap:urgency"),
        severity=_text(element, "cap:severity"),
        certainty=_text(element, "cap:certainty"),
        headline=_text(element, "cap:headline"),
        description=_text(element, "cap:description"),
        instruction=_text(element, "cap:instruction"),
        expires=_when(expires, "expires") if expires else None,
        web=_text(element, "cap:web"),
        areas=tuple(_area(area) for area in element.iterfind("cap:area", _NS)),
    )


def _alert(root: etree._Element) -> CapAlert:
    return CapAlert(
        identifier=_text(root, "cap:identifier"),
        sender=_text(root, "cap:sender"),
        sent=_when(_text(root, "cap:sent"), "sent"),
        status=_text(root, "cap:status"),
        msg_type=_text(root, "cap:msgType"),
        scope=_text(root, "cap:scope"),
        references=_references(_text(root, "cap:references")),
        infos=tuple(_info(info) for info in root.iterfind("cap:info", _NS)),
    )


def for_city(alert: CapAlert, geocodes: Collection[str]) -> CapAlert | None:
    """The alert with only the info blocks that name one of the city's geocodes (SGC, CLC, ... any valueName).

    CAP-CP SGC codes nest: province (2 digits), census division (4), census subdivision (7). An area coded with
    one of them concerns the city when either code contains the other: a warning for Durham (CD 3518) concerns
    Pickering (CSD 3518001), and a city configured as a region (3518) is concerned by one of its municipalities.
    Other layers' codes (CLC, FIPS, ...) match exactly.
    """
    wanted = set(geocodes)
    kept = tuple(info for info in alert.infos if any(_names(area, wanted) for area in info.areas))
    return replace(alert, infos=kept) if kept else None


def _names(area: CapArea, wanted: set[str]) -> bool:
    for name, value in area.geocodes:
        if value in wanted:
            return True
        if name.startswith(CAP_CP_LOCATION) and _sgc(value) and any(_nested(value, code) for code in wanted):
            return True
    return False


def _sgc(code: str) -> bool:
    return code.isascii() and code.isdigit() and len(code) in (2, 4, 7)


def _nested(one: str, other: str) -> bool:
    return _sgc(other) and (one.startswith(other) or other.startswith(one))


def _trim(text: str, limit: int) -> str:
    """At most `limit` characters, cut on a word boundary with '...' (GSM-7 safe, unlike an ellipsis)."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 3]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:-") + "..."


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _first_sentence(text: str) -> str:
    return _SENTENCE_END.split(_one_line(text), maxsplit=1)[0]


def _sms(info: CapInfo) -> str:
    headline = _one_line(info.headline or info.event)
    follow = _first_sentence(info.instruction or info.description)
    if not follow:
        return _trim(headline, SMS_CHARS)
    joiner = " " if headline.endswith((".", "!", "?", ":")) else ". "
    return _trim(f"{headline}{joiner}{follow}" if headline else follow, SMS_CHARS)


def _paragraph(text: str) -> str:
    return "\n".join(line.strip() for line in text.strip().splitlines())


def _email_body(info: CapInfo) -> str:
    parts = [_paragraph(text) for text in (info.description, info.instruction) if text.strip()]
    if info.expires is not None:
        local = info.expires.astimezone(TORONTO).strftime("%Y-%m-%d %H:%M %Z")
        parts.append(f"{_EXPIRES_LABEL.get(info.language, 'Expires:')} {local}")
    if info.web:
        parts.append(info.web)
    return _trim("\n\n".join(parts) or _one_line(info.headline or info.event), BODY_CHARS)


def draft_content(alert: CapAlert) -> tuple[str, dict[str, dict[str, str]]]:
    """A staff-facing title and {language: {sms, email_subject, email_body}} for the alert composer.

    One info block per language (the first); English is required, so without one the first block stands in for it.
    """
    if not alert.infos:
        raise CapRejected("The alert has no info block to draft from.")
    by_language: dict[str, CapInfo] = {}
    for info in alert.infos:
        by_language.setdefault(info.language, info)
    if "en" not in by_language:
        by_language = {"en": alert.infos[0], **by_language}
    english = by_language["en"]
    title = _trim(_one_line(english.headline or english.event or alert.identifier), TITLE_CHARS)
    content = {
        language: {
            "sms": _sms(info),
            "email_subject": _trim(_one_line(info.headline or info.event), SUBJECT_CHARS),
            "email_body": _email_body(info),
        }
        for language, info in by_language.items()
    }
    return title, content
