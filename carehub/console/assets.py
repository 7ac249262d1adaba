"""The console's own files: its stylesheet and script, and htmx (vendored, see templates/console/vendor/README.md),
read and gzipped once per process, served with ETags."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request, Response

from carehub.agents.auth import RuntimeDep
from carehub.problems import Problem
from carehub.static_assets import Asset, asset_response, cached_asset

router = APIRouter(prefix="/console", include_in_schema=False)

FILES = {
    "console.css": ("console.css", "text/css; charset=utf-8"),
    "console.js": ("console.js", "text/javascript; charset=utf-8"),
    "htmx.min.js": ("vendor/htmx.min.js", "text/javascript; charset=utf-8"),
}


def _load(root: Path, name: str) -> Asset:
    path, media_type = FILES[name]
    return cached_asset(root / "console" / path, media_type)


@router.get("/console.css")
async def stylesheet(request: Request, rt: RuntimeDep) -> Response:
    return asset_response(request, _load(rt.templates.root, "console.css"))


@router.get("/assets/{name}")
async def asset(name: str, request: Request, rt: RuntimeDep) -> Response:
    if name not in FILES:
        raise Problem(404, f"The console has no file called {name!r}.")
    return asset_response(request, _load(rt.templates.root, name))
