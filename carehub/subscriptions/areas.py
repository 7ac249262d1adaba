"""Placing a resident in an alert area, with no database and no network: by postal code (the exact code, else its
forward sortation area) or by a point inside a GeoJSON (Multi)Polygon; and checking the geometry staff upload."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

MAX_POSITIONS = 10_000

# Canada Post: letter digit letter, digit letter digit. D F I O Q U never appear; W and Z never come first.
_POSTAL_CODE = re.compile(r"([ABCEGHJ-NPRSTVXY][0-9][ABCEGHJ-NPRSTV-Z])([0-9][ABCEGHJ-NPRSTV-Z][0-9])")
_FSA = re.compile(r"[ABCEGHJ-NPRSTVXY][0-9][ABCEGHJ-NPRSTV-Z]")
_SPACES = re.compile(r"[\s-]+")

Ring = list[tuple[float, float]]
Polygon = list[Ring]


class HasPostalCodes(Protocol):
    @property
    def postal_codes(self) -> Sequence[str]: ...


A = TypeVar("A", bound=HasPostalCodes)


def normalise_postal_code(text: str) -> str | None:
    """A Canadian postal code as Canada Post writes it ("l1v6k7", "L1V-6K7" → "L1V 6K7"); None if it is not one."""
    found = _POSTAL_CODE.fullmatch(_SPACES.sub("", text.upper()))
    return None if found is None else f"{found.group(1)} {found.group(2)}"


def normalise_area_code(text: str) -> str | None:
    """A full postal code, or a forward sortation area alone ("l1v" → "L1V"), as an area lists them."""
    compact = _SPACES.sub("", text.upper())
    if _FSA.fullmatch(compact):
        return compact
    return normalise_postal_code(compact)


def area_for_postal_code(areas: Sequence[A], code: str) -> A | None:
    """The area listing this exact postal code, else the first listing its forward sortation area (first three
    characters); None when neither is listed anywhere. `code` must already be normalised."""
    by_fsa: A | None = None
    fsa = code[:3]
    for area in areas:
        if code in area.postal_codes:
            return area
        if by_fsa is None and fsa in area.postal_codes:
            by_fsa = area
    return by_fsa


def _in_ring(ring: Sequence[Sequence[float]], x: float, y: float) -> bool:
    """Ray casting: a ray from the point towards +x crosses the ring's edges an odd number of times iff inside."""
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i][0], ring[i][1]
        xj, yj = ring[j][0], ring[j][1]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def _in_polygon(rings: Sequence[Sequence[Sequence[float]]], x: float, y: float) -> bool:
    """Inside the outer ring and outside every hole."""
    if not rings or not _in_ring(rings[0], x, y):
        return False
    return not any(_in_ring(hole, x, y) for hole in rings[1:])


def point_in_area(geometry: dict[str, Any] | None, lon: float, lat: float) -> bool:
    """Whether (lon, lat) lies in a GeoJSON Polygon or MultiPolygon (holes excluded). Points exactly on an edge may
    fall either way, which does not matter at the scale of a street address."""
    if not geometry:
        return False
    kind, coordinates = geometry.get("type"), geometry.get("coordinates") or []
    if kind == "Polygon":
        return _in_polygon(coordinates, lon, lat)
    if kind == "MultiPolygon":
        return any(_in_polygon(polygon, lon, lat) for polygon in coordinates)
    return False


def _number(value: object, where: str, name: str, limit: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where}: the {name} must be a number, not {value!r}.")
    if not -limit <= value <= limit:
        raise ValueError(f"{where}: the {name} {value} is outside -{limit:g} to {limit:g}.")
    return float(value)


def _ring(value: object, where: str) -> list[list[float]]:
    if not isinstance(value, list):
        raise ValueError(f"{where}: a ring must be a list of [longitude, latitude] positions.")
    if len(value) < 4:
        raise ValueError(f"{where}: a ring needs at least 4 positions (the first repeated last); it has {len(value)}.")
    positions = []
    for index, position in enumerate(value):
        at = f"{where}[{index}]"
        if not isinstance(position, list) or len(position) not in (2, 3):
            raise ValueError(f"{at}: a position must be [longitude, latitude], not {position!r}.")
        lon = _number(position[0], at, "longitude", 180)
        lat = _number(position[1], at, "latitude", 90)
        positions.append([lon, lat])
    if positions[0] != positions[-1]:
        raise ValueError(f"{where}: the ring is not closed; its last position must repeat its first.")
    return positions


def _polygon(value: object, where: str) -> list[list[list[float]]]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where}: a polygon must be a non-empty list of rings (the outline, then any holes).")
    return [_ring(ring, f"{where}[{index}]") for index, ring in enumerate(value)]


def validate_geometry(obj: object) -> dict[str, Any]:
    """The geometry as a clean GeoJSON Polygon or MultiPolygon (numbers as floats, no extra members), or ValueError
    with a message that says where the problem is ("coordinates[0][3]: ...")."""
    if not isinstance(obj, dict):
        raise ValueError("The geometry must be a GeoJSON object with 'type' and 'coordinates'.")
    kind = obj.get("type")
    if kind not in ("Polygon", "MultiPolygon"):
        raise ValueError(f"The geometry's type must be 'Polygon' or 'MultiPolygon', not {kind!r}.")
    coordinates = obj.get("coordinates")
    if kind == "Polygon":
        polygons = [_polygon(coordinates, "coordinates")]
    else:
        if not isinstance(coordinates, list) or not coordinates:
            raise ValueError("coordinates: a MultiPolygon must be a non-empty list of polygons.")
        polygons = [_polygon(polygon, f"coordinates[{index}]") for index, polygon in enumerate(coordinates)]
    count = sum(len(ring) for polygon in polygons for ring in polygon)
    if count > MAX_POSITIONS:
        raise ValueError(f"The geometry has {count} positions; the limit is {MAX_POSITIONS}. Simplify it first.")
    return {"type": kind, "coordinates": polygons[0] if kind == "Polygon" else polygons}
