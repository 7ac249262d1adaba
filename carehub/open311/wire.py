"""Open311 GeoReport v2 on the wire: the same documents as JSON or XML, and the spec's error format.

The spec (wiki.open311.org/GeoReport_v2) names each endpoint with a format extension (services.json,
services.xml) and returns errors as a list of {code, description}, not problem+json: existing Open311 apps parse
exactly that, so these endpoints answer in it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Response
from lxml import etree  # type: ignore[import-untyped]

TORONTO = ZoneInfo("America/Toronto")
# XML 1.0 cannot carry these at all (not even escaped): a description a resident typed may hold them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class Format(StrEnum):
    JSON = "json"
    XML = "xml"


MEDIA_TYPES = {Format.JSON: "application/json; charset=utf-8", Format.XML: "text/xml; charset=utf-8"}


class Open311Error(Exception):
    """Answered as the spec's error list, in the format the client asked for, with this HTTP status."""

    def __init__(self, status: int, description: str, fmt: Format = Format.JSON) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.fmt = fmt


def format_of(extension: str) -> Format:
    """The format named by an endpoint's extension ("json", "xml"); anything else is a 404 (in JSON)."""
    try:
        return Format(extension.lower())
    except ValueError:
        raise Open311Error(404, f"Unknown format '.{extension}': use .json or .xml.") from None


def w3c(moment: datetime | None) -> str | None:
    """A moment as the spec writes them (W3C, with the city's offset): 2026-12-07T09:30:00-05:00."""
    return None if moment is None else moment.astimezone(TORONTO).isoformat(timespec="seconds")


def document(fmt: Format, root: str, item: str, rows: Sequence[Mapping[str, Any]], *, status: int = 200) -> Response:
    """A list of rows: a JSON array, or <root><item>...</item></root>."""
    if fmt is Format.JSON:
        return _json(list(rows), status)
    tree = etree.Element(root)
    for row in rows:
        _append(tree, item, row)
    return _xml(tree, status)


def single(fmt: Format, root: str, row: Mapping[str, Any]) -> Response:
    """One object: a JSON object, or <root>...</root> (a service definition)."""
    if fmt is Format.JSON:
        return _json(dict(row), 200)
    tree = etree.Element(root)
    _fill(tree, row)
    return _xml(tree, 200)


def error_response(error: Open311Error) -> Response:
    row = {"code": error.status, "description": error.description}
    return document(error.fmt, "errors", "error", [row], status=error.status)


def _json(value: object, status: int) -> Response:
    return Response(
        json.dumps(value, ensure_ascii=False, separators=(",", ":")), status, media_type=MEDIA_TYPES[Format.JSON]
    )


def _xml(tree: Any, status: int) -> Response:
    return Response(
        etree.tostring(tree, xml_declaration=True, encoding="UTF-8"), status, media_type=MEDIA_TYPES[Format.XML]
    )


# A list's children are named for what they hold: <attributes><attribute>, <values><value>.
_ITEM_OF = {"attributes": "attribute", "values": "value", "endpoints": "endpoint", "formats": "format"}


def _append(parent: Any, name: str, value: Any) -> None:
    element = etree.SubElement(parent, name)
    if isinstance(value, Mapping):
        _fill(element, value)
    elif isinstance(value, list):
        for entry in value:
            _append(element, _ITEM_OF.get(name, "item"), entry)
    elif value is not None:
        element.text = _text(value)


def _fill(element: Any, row: Mapping[str, Any]) -> None:
    for key, value in row.items():
        _append(element, key, value)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))
