"""Console sign-in for tests: agents with a known password, and httpx clients that keep cookies like a browser."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import update

from carehub.agents import passwords
from carehub.agents import repository as agents
from carehub.models import Role
from tests.conftest import Hub
from tests.support.identities import PUBLIC_URL

PASSWORD = "correct horse battery staple"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


async def agent_with_password(hub: Hub, email: str, role: Role = Role.AGENT) -> str:
    """Create an agent with PASSWORD; returns an API token for it too."""
    token = await hub.agent_token(role=role, email=email)
    hashed = await passwords.hash_password(PASSWORD)
    async with hub.runtime.transaction() as tx:
        await tx.conn.execute(update(agents.AGENTS).where(agents.AGENTS.c.email == email).values(password_hash=hashed))
    return token


def browser(hub: Hub) -> httpx.AsyncClient:
    """A fresh cookie jar against the same app, as another browser would be."""
    return httpx.AsyncClient(transport=hub.client._transport, base_url=PUBLIC_URL)


async def sign_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    form = await client.get("/console/login")
    match = CSRF_FIELD.search(form.text)
    assert match is not None, form.text
    return await client.post(
        "/console/login", data={"email": email, "password": password, "csrf_token": match.group(1)}
    )


def csrf_of(page: httpx.Response) -> str:
    match = CSRF_FIELD.search(page.text)
    assert match is not None, page.text
    return match.group(1)
