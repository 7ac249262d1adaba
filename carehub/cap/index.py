"""Read a CAP feed: an Atom or RSS index whose entries link to CAP messages (Environment Canada, NAADS, NWS) or
embed them, a bare CAP message, or an EDXL-DE distribution of CAP messages. What it lists, not what the messages
say: each message is read on its own by carehub.cap.parse. Pure functions: no HTTP, no database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

from lxml import etree  # type: ignore[import-untyped]

from carehub.cap.parse import CAP12, EDXL_DE, OLDER_CAP, CapRejected, edxl_alerts, read_xml

ATOM = "http://www.w3.org/2005/Atom"
CAP_MEDIA_TYPE = "application/cap+xml"
# A link with one of these types (or none) may be the CAP message; text/html is the issuer's web page.
_XML_TYPES = {CAP_MEDIA_TYPE, "application/xml", "text/xml", ""}
_CAP_NAMESPACES = {CAP12, *OLDER_CAP}
_A = {"a": ATOM}


@dataclass(frozen=True)
class FeedEntry:
    """One message a feed lists: at `url` (a link), or `message` itself (embedded). `key` names the entry across
    polls (its id, else its link); `updated` changes when the issuer changes the entry."""

    key: str
    url: str | None
    message: bytes | None
    updated: datetime | None


@dataclass(frozen=True)
class FeedIndex:
    kind: str  # atom, rss, cap, edxl-de
    entries: tuple[FeedEntry, ...]
    skipped: tuple[str, ...]  # why some entries give nothing to read, for the log


def parse_index(data: bytes, base_url: str, *, max_bytes: int) -> FeedIndex:
    """What a feed document lists, or CapRejected with the reason. Read like a CAP message (size limit, any DOCTYPE
    or entity refused unread); relative links are resolved against `base_url`; only http(s) links are kept."""
    root = read_xml(data, max_bytes=max_bytes, what="CAP feeds")
    name = etree.QName(root)
    if name.namespace == ATOM and name.localname == "feed":
        return _dedupe("atom", [_atom_entry(entry, base_url) for entry in root.iterfind("a:entry", _A)])
    if name.namespace is None and name.localname == "rss":
        return _dedupe("rss", [_rss_item(item, base_url) for item in root.iterfind("channel/item")])
    if name.localname == "alert" and name.namespace in _CAP_NAMESPACES:
        return FeedIndex("cap", (FeedEntry(_identifier(root) or base_url, None, data, None),), ())
    if name.namespace == EDXL_DE and name.localname == "EDXLDistribution":
        return _edxl(root)
    raise CapRejected(
        f"Not a CAP feed (Atom, RSS 2.0, EDXL-DE 1.0 or a CAP alert): the root element is {name.localname!r} "
        f"in namespace {name.namespace!r}."
    )


def _dedupe(kind: str, read: list[FeedEntry | str]) -> FeedIndex:
    entries: dict[str, FeedEntry] = {}
    skipped: list[str] = []
    for item in read:
        if isinstance(item, str):
            skipped.append(item)
        elif item.key in entries:
            skipped.append(f"Entry {item.key!r} is listed twice; the first is read.")
        else:
            entries[item.key] = item
    return FeedIndex(kind, tuple(entries.values()), tuple(skipped))


def _identifier(alert: etree._Element) -> str:
    for child in alert:
        if isinstance(child.tag, str) and etree.QName(child).localname == "identifier":
            return (child.text or "").strip()
    return ""


def _embedded(container: etree._Element | None) -> etree._Element | None:
    """A CAP alert (any version: parse says why an old one is refused) given as a child of the entry's content."""
    if container is None:
        return None
    for child in container:
        if isinstance(child.tag, str):
            name = etree.QName(child)
            if name.localname == "alert" and name.namespace in _CAP_NAMESPACES:
                return child
    return None


def _link(href: str, base_url: str) -> str:
    return urljoin(base_url, href.strip())


def _http(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _entry(key: str, url: str | None, alert: etree._Element | None, updated: datetime | None) -> FeedEntry | str:
    """An embedded alert is read as it is (its link, if any, is not fetched)."""
    if alert is not None:
        return FeedEntry(key or _identifier(alert) or url or "", None, bytes(etree.tostring(alert)), updated)
    if url is None:
        return f"Entry {key or '(no id)'!r} has no link to a CAP message and embeds none."
    if not _http(url):
        return f"Entry {key or url!r} links to {url!r}: only http and https links are followed."
    return FeedEntry(key or url, url, None, updated)


def _atom_entry(entry: etree._Element, base_url: str) -> FeedEntry | str:
    key = (entry.findtext("a:id", "", _A) or "").strip()
    alert = _embedded(entry.find("a:content", _A))
    return _entry(key, _atom_link(entry, base_url), alert, _iso(entry.findtext("a:updated", "", _A)))


def _atom_link(entry: etree._Element, base_url: str) -> str | None:
    """The link typed as CAP whatever its rel (USGS uses related), else the first alternate that may be XML
    (NWS and Environment Canada give no type)."""
    links = [
        (link.get("rel", "alternate"), link.get("type", "").lower(), link.get("href"))
        for link in entry.iterfind("a:link", _A)
        if link.get("href")
    ]
    for _rel, kind, href in links:
        if kind == CAP_MEDIA_TYPE:
            return _link(href, base_url)
    for rel, kind, href in links:
        if rel == "alternate" and kind in _XML_TYPES:
            return _link(href, base_url)
    return None


def _rss_item(item: etree._Element, base_url: str) -> FeedEntry | str:
    key = (item.findtext("guid") or "").strip()
    enclosure = next((e.get("url") for e in item.iterfind("enclosure") if e.get("type") == CAP_MEDIA_TYPE), None)
    href = enclosure or (item.findtext("link") or "").strip()
    url = _link(href, base_url) if href else None
    return _entry(key, url, _embedded(item), _rfc822(item.findtext("pubDate")))


def _edxl(root: etree._Element) -> FeedIndex:
    distribution = (root.findtext("de:distributionID", "", {"de": EDXL_DE}) or "").strip()
    entries: list[FeedEntry | str] = []
    for n, element in enumerate(edxl_alerts(root), start=1):
        name = etree.QName(element)
        if name.localname != "alert" or name.namespace not in _CAP_NAMESPACES:
            entries.append(f"Content object {n} of {distribution!r} is {name.localname!r}, not a CAP alert.")
            continue
        key = _identifier(element) or f"{distribution}#{n}"
        entries.append(FeedEntry(key, None, bytes(etree.tostring(element)), None))
    if not entries:
        entries.append(f"The EDXL-DE distribution {distribution!r} embeds no XML content.")
    return _dedupe("edxl-de", entries)


def _iso(text: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat((text or "").strip())
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _rfc822(text: str | None) -> datetime | None:
    try:
        moment = parsedate_to_datetime((text or "").strip())
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
