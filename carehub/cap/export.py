"""The city's own alerts as CAP 1.2 messages, and the Atom feed that lists them (as Environment Canada's and NAADS'
feeds do: each entry links to its CAP message rather than embedding it).

Pure functions: alert data in, XML bytes out; no database, no HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from lxml import etree  # type: ignore[import-untyped]

from carehub.settings import Settings

CAP12 = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM = "http://www.w3.org/2005/Atom"
CAP_MEDIA_TYPE = "application/cap+xml"
ATOM_MEDIA_TYPE = "application/atom+xml"
TORONTO = ZoneInfo("America/Toronto")
HEADLINE_CHARS = 160  # CAP recommends a headline under 160 characters (it may become a pager or SMS text)
SGC_LOCATION = "profile:CAP-CP:Location:0.3"
# CAP categories by topic slug; an unknown topic is Other, and an alert to all residents (no topic) is Safety.
CATEGORIES = {"snow": "Met", "water": "Infra", "waste": "Env", "roads": "Transport", "emergencies": "Safety"}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


@dataclass(frozen=True)
class Publisher:
    """Who the city is in its own feed."""

    sender: str
    host: str
    city_name: str
    public_url: str  # without a trailing slash
    geocode: str | None  # the city's CAP-CP location code, for alerts to the whole city

    @classmethod
    def from_settings(cls, settings: Settings) -> Publisher:
        public_url = settings.public_url.rstrip("/")
        return cls(
            sender=settings.cap_sender or settings.email_from_address,
            host=urlsplit(public_url).hostname or "localhost",
            city_name=settings.city_name,
            public_url=public_url,
            geocode=settings.cap_geocodes[0] if settings.cap_geocodes else None,
        )

    def identifier(self, alert_id: int, *, cancel: bool = False) -> str:
        return f"urn:carehub:{self.host}:alert:{alert_id}" + (":cancel" if cancel else "")

    def alert_url(self, alert_id: int) -> str:
        return f"{self.public_url}/cap/alerts/{alert_id}.xml"

    def feed_url(self) -> str:
        return f"{self.public_url}/cap/alerts.atom"


@dataclass(frozen=True)
class PublishedArea:
    name: str
    geometry: Mapping[str, Any] | None  # GeoJSON Polygon or MultiPolygon, [lon, lat] positions


@dataclass(frozen=True)
class PublishedAlert:
    """One alert that went out, as the feed publishes it."""

    id: int
    kind: str  # alert, update, all_clear
    title: str
    emergency: bool
    content: Mapping[str, Mapping[str, str]]  # {language: {sms, email_subject, email_body}}
    started_at: datetime
    cancelled_at: datetime | None  # set: cancelled after its deliveries started, published as a Cancel
    topic_slug: str | None
    topic_names: Mapping[str, str]  # {language: name}
    areas: tuple[PublishedArea, ...]
    parent: tuple[int, datetime] | None  # (id, started_at) of the alert an update or all-clear follows

    @property
    def sent(self) -> datetime:
        return self.cancelled_at or self.started_at

    @property
    def msg_type(self) -> str:
        if self.cancelled_at is not None:
            return "Cancel"
        return "Alert" if self.kind == "alert" else "Update"


def cap_time(moment: datetime) -> str:
    """CAP's date-time: local time with its offset and no fraction ("2026-11-30T02:55:00-05:00"); never "Z"."""
    return moment.astimezone(TORONTO).replace(microsecond=0).isoformat()


def _first_sentence(text: str) -> str:
    return _SENTENCE_END.split(" ".join(text.split()), maxsplit=1)[0]


def _trim(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 3]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:-") + "..."


def headline(parts: Mapping[str, str]) -> str:
    subject = (parts.get("email_subject") or "").strip()
    return subject or _trim(_first_sentence(parts.get("sms") or ""), HEADLINE_CHARS)


def _description(parts: Mapping[str, str]) -> str:
    return (parts.get("email_body") or "").strip() or (parts.get("sms") or "").strip()


def _languages(content: Mapping[str, Mapping[str, str]]) -> list[str]:
    return sorted(content, key=lambda language: ({"en": 0, "fr": 1}.get(language, 2), language))


