"""Small static files the hub serves itself (the chat widget, the console's script, stylesheet and vendored htmx):
read once, gzipped once, served with an ETag so browsers revalidate cheaply."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import Request, Response, status


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    etag: str
    media_type: str

    @classmethod
    def load(cls, path: Path, media_type: str) -> Asset:
        body = path.read_bytes()
        return cls(body, gzip.compress(body, 9, mtime=0), f'"{hashlib.sha256(body).hexdigest()[:20]}"', media_type)


@cache
def cached_asset(path: Path, media_type: str) -> Asset:
    """The file as an Asset, read and gzipped on first use, then kept for the life of the process."""
    return Asset.load(path, media_type)


def asset_response(request: Request, asset: Asset) -> Response:
    headers = {"ETag": asset.etag, "Cache-Control": "public, max-age=300", "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)
