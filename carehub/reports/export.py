"""CSV for spreadsheets: UTF-8 with a byte order mark (so Excel reads accents right), streamed batch by batch,
and safe to open: a text cell that a spreadsheet would run as a formula is prefixed with an apostrophe."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence

from fastapi.responses import StreamingResponse

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """Text that starts like a formula (=, +, -, @, tab, carriage return) is kept as text with a leading '."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def encode(rows: Sequence[Sequence[object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows([safe_cell(v) for v in row] for row in rows)
    return buffer.getvalue().encode("utf-8")


async def _stream(header: Sequence[str], batches: AsyncIterator[list[list[object]]]) -> AsyncIterator[bytes]:
    yield BOM.encode("utf-8") + encode([header])
    async for batch in batches:
        yield encode(batch)


def csv_response(filename: str, header: Sequence[str], batches: AsyncIterator[list[list[object]]]) -> StreamingResponse:
    return StreamingResponse(
        _stream(header, batches),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def one_batch(rows: list[list[object]]) -> AsyncIterator[list[list[object]]]:
    yield rows
