"""The FastAPI application: wires the runtime (store, adapters, delivery) to the webhook, agent and health routes."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from arq.connections import ArqRedis
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from carehub import health
from carehub.agents import endpoints as agents
from carehub.alerts import endpoints as alerts_api
from carehub.alerts.runner import start_embedded as start_alerts_timer
from carehub.canned import endpoints as canned
from carehub.cap import endpoints as cap_import
from carehub.cap import feed as cap_feed
from carehub.cap.poller import start_embedded as start_cap_poller
from carehub.chat import endpoints as chat
from carehub.chat.hub import ChatHub
from carehub.chat.socket import PATH as CHAT_SOCKET_PATH
from carehub.chat.writer import ChatWriter
from carehub.console import alert_page, alerts_page, help_page, queue_page, settings_page, ticket_page
from carehub.console import assets as console_assets
from carehub.console import endpoints as console
from carehub.console import supervisor as supervisor_page
from carehub.console.views import SignInRequired, redirect_to_sign_in
from carehub.contacts import endpoints as contacts
from carehub.csat import endpoints as csat
from carehub.help import endpoints as help_api
from carehub.help import pages as help_pages
from carehub.inbound import endpoints as inbound
from carehub.limits import BodySizeLimit
from carehub.mail import endpoints as mail
from carehub.mail.smtpd import start_listener
from carehub.open311 import admin as open311_admin
from carehub.open311 import endpoints as open311
from carehub.open311.notify import start_open311_timer
from carehub.outbox.delivery import deliver, sweep_all
from carehub.outbox.dispatch import ArqDispatcher, InProcessDispatcher
from carehub.outbox.embedded import EmbeddedSweeper
from carehub.problems import install_problem_handlers
from carehub.realtime import endpoints as realtime
from carehub.realtime.events import AGENTS_TOPIC
from carehub.reports import endpoints as reports
from carehub.routing import endpoints as routing
from carehub.routing.arrival import embedded_routing_timer
from carehub.runtime import Runtime
from carehub.settings import Settings, get_settings
from carehub.sla import endpoints as sla
from carehub.sla.timers import start_embedded as start_sla_timer
from carehub.status import endpoints as status_links
from carehub.status import pages as status_pages
from carehub.subscriptions import catalogue as alert_catalogue
from carehub.subscriptions import endpoints as subscriptions
from carehub.tickets import endpoints as tickets
from carehub.tickets import operations as ticket_operations
from carehub.webhooks import endpoints as webhooks_api
from carehub.webhooks.feed import start_embedded as start_event_feed

log = logging.getLogger("carehub")
GC_YOUNG_THRESHOLD = 20_000


async def start_delivery(rt: Runtime) -> EmbeddedSweeper | None:
    """Production: enqueue to arq on Redis (workers deliver). Embedded: deliver in this process, sweeper included."""
    if rt.settings.redis_url is not None:
        # Connects on first use: the hub starts and takes webhooks while Redis is down (the sweeper catches up).
        rt.dispatcher = ArqDispatcher.for_settings(ArqRedis.from_url(rt.settings.redis_url), rt.settings)
        return None

    async def run(outbox_id: int) -> object:
        return await deliver(rt, outbox_id)

    rt.dispatcher = InProcessDispatcher(run)

    sweeper = EmbeddedSweeper(lambda: sweep_all(rt), rt.settings.sweep_interval_seconds)
    sweeper.start()
    return sweeper


class CarehubApp(FastAPI):
    """The hub: FastAPI, except that the chat socket (the busiest path) is served straight from ASGI, without the
    framework's per-frame wrappers (carehub/chat/socket.py)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == CHAT_SOCKET_PATH:
            await chat.chat_socket(self.state, scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = Runtime.create(settings)
        app.state.runtime = rt
        await rt.open_hot_pool()
        app.state.chat = chat_hub = ChatHub(settings, rt.templates.root, rt.presence)
        app.state.ticket_teams = ticket_teams = realtime.TicketTeams(rt)
        await rt.broker.listen(AGENTS_TOPIC, ticket_teams.on_event)
        if rt.hot_pool is not None:
            chat_hub.writer = ChatWriter(rt.hot_pool)
            chat_hub.writer.start()
        rt.broker.on_resync = chat_hub.resync_all
        await rt.broker.start()
        availability = asyncio.create_task(chat_hub.watch_availability())
        sweeper = await start_delivery(rt)
        sla_timer = start_sla_timer(rt)
        routing_timer = embedded_routing_timer(rt)
        alerts_timer = start_alerts_timer(rt)
        event_feed = start_event_feed(rt)
        open311_timer = start_open311_timer(rt)
        cap_poller = start_cap_poller(rt)
        smtpd = None
        if settings.smtp_inbound_in_process:
            smtpd = await start_listener(rt, settings.smtp_inbound_host, settings.smtp_inbound_port)
        # Everything built so far lives as long as the process: keep it out of the collector's full scans,
        # which otherwise show up as latency spikes under load.
        gc.collect()
        gc.freeze()
        # A webhook allocates a few hundred short-lived objects; collect the young generation less often so
        # collections stop landing in the middle of every other request.
        gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
        try:
            yield
        finally:
            if smtpd is not None:
                smtpd.close()
                await smtpd.wait_closed()
            if sweeper is not None:
                await sweeper.stop()
            if sla_timer is not None:
                await sla_timer.stop()
            if routing_timer is not None:
                await routing_timer.stop()
            if alerts_timer is not None:
                await alerts_timer.stop()
            if event_feed is not None:
                await event_feed.stop()
            if open311_timer is not None:
                await open311_timer.stop()
            if cap_poller is not None:
                await cap_poller.stop()
            availability.cancel()
            if chat_hub.writer is not None:
                await chat_hub.writer.aclose()
            await rt.aclose()

    app = CarehubApp(
        title="carehub",
        version="0.1.0",
        summary="One queue for a city's SMS, email and chat; alerts out.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.include_router(health.router)
    app.include_router(inbound.router)
    app.include_router(tickets.router)
    app.include_router(ticket_operations.router)
    app.include_router(contacts.router)
    app.include_router(mail.webhook)
    app.include_router(mail.archive)
    app.include_router(realtime.router)
    app.include_router(agents.router)
    app.include_router(canned.router)
    app.include_router(sla.router)
    app.include_router(alerts_api.router)
    app.include_router(cap_import.router)
    app.include_router(cap_feed.router)
    app.include_router(webhooks_api.router)
    app.include_router(open311.router)
    app.include_router(open311_admin.router)
    app.include_router(routing.router)
    app.include_router(console.router)
    app.include_router(console_assets.router)
    app.include_router(queue_page.router)
    app.include_router(ticket_page.router)
    app.include_router(settings_page.router)
    app.add_exception_handler(SignInRequired, lambda _request, _exc: redirect_to_sign_in())
    app.include_router(csat.router)
    app.include_router(status_pages.router)
    app.include_router(status_links.router)
    app.include_router(reports.router)
    app.include_router(supervisor_page.router)
    app.include_router(alerts_page.router)
    app.include_router(alert_page.router)
    app.include_router(help_page.router)
    app.include_router(chat.resident)
    app.include_router(chat.agent)
    app.include_router(subscriptions.router)
    app.include_router(alert_catalogue.router)
    app.include_router(help_api.router)
    app.include_router(help_pages.router)
    app.add_middleware(
        BodySizeLimit,
        limit=settings.max_body_bytes,
        per_path={
            "/webhooks/email": settings.email_transport_max_bytes,
            "/api/v1/alerts/cap": cap_import.MAX_CAP_BYTES,
            **subscriptions.BODY_LIMITS,
        },
        per_prefix={**subscriptions.BODY_PREFIX_LIMITS, **status_pages.BODY_PREFIX_LIMITS},
    )
    return app
