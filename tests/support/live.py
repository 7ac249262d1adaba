"""The hub on a real TCP port (uvicorn, in this test's event loop): what WebSocket clients and browsers talk to."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import uvicorn

from carehub.app import create_app
from carehub.chat.protocol import WS_SERVER_OPTIONS
from carehub.settings import Settings
from tests.conftest import Hub


@dataclass
class LiveHub(Hub):
    url: str  # http://127.0.0.1:PORT

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/chat/ws"


@asynccontextmanager
async def live_hub(settings: Settings) -> AsyncIterator[LiveHub]:
    """Serve the real app (lifespan included) with the production server settings on a free loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        **WS_SERVER_OPTIONS,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while not server.started:  # uvicorn has no started event: poll its flag, with a deadline
            if task.done():
                task.result()  # startup failed: raise its error
                raise RuntimeError("uvicorn stopped before it started")
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("the hub did not start within 20 s")
            await asyncio.sleep(0.01)
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url) as client:
            yield LiveHub(app=app, client=client, settings=settings, url=url)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
        sock.close()
