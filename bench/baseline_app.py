"""The ceiling the hub's webhook is measured against: a bare FastAPI app whose one POST endpoint reads a
form-encoded body and answers a small XML document, served by uvicorn with exactly the hub's options
(carehub/cli.py `_serve`, production: one process, uvloop, httptools, no access log).

Run: python -m bench.baseline_app --port 8001
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from urllib.parse import parse_qsl

import uvicorn
from fastapi import FastAPI, Request, Response

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def create_app() -> FastAPI:
    app = FastAPI(title="bench baseline")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/webhooks/twilio/sms", response_class=Response)
    async def inbound_sms(request: Request) -> Response:
        # The same work the hub does before its own logic: read the whole body and split the form fields.
        fields = parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True, max_num_fields=200)
        if not fields:
            return Response(status_code=400)
        return Response(EMPTY_TWIML, media_type="text/xml")

    return app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline_app", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    uvicorn.run(
        "bench.baseline_app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=1,
        loop="uvloop",
        http="httptools",
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        log_level="info",
        access_log=False,
    )


if __name__ == "__main__":
    main()
