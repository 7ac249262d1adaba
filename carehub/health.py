"""Liveness (/healthz: the process answers) and readiness (/readyz: the database and, if configured, Redis answer)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from redis.asyncio import Redis
from sqlalchemy import text

from carehub.agents.auth import RuntimeDep
from carehub.problems import PROBLEM_JSON

router = APIRouter(tags=["health"])
CHECK_TIMEOUT = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"content": {PROBLEM_JSON: {}}}})
async def readyz(rt: RuntimeDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(CHECK_TIMEOUT), rt.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    if rt.settings.redis_url is not None:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                client = Redis.from_url(rt.settings.redis_url)
                try:
                    await client.ping()
                finally:
                    await client.aclose()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"unreachable: {type(exc).__name__}"
    else:
        checks["redis"] = "not configured (embedded delivery)"
    failing = [name for name, state in checks.items() if state.startswith("unreachable")]
    if failing:
        return JSONResponse(
            {
                "type": "about:blank",
                "title": "Service unavailable",
                "status": 503,
                "detail": f"Not ready: {', '.join(failing)} unreachable.",
                "checks": checks,
            },
            status_code=503,
            media_type=PROBLEM_JSON,
        )
    return JSONResponse({"status": "ready", "checks": checks})
