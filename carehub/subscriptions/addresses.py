"""Placing a resident in an alert area by their street address, with no geocoder: the address is normalised to the
key of one of the city's published address points (civic address, longitude, latitude), and the point falls in an
area's boundary. Also reads the city's address points file for `carehub load-address-points`."""

from __future__ import annotations

import csv
import math
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.subscriptions import places
from carehub.subscriptions.areas import point_in_area
from carehub.subscriptions.places import AreaRow

MAX_ADDRESS_CHARS = 200  # the column's width; no civic address is longer

# Canada Post's street types, abbreviated and in full, written one way (the full word) so either matches.
STREET_TYPES = {
    "av": "avenue",
    "ave": "avenue",
    "blvd": "boulevard",
    "boul": "boulevard",
    "cir": "circle",
    "crcl": "circle",
    "cr": "crescent",
    "cres": "crescent",
    "crt": "court",
    "ct": "court",
    "dr": "drive",
    "gdns": "gardens",
    "gt": "gate",
    "hts": "heights",
    "hwy": "highway",
    "ln": "lane",
    "pkwy": "parkway",
    "pky": "parkway",
    "pl": "place",
    "rd": "road",
    "sq": "square",
    "st": "street",
    "terr": "terrace",
    "tr": "trail",
    "trl": "trail",
}
DIRECTIONS = {"e": "east", "w": "west", "n": "north", "s": "south", "ne": "northeast", "nw": "northwest",
              "se": "southeast", "sw": "southwest", "o": "ouest"}  # fmt: skip

# A unit in the address ("unit 4", "apt. 2", "#12", "suite 100", "app 3"): not part of the civic address.
_UNIT = re.compile(r"(?:\b(?:unit|apt|apartment|suite|app|appartement|bureau)\b\.?|#)\s*(?:[a-z]?\d+[a-z]?|[a-z])\b")
# The Canadian "unit-number" form: "4-1867 Valley Farm Rd" is unit 4 at 1867.
_UNIT_PREFIX = re.compile(r"^\s*[a-z]?\d+[a-z]?\s*-\s*(?=\d)")
_WORD = re.compile(r"[a-z0-9]+")
_HOUSE_NUMBER = re.compile(r"\d+[a-z]?")


def normalise_address(text: str) -> str | None:
    """A civic address as a lookup key: "1867 Valley Farm Rd., Unit 4" → "1867 valley farm road". Lowercase, no
    accents or punctuation, units and anything after the first comma (the city, the postal code) dropped, street
    types and directions written in full. None when it does not start with a house number."""
    folded = unicodedata.normalize("NFKD", text.casefold()[: MAX_ADDRESS_CHARS * 2])
    folded = "".join(c for c in folded if not unicodedata.combining(c)).replace("'", "").replace("\u2019", "")
    folded = _UNIT_PREFIX.sub("", _UNIT.sub(" ", folded))
    street = next((part for part in re.split(r"[,;\n]", folded) if part.strip()), "")
    words = _WORD.findall(street)
    if len(words) < 2 or not _HOUSE_NUMBER.fullmatch(words[0]):
        return None
    # The first word of the street's name stays as typed: "St Clair", "N Service Road" are names.
    spelled = words[:2] + [STREET_TYPES.get(w) or DIRECTIONS.get(w) or w for w in words[2:]]
    return " ".join(spelled)[:MAX_ADDRESS_CHARS]


async def area_for_address(conn: AsyncConnection, areas: Sequence[AreaRow], text: str) -> AreaRow | None:
    """The first area whose boundary holds the city's address point for this address; None if the address is not
    one the city published, or its point is in no area."""
    key = normalise_address(text)
    if key is None:
        return None
    point = await places.address_point(conn, key)
    if point is None:
        return None
    lon, lat = point
    return next((area for area in areas if point_in_area(area.geometry, lon, lat)), None)


@dataclass(frozen=True)
class Skipped:
    line: int  # in the file, counting the header as line 1
    reason: str


def _coordinate(text: str | None, limit: float) -> float | None:
    try:
        value = float((text or "").strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and -limit <= value <= limit else None


def read_address_points(path: Path) -> Iterator[dict[str, object] | Skipped]:
    """The rows of a CSV file with the columns address, lon and lat (others ignored), each as a point ready for
    upsert_address_points or as the reason it was skipped. ValueError if the header lacks a column."""
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file)
        header = [name.strip().casefold() for name in next(reader, [])]
        missing = [name for name in ("address", "lon", "lat") if name not in header]
        if missing:
            raise ValueError(f"{path}: the header has no {', '.join(missing)} column (it needs address, lon, lat)")
        at = {name: header.index(name) for name in ("address", "lon", "lat")}
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            cells = {name: row[i] if i < len(row) else "" for name, i in at.items()}
            label = cells["address"].strip()
            key = normalise_address(label) if label else None
            lon, lat = _coordinate(cells["lon"], 180), _coordinate(cells["lat"], 90)
            if not label:
                yield Skipped(reader.line_num, "no address")
            elif key is None:
                yield Skipped(reader.line_num, f"{label!r} does not start with a house number")
            elif lon is None or lat is None:
                yield Skipped(reader.line_num, f"bad longitude or latitude ({cells['lon']!r}, {cells['lat']!r})")
            else:
                yield {"address_key": key, "label": label[:MAX_ADDRESS_CHARS], "lon": lon, "lat": lat}
