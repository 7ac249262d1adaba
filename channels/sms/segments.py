"""SMS encoding and segment count as carriers (and Twilio) bill them, so the composer can show the cost of a text.

A body is GSM-7 when every character is in the GSM 03.38 default alphabet or its extension table, otherwise the
whole body goes out as UCS-2. One segment carries 160 septets or 70 UTF-16 code units; a concatenated message
loses 6 octets per segment to the user data header, leaving 153 / 67. An extension character is sent as ESC plus
a septet, and a character outside the BMP (most emoji) as a surrogate pair: neither pair may be split across two
segments, so the count comes from packing the characters, not from dividing the length.

The count is of the body exactly as given: no Unicode normalisation (a decomposed "e" + U+0301 is UCS-2 on
Twilio too) and no Smart Encoding substitution (curly quotes stay UCS-2). An empty body is 0 segments: Twilio
refuses to send one, so there is nothing to bill.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

# GSM 03.38 default alphabet, in table order (0x1B, the escape to the extension table, is not a character).
# Ç is the capital: lower-case ç is not in the table, and neither are ê, â, î, ô, û, ë, ï, È, À, œ.
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: each costs two septets (ESC + code). Form feed is its 0x0A entry.
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")

# (single segment, each segment of a concatenated message), in septets or UTF-16 code units.
_CAPACITY: dict[Encoding, tuple[int, int]] = {"GSM-7": (160, 153), "UCS-2": (70, 67)}


@dataclass(frozen=True)
class SegmentInfo:
    """How a body will be encoded and how many billable segments it takes."""

    encoding: Encoding
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    per_segment: int  # the capacity that applied: 160 / 153 (GSM-7) or 70 / 67 (UCS-2)
    non_gsm: tuple[str, ...]  # distinct characters that forced UCS-2, in order of first appearance


def sms_segments(text: str) -> SegmentInfo:
    """Encoding, length in units and segment count of `text` as an SMS body."""
    non_gsm = tuple(dict.fromkeys(ch for ch in text if ch not in GSM_BASIC and ch not in GSM_EXTENSION))
    encoding: Encoding
    if non_gsm:
        encoding = "UCS-2"
        costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    else:
        encoding = "GSM-7"
        costs = [2 if ch in GSM_EXTENSION else 1 for ch in text]
    units = sum(costs)
    single, concatenated = _CAPACITY[encoding]
    if units == 0:
        return SegmentInfo(encoding, 0, 0, single, non_gsm)
    if units <= single:
        return SegmentInfo(encoding, units, 1, single, non_gsm)
    return SegmentInfo(encoding, units, _pack(costs, concatenated), concatenated, non_gsm)


def _pack(costs: Iterable[int], capacity: int) -> int:
    """Segments needed when each character's units must stay together in one segment."""
    segments, used = 1, 0
    for cost in costs:
        if used + cost > capacity:
            segments += 1
            used = 0
        used += cost
    return segments