def _coordinate(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")  # a micro-degree is about 0.1 m


def polygons(geometry: Mapping[str, Any] | None) -> list[str]:
    """CAP polygons ("lat,lon lat,lon ...", closed) from the outer ring of each GeoJSON polygon; holes are dropped,
    as CAP has no way to say them (an area a little too large errs on the side of warning)."""
    if not geometry:
        return []
    if geometry.get("type") == "Polygon":
        rings = [geometry["coordinates"][0]] if geometry.get("coordinates") else []
    elif geometry.get("type") == "MultiPolygon":
        rings = [polygon[0] for polygon in geometry.get("coordinates") or [] if polygon]
    else:
        return []
    found = []
    for ring in rings:
        points = [(float(p[1]), float(p[0])) for p in ring]
        if points and points[0] != points[-1]:
            points.append(points[0])
        if len(points) >= 4:  # CAP: at least four pairs, the first and last the same
            found.append(" ".join(f"{_coordinate(lat)},{_coordinate(lon)}" for lat, lon in points))
    return found


def _sub(parent: etree._Element, name: str, text: str | None = None, namespace: str = CAP12) -> etree._Element:
    element = etree.SubElement(parent, f"{{{namespace}}}{name}")
    if text is not None:
        element.text = text
    return element


def _references(alert: PublishedAlert, publisher: Publisher) -> str | None:
    """What this message follows: a Cancel names only the message it cancels (CAP cancels every message it
    references, so naming a cancelled update's parent would cancel that too); an update names its alert."""
    if alert.cancelled_at is not None:
        return f"{publisher.sender},{publisher.identifier(alert.id)},{cap_time(alert.started_at)}"
    if alert.parent is not None:
        parent_id, parent_sent = alert.parent
        return f"{publisher.sender},{publisher.identifier(parent_id)},{cap_time(parent_sent)}"
    return None


def _area(info: etree._Element, alert: PublishedAlert, publisher: Publisher) -> None:
    for area in alert.areas:
        element = _sub(info, "area")
        _sub(element, "areaDesc", area.name)
        for polygon in polygons(area.geometry):
            _sub(element, "polygon", polygon)
    if not alert.areas:
        element = _sub(info, "area")
        _sub(element, "areaDesc", publisher.city_name)
        if publisher.geocode:
            geocode = _sub(element, "geocode")
            _sub(geocode, "valueName", SGC_LOCATION)
            _sub(geocode, "value", publisher.geocode)


def _info(root: etree._Element, alert: PublishedAlert, language: str, publisher: Publisher) -> None:
    parts = alert.content[language]
    info = _sub(root, "info")
    _sub(info, "language", f"{language}-CA" if language in ("en", "fr") else language)
    default = "Safety" if alert.topic_slug is None else "Other"
    _sub(info, "category", CATEGORIES.get(alert.topic_slug or "", default))
    _sub(info, "event", alert.topic_names.get(language) or alert.topic_names.get("en") or "Alert")
    urgency, severity, certainty = (
        ("Immediate", "Severe", "Observed") if alert.emergency else ("Expected", "Moderate", "Likely")
    )
    _sub(info, "urgency", urgency)
    _sub(info, "severity", severity)
    _sub(info, "certainty", certainty)
    # No <expires>: an alert holds no end time (finished_at is when its deliveries ended, not the hazard).
    _sub(info, "senderName", publisher.city_name)
    _sub(info, "headline", headline(parts))
    _sub(info, "description", _description(parts))
    _sub(info, "web", f"{publisher.public_url}/alerts")
    _area(info, alert, publisher)


def alert_element(alert: PublishedAlert, publisher: Publisher) -> etree._Element:
    """One CAP 1.2 <alert>, its elements in the schema's order."""
    root = etree.Element(f"{{{CAP12}}}alert", nsmap={None: CAP12})
    _sub(root, "identifier", publisher.identifier(alert.id, cancel=alert.cancelled_at is not None))
    _sub(root, "sender", publisher.sender)
    _sub(root, "sent", cap_time(alert.sent))
    _sub(root, "status", "Actual")
    _sub(root, "msgType", alert.msg_type)
    _sub(root, "scope", "Public")
    references = _references(alert, publisher)
    if references is not None:
        _sub(root, "references", references)
    for language in _languages(alert.content):
        _info(root, alert, language, publisher)
    return root


def alert_xml(alert: PublishedAlert, publisher: Publisher) -> bytes:
    return bytes(etree.tostring(alert_element(alert, publisher), xml_declaration=True, encoding="UTF-8"))


def _atom_time(moment: datetime) -> str:
    return cap_time(moment)  # RFC 3339 as well


def atom_feed(alerts: Sequence[PublishedAlert], publisher: Publisher, now: datetime) -> bytes:
    """An Atom 1.0 feed with one entry per alert, newest first as given; each links to its CAP message."""
    feed = etree.Element(f"{{{ATOM}}}feed", nsmap={None: ATOM})
    _sub(feed, "id", f"urn:carehub:{publisher.host}:alerts", ATOM)
    _sub(feed, "title", f"{publisher.city_name} alerts", ATOM)
    _sub(feed, "updated", _atom_time(max((a.sent for a in alerts), default=now)), ATOM)
    _sub(feed, "link", namespace=ATOM).attrib.update(
        {"rel": "self", "type": ATOM_MEDIA_TYPE, "href": publisher.feed_url()}
    )
    _sub(_sub(feed, "author", namespace=ATOM), "name", publisher.city_name, ATOM)
    for alert in alerts:
        english = alert.content.get("en") or next(iter(alert.content.values()), {})
        entry = _sub(feed, "entry", namespace=ATOM)
        _sub(entry, "id", publisher.identifier(alert.id, cancel=alert.cancelled_at is not None), ATOM)
        title = alert.title or headline(english)
        _sub(entry, "title", f"Cancelled: {title}" if alert.cancelled_at is not None else title, ATOM)
        _sub(entry, "updated", _atom_time(alert.sent), ATOM)
        _sub(entry, "link", namespace=ATOM).attrib.update(
            {"rel": "alternate", "type": CAP_MEDIA_TYPE, "href": publisher.alert_url(alert.id)}
        )
        _sub(entry, "summary", headline(english), ATOM).set("type", "text")
    return bytes(etree.tostring(feed, xml_declaration=True, encoding="UTF-8"))
