"""Placing residents in alert areas without a database: Canadian postal codes, the exact code before its forward
sortation area, points in polygons with holes and in multipolygons, and the messages for a bad geometry."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from carehub.subscriptions.areas import (
    MAX_POSITIONS,
    area_for_postal_code,
    normalise_area_code,
    normalise_postal_code,
    point_in_area,
    validate_geometry,
)


@dataclass(frozen=True)
class Place:
    slug: str
    postal_codes: list[str] = field(default_factory=list)


def square(west: float, south: float, east: float, north: float) -> list[list[float]]:
    return [[west, south], [east, south], [east, north], [west, north], [west, south]]


# A 10x10 block with a 2x2 hole in the middle (a park inside a ward, say).
WITH_HOLE: dict[str, Any] = {"type": "Polygon", "coordinates": [square(0, 0, 10, 10), square(4, 4, 6, 6)]}


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("l1v 6k7", "L1V 6K7"),
        ("L1V6K7", "L1V 6K7"),
        ("  l1v-6k7 ", "L1V 6K7"),
        ("K1A 0B1", "K1A 0B1"),
        ("90210", None),
        ("L1V 6K", None),
        ("W1V 6K7", None),  # W never starts a postal code
        ("L1D 6K7", None),  # D never appears
        ("L1V 6K7 extra", None),
        ("", None),
    ],
)
def test_postal_codes_are_canadian_and_written_as_canada_post_does(typed: str, expected: str | None) -> None:
    assert normalise_postal_code(typed) == expected


def test_an_area_may_list_whole_codes_or_forward_sortation_areas() -> None:
    assert normalise_area_code("l1v") == "L1V"
    assert normalise_area_code("l1v6k7") == "L1V 6K7"
    assert normalise_area_code("L1") is None


def test_the_exact_postal_code_wins_over_its_forward_sortation_area() -> None:
    ward, street = Place("ward-1", ["L1V", "L1W"]), Place("esplanade", ["L1V 6K7"])
    assert area_for_postal_code([ward, street], "L1V 6K7") is street
    assert area_for_postal_code([ward, street], "L1V 1B2") is ward
    assert area_for_postal_code([ward, street], "L1W 3X9") is ward
    assert area_for_postal_code([ward, street], "K1A 0B1") is None
    assert area_for_postal_code([], "L1V 6K7") is None


def test_a_point_in_a_polygon_but_in_its_hole_is_outside() -> None:
    assert point_in_area(WITH_HOLE, 2, 2)
    assert point_in_area(WITH_HOLE, 9.5, 5)
    assert not point_in_area(WITH_HOLE, 5, 5)  # in the hole
    assert not point_in_area(WITH_HOLE, 11, 5)
    assert not point_in_area(WITH_HOLE, -0.5, 5)


def test_a_multipolygon_holds_a_point_in_any_of_its_parts() -> None:
    islands = {
        "type": "MultiPolygon",
        "coordinates": [[square(0, 0, 1, 1)], [square(5, 5, 6, 6), square(5.4, 5.4, 5.6, 5.6)]],
    }
    assert point_in_area(islands, 0.5, 0.5)
    assert point_in_area(islands, 5.2, 5.2)
    assert not point_in_area(islands, 5.5, 5.5)  # the second island's hole
    assert not point_in_area(islands, 3, 3)  # the water between


def test_a_concave_area_along_real_coordinates() -> None:
    # An L-shaped zone in Pickering: the notch is outside.
    zone = {
        "type": "Polygon",
        "coordinates": [
            [
                [-79.10, 43.80],
                [-79.00, 43.80],
                [-79.00, 43.85],
                [-79.05, 43.85],
                [-79.05, 43.90],
                [-79.10, 43.90],
                [-79.10, 43.80],
            ]
        ],
    }
    assert point_in_area(zone, -79.08, 43.88)
    assert point_in_area(zone, -79.02, 43.82)
    assert not point_in_area(zone, -79.02, 43.88)


def test_no_geometry_or_another_type_holds_nothing() -> None:
    assert not point_in_area(None, 0, 0)
    assert not point_in_area({"type": "Point", "coordinates": [0, 0]}, 0, 0)


def test_a_valid_geometry_comes_back_clean() -> None:
    cleaned = validate_geometry({**WITH_HOLE, "properties": {"ignored": True}})
    assert cleaned == {
        "type": "Polygon",
        "coordinates": [[[float(x), float(y)] for x, y in ring] for ring in WITH_HOLE["coordinates"]],
    }
    multi = validate_geometry({"type": "MultiPolygon", "coordinates": [[square(0, 0, 1, 1)]]})
    assert multi["type"] == "MultiPolygon"


@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        ([1, 2], "must be a GeoJSON object"),
        ({"type": "LineString", "coordinates": []}, "must be 'Polygon' or 'MultiPolygon', not 'LineString'"),
        ({"type": "Polygon", "coordinates": []}, "coordinates: a polygon must be a non-empty list of rings"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}, "needs at least 4 positions"),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]},
            "coordinates[0]: the ring is not closed",
        ),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], ["1", 1], [0, 0]]]},
            "coordinates[0][2]: the longitude must be a number",
        ),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [181, 0], [1, 1], [0, 0]]]},
            "coordinates[0][1]: the longitude 181 is outside -180 to 180",
        ),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, -91], [0, 0]]]},
            "coordinates[0][2]: the latitude -91 is outside -90 to 90",
        ),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [True, 1], [0, 0]]]}, "must be a number"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1], [1, 1], [0, 0]]]}, "must be [longitude, latitude]"),
        ({"type": "MultiPolygon", "coordinates": []}, "a MultiPolygon must be a non-empty list of polygons"),
        (
            {"type": "MultiPolygon", "coordinates": [[square(0, 0, 1, 1)], [[[0, 0], [1, 0], [1, 1], [0, 1]]]]},
            "coordinates[1][0]: the ring is not closed",
        ),
    ],
)
def test_a_bad_geometry_is_refused_with_where_and_why(geometry: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        validate_geometry(geometry)


def test_a_geometry_past_the_position_limit_is_refused() -> None:
    ring = [[i * 1e-6, 0.0] for i in range(MAX_POSITIONS)] + [[0.0, 1.0], [0.0, 0.0]]
    with pytest.raises(ValueError, match="10002 positions; the limit is 10000"):
        validate_geometry({"type": "Polygon", "coordinates": [ring]})
