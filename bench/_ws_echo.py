"""The ceiling the hub's chat socket is measured against: a bare FastAPI app with one WebSocket endpoint that accepts
and echoes text frames, served by uvicorn with exactly the hub's options (carehub/cli.py `_serve`: one process,
uvloop, httptools, websockets' sans-I/O implementation, 8 KiB frames, permessage-deflate offered as uvicorn's
default, proxy headers from 127.0.0.1, log level info, no access log).

Run: python -m bench._ws_echo --port 8002   (ws://127.0.0.1:8002/ws, GET /healthz)
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

WS_PATH = "/ws"
# The hub's server settings (carehub/chat/protocol.py WS_SERVER_OPTIONS), repeated here so the baseline does not
# import the hub.
WS_IMPLEMENTATION = "websockets-sansio"
WS_MAX_FRAME_BYTES = 8 * 1024
WS_PER_MESSAGE_DEFLATE = False


def create_app() -> FastAPI:
    app = FastAPI(title="bench websocket echo")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.websocket(WS_PATH)
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                await websocket.send_text(await websocket.receive_text())
        except WebSocketDisconnect:
            return

    return app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench._ws_echo", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--ws", default=WS_IMPLEMENTATION, help="uvicorn WebSocket implementation")
    parser.add_argument("--log-level", default="info", help="as carehub serve (which logs each socket opening)")
    args = parser.parse_args(argv)
    uvicorn.run(
        "bench._ws_echo:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=1,
        loop="uvloop",
        http="httptools",
        ws=args.ws,
        ws_max_size=WS_MAX_FRAME_BYTES,
        ws_per_message_deflate=WS_PER_MESSAGE_DEFLATE,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        log_level=args.log_level,
        access_log=False,
    )


if __name__ == "__main__":
    main()
