"""Fixtures for real parts: each test gets its own store (SQLite file, or this run's PostgreSQL database truncated),
this run's Redis DB index, a fake Twilio API on a local socket, and the hub app wired to them."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from carehub.agents import repository as agents
from carehub.app import create_app
from carehub.clock import utcnow
from carehub.models import Role
from carehub.runtime import Runtime
from carehub.settings import Settings
from tests.fakes.smtp_server import SmtpSink
from tests.fakes.twilio_api import FakeTwilioApi
from tests.support import stores
from tests.support.identities import ACCOUNT_SID, AUTH_TOKEN, CITY_NUMBER, PUBLIC_URL
from tests.support.mail import WEBHOOK_SECRET


@pytest.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str]:
    async with stores.postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
async def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return await asyncio.to_thread(stores.sqlite_template, tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
async def redis_url() -> AsyncIterator[str]:
    async with stores.redis_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Every store-touching test runs on both backends."""
    return str(request.param)


@pytest.fixture
async def database_url(backend: str, tmp_path: Path, sqlite_template: Path, postgres_url: str) -> str:
    """An empty migrated store for this test alone: a copied SQLite file, or this run's PostgreSQL truncated."""
    if backend == "sqlite":
        return stores.fresh_sqlite(sqlite_template, tmp_path)
    await stores.truncate_all(postgres_url)
    return postgres_url


@pytest.fixture
async def fake_twilio() -> AsyncIterator[FakeTwilioApi]:
    async with FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN) as fake:
        yield fake


def hub_settings(database_url: str, twilio_base: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "test",
        "database_url": database_url,
        "public_url": PUBLIC_URL,
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_from_number": CITY_NUMBER,
        "twilio_api_base": twilio_base,
        "twilio_timeout_seconds": 2.0,
        "smtp_timeout_seconds": 0.25,
        "webhook_timeout_seconds": 2.0,
        # Pub/sub ignores the Redis DB index: this run's hubs listen on channels of their own (parallel runs and
        # pytest-xdist workers share one Redis).
        "realtime_prefix": f"carehub-test-{stores.RUN_ID}",
        "delivery_backoff_seconds": 0.05,
        "delivery_backoff_max_seconds": 0.2,
        "sweep_interval_seconds": 1,
        "sweep_grace_seconds": 0.5,
        "delivery_lease_seconds": 5.0,
        "ambiguous_send_hold_seconds": 1.0,
        "email_webhook_secret": WEBHOOK_SECRET,
        # Blobs are content-addressed, so tests can share one directory without seeing each other's files.
        "data_dir": Path(tempfile.gettempdir()) / "carehub-test-data",
    }
    values.update(overrides)
    return Settings.model_validate(values)


@pytest.fixture
def settings(database_url: str, fake_twilio: FakeTwilioApi) -> Settings:
    return hub_settings(database_url, fake_twilio.base_url)


@dataclass
class Hub:
    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    async def agent_token(self, role: Role = Role.AGENT, email: str | None = None) -> str:
        async with self.runtime.transaction() as tx:
            now = utcnow()
            agent_id = await agents.create_agent(
                tx.conn, email=email or f"{role.value}@city.test", name=role.value, role=role, now=now
            )
            return await agents.issue_token(tx.conn, agent_id, "test", now)


@asynccontextmanager
async def running_hub(settings: Settings) -> AsyncIterator[Hub]:
    """The real app with its lifespan (store, adapters, delivery runner), driven over ASGI."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            yield Hub(app=app, client=client, settings=settings)


@pytest.fixture
async def hub(settings: Settings) -> AsyncIterator[Hub]:
    async with running_hub(settings) as running:
        yield running


@pytest.fixture
async def smtp_sink() -> AsyncIterator[SmtpSink]:
    """A real SMTP server (aiosmtpd) that the hub's outgoing mail goes to."""
    async with SmtpSink() as sink:
        yield sink


def mail_settings(settings: Settings, sink: SmtpSink, **overrides: object) -> Settings:
    return settings.model_copy(update={"smtp_host": sink.host, "smtp_port": sink.port, "smtp_tls": "none", **overrides})


@pytest.fixture
async def mail_hub(settings: Settings, smtp_sink: SmtpSink) -> AsyncIterator[Hub]:
    """A hub whose outgoing mail goes to smtp_sink."""
    async with running_hub(mail_settings(settings, smtp_sink)) as running:
        yield running
