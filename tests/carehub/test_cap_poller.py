"""The CAP feed poller against a real local HTTP server serving corpus feeds and messages: what concerns the city
becomes a draft by the "CAP feed" account, a second poll makes nothing new, an Update and a Cancel in later polls
replace and close the draft; XXE feeds and messages read nothing, oversized, failing, hanging and redirecting
feeds are refused or retried, never crashing the poll; the embedded hub and the worker cron run it."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from carehub.agents import repository as agents
from carehub.cap import parse as cap_parse
from carehub.cap.poller import FEED_AGENT_EMAIL, CapPoller, PollLimits, feed_agent, start_embedded
from carehub.clock import utcnow
from carehub.models import AuditEvent
from carehub.settings import Settings
from tests.carehub.test_cap_parse import outside_access
from tests.conftest import Hub, running_hub
from tests.support.alerts import staff
from tests.support.corpus import CORPUS
from tests.support.waiting import eventually
from workers.cap_poll import cap_poll, cap_poll_crons

TESTDATA = CORPUS / "cap" / "google-cap-library" / "testdata"
CANADA_ID = "2.49.0.1.124.6bddbc91.2012"
SENDER = "cap@ec.gc.ca"
WINDSOR = "3537001"  # one of canada.cap's SGC geocodes
NWS_LINK = "http://www.weather.gov/alerts-beta/wwacapget.php?x="
AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]
FAST = PollLimits(timeout_seconds=0.5)
_readers = itertools.count()


@dataclass
class Served:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None  # answer If-None-Match with 304
    last_modified: str | None = None  # answer If-Modified-Since with 304 (compared as text, as the client echoes it)
    chunked: bool = False  # no Content-Length: the client must stop reading by itself
    hang: bool = False  # never answer (until the server stops)


class CapServer:
    """An HTTP server on 127.0.0.1 serving `routes` by path and recording every request it gets."""

    def __init__(self) -> None:
        self.routes: dict[str, Served] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.release = asyncio.Event()
        self.base_url = ""

    @property
    def paths(self) -> list[str]:
        return [path for path, _headers in self.requests]

    def url(self, path: str) -> str:
        return self.base_url + path

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.path_qs, dict(request.headers)))
        served = self.routes.get(request.path_qs)
        if served is None:
            return web.Response(status=404)
        if served.hang:
            await self.release.wait()
        headers = dict(served.headers)
        if served.etag is not None:
            headers["ETag"] = served.etag
            if request.headers.get("If-None-Match") == served.etag:
                return web.Response(status=304, headers=headers)
        if served.last_modified is not None:
            headers["Last-Modified"] = served.last_modified
            if request.headers.get("If-Modified-Since") == served.last_modified:
                return web.Response(status=304, headers=headers)
        if not served.chunked:
            return web.Response(status=served.status, body=served.body, headers=headers)
        response = web.StreamResponse(status=served.status, headers=headers)
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(served.body), 8192):
            await response.write(served.body[start : start + 8192])
        await response.write_eof()
        return response


@pytest.fixture
async def server() -> AsyncIterator[CapServer]:
    serving = CapServer()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", serving.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    serving.base_url = f"http://{host}:{port}"
    try:
        yield serving
    finally:
        serving.release.set()
        await runner.cleanup()


# The test server is on 127.0.0.1, which a poller refuses unless told the city's feeds may be on its own network.
LOCAL_FEEDS = {"cap_feed_allow_private": True}


@pytest.fixture
async def windsor_hub(settings: Settings) -> AsyncIterator[Hub]:
    async with running_hub(settings.model_copy(update={"cap_geocodes": [WINDSOR], **LOCAL_FEEDS})) as running:
        yield running


@pytest.fixture(autouse=True)
def _schema_loaded() -> None:
    cap_parse._schema()  # read once, before any poll is watched for file access


@pytest.fixture
def cap_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.INFO, logger="carehub.cap"):
        yield caplog


def canada(identifier: str = CANADA_ID, msg_type: str = "Update", refs: tuple[str, ...] = (), **swap: str) -> bytes:
    """canada.cap (an Update of messages we never saw: a new alert to us), as a message of the same sender
    with this identifier, type and references; `swap` replaces its headline or sent time."""
    text = (TESTDATA / "canada.cap").read_text(encoding="utf-8")
    text = text.replace(CANADA_ID, identifier).replace("<msgType>Update</msgType>", f"<msgType>{msg_type}</msgType>")
    if refs:
        start, end = text.index("<references>"), text.index("</references>")
        chain = " ".join(f"{SENDER},{ref},2012-05-02T23:21:04-00:00" for ref in refs)
        text = text[: start + len("<references>")] + chain + text[end:]
    if "headline" in swap:
        text = text.replace(
            "<headline>severe thunderstorm watch</headline>", f"<headline>{swap['headline']}</headline>"
        )
    if "sent" in swap:
        text = text.replace("<sent>2012-05-02T23:21:04-00:00</sent>", f"<sent>{swap['sent']}</sent>")
    return text.encode()


def atom(server: CapServer, *entries: tuple[str, str]) -> bytes:
    """An Environment Canada-style Atom index: (id, path) entries linking to CAP messages on the server."""
    body = "".join(
        f"<entry><id>{key}</id><updated>2012-05-02T23:21:04Z</updated><title>{key}</title>"
        f'<link rel="alternate" type="application/cap+xml" href="{server.url(path)}"/></entry>'
        for key, path in entries
    )
    return f'<feed xmlns="http://www.w3.org/2005/Atom"><id>urn:test</id><title>t</title>{body}</feed>'.encode()


async def listed(hub: Hub) -> list[dict[str, Any]]:
    """Every alert, as staff see them, oldest first."""
    headers = await staff(hub, email=f"reader{next(_readers)}@city.test")
    alerts: list[dict[str, Any]] = (await hub.client.get("/api/v1/alerts?limit=100", headers=headers)).json()
    return sorted(alerts, key=lambda a: a["id"])


def poller_for(hub: Hub, server: CapServer, path: str = "/feed", limits: PollLimits = FAST) -> CapPoller:
    return CapPoller(hub.runtime, [server.url(path)], limits)


async def test_feed_entries_for_the_city_become_drafts_by_the_cap_feed_account(
    windsor_hub: Hub, server: CapServer
) -> None:
    # NWS's index of two alerts, its links pointing here: the first is canada.cap (Windsor), the second elsewhere.
    index = (TESTDATA / "weather_index.atom").read_text().replace(NWS_LINK, server.url("/cap/"))
    server.routes["/feed"] = Served(index.encode())
    server.routes["/cap/CT20100831030400OKXAirQualityAlertOKX20100901031500CT"] = Served(canada())
    server.routes["/cap/DC20100830203300LWXAirQualityAlertLWX20100901040000DC"] = Served(
        (TESTDATA / "australia.cap").read_bytes()
    )
    poller = poller_for(windsor_hub, server)

    outcome = await poller.poll()

    assert outcome == {"drafted": 1, "not_for_city": 1}
    assert server.paths == [  # the older entry first
        "/feed",
        "/cap/DC20100830203300LWXAirQualityAlertLWX20100901040000DC",
        "/cap/CT20100831030400OKXAirQualityAlertOKX20100901031500CT",
    ]
    (draft,) = await listed(windsor_hub)
    assert (draft["status"], draft["kind"], draft["title"]) == ("draft", "alert", "severe thunderstorm watch")
    assert set(draft["content"]) == {"en", "fr"}
    async with windsor_hub.runtime.transaction() as tx:
        author = await agents.agent_by_id(tx.conn, draft["created_by"])
        audited = list(await tx.conn.execute(select(AUDIT).where(AUDIT.c.action == "import_cap")))
    assert author is not None
    assert (author.email, author.name, author.role, author.password_hash) == (
        FEED_AGENT_EMAIL,
        "CAP feed",
        "communications",
        None,
    )
    assert author.is_active is False  # nobody can sign in as it, whatever token or password it is given
    assert sorted(a.detail["outcome"] for a in audited) == ["drafted", "not_for_city"]
    assert {a.actor for a in audited} == {f"agent:{author.id}"}
    (state,) = poller.feeds.values()
    assert (state.last_outcome, state.last_detail) == ("ok", "1 drafted, 1 not_for_city")
    assert state.last_polled_at is not None


async def test_second_poll_makes_nothing_new(windsor_hub: Hub, server: CapServer) -> None:
    server.routes["/feed"] = Served(atom(server, ("a", "/cap/a.cap")), etag='"v1"')
    server.routes["/cap/a.cap"] = Served(canada())
    poller = poller_for(windsor_hub, server)
    assert await poller.poll() == {"drafted": 1}

    assert await poller.poll() == {"not_modified": 1}  # 304: the feed is as it was

    assert server.paths == ["/feed", "/cap/a.cap", "/feed"]
    assert server.requests[-1][1]["If-None-Match"] == '"v1"'
    server.routes["/feed"].etag = None  # a server without conditional GET: entries already read are not fetched
    assert await poller.poll() == {}
    assert server.paths[3:] == ["/feed"]
    # A restarted process remembers nothing: it reads the message again, and the store knows it.
    assert await poller_for(windsor_hub, server).poll() == {"duplicate": 1}
    assert len(await listed(windsor_hub)) == 1


async def test_last_modified_is_asked_about_on_the_next_poll(windsor_hub: Hub, server: CapServer) -> None:
    when = "Wed, 02 May 2012 23:21:04 GMT"
    server.routes["/feed"] = Served(atom(server, ("a", "/cap/a.cap")), last_modified=when)
    server.routes["/cap/a.cap"] = Served(canada())
    poller = poller_for(windsor_hub, server)
    assert await poller.poll() == {"drafted": 1}

    assert await poller.poll() == {"not_modified": 1}

    assert server.requests[-1][1]["If-Modified-Since"] == when
    assert server.paths == ["/feed", "/cap/a.cap", "/feed"]


async def test_update_in_a_later_poll_replaces_the_draft_and_a_cancel_closes_it(
    windsor_hub: Hub, server: CapServer
) -> None:
    server.routes["/cap/a.cap"] = Served(canada())
    server.routes["/cap/b.cap"] = Served(
        canada("upd.1", "Update", (CANADA_ID,), headline="severe thunderstorm warning")
    )
    server.routes["/cap/c.cap"] = Served(canada("cancel.1", "Cancel", (CANADA_ID, "upd.1")))
    server.routes["/feed"] = Served(atom(server, ("a", "/cap/a.cap")))
    poller = poller_for(windsor_hub, server)
    assert await poller.poll() == {"drafted": 1}
    (first,) = await listed(windsor_hub)

    server.routes["/feed"] = Served(atom(server, ("b", "/cap/b.cap"), ("a", "/cap/a.cap")))
    assert await poller.poll() == {"drafted": 1}

    replaced, update = await listed(windsor_hub)
    assert (replaced["id"], replaced["status"]) == (first["id"], "cancelled")
    assert (update["status"], update["title"], update["parent_id"]) == ("draft", "severe thunderstorm warning", None)

    server.routes["/feed"] = Served(atom(server, ("c", "/cap/c.cap"), ("b", "/cap/b.cap"), ("a", "/cap/a.cap")))
    assert await poller.poll() == {"cancelled": 1}

    assert [a["status"] for a in await listed(windsor_hub)] == ["cancelled", "cancelled"]
    assert server.paths == ["/feed", "/cap/a.cap", "/feed", "/cap/b.cap", "/feed", "/cap/c.cap"]


async def test_alert_update_and_cancel_in_one_poll_are_imported_in_the_order_sent(
    windsor_hub: Hub, server: CapServer
) -> None:
    server.routes["/cap/a.cap"] = Served(canada())
    server.routes["/cap/b.cap"] = Served(canada("upd.1", "Update", (CANADA_ID,), sent="2012-05-02T23:30:00-00:00"))
    server.routes["/cap/c.cap"] = Served(
        canada("cancel.1", "Cancel", (CANADA_ID, "upd.1"), sent="2012-05-02T23:40:00-00:00")
    )
    # Newest first, as feeds list them, all with the same updated time.
    server.routes["/feed"] = Served(atom(server, ("c", "/cap/c.cap"), ("b", "/cap/b.cap"), ("a", "/cap/a.cap")))

    assert await poller_for(windsor_hub, server).poll() == {"drafted": 2, "cancelled": 1}

    assert [a["status"] for a in await listed(windsor_hub)] == ["cancelled", "cancelled"]


def xxe(name: str, server: CapServer, secret: Path) -> bytes:
    """A corpus XXE sample whose entities point at the local server and at a secret file."""
    text = (TESTDATA / name).read_text()
    text = text.replace("http://http://googleusercontent.com", server.base_url)
    text = text.replace("http://googleusercontent.com", server.base_url).replace(
        "http://localhost:8080", server.base_url
    )
    return text.replace("/etc/passwd", str(secret)).encode()


async def test_xxe_feed_and_message_are_refused_and_read_nothing(
    windsor_hub: Hub, server: CapServer, tmp_path: Path, cap_log: pytest.LogCaptureFixture
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    server.routes["/xxe-feed"] = Served(xxe("xee.atom", server, secret))
    server.routes["/feed"] = Served(atom(server, ("x", "/cap/xee.cap")))
    server.routes["/cap/xee.cap"] = Served(xxe("xee.cap", server, secret))
    feed_poller = poller_for(windsor_hub, server, "/xxe-feed")
    message_poller = poller_for(windsor_hub, server)

    with outside_access() as accessed:
        assert await feed_poller.poll() == {"refused": 1}
        assert await message_poller.poll() == {"refused": 1}

    assert server.paths == ["/xxe-feed", "/feed", "/cap/xee.cap"]  # no entity, DTD or XInclude was fetched
    assert any(event == "socket.connect" for event, _args in accessed)  # the recorder was watching the poll
    assert not [args for event, args in accessed if event == "open" and str(secret) in str(args[0])]
    (state,) = feed_poller.feeds.values()
    assert state.last_outcome == "refused"
    assert "DOCTYPE/DTD or entities" in state.last_detail
    assert "entry x refused: The file declares a DOCTYPE/DTD or entities" in cap_log.text
    assert "TOP-SECRET" not in cap_log.text
    assert await listed(windsor_hub) == []


async def test_oversized_feed_and_message_are_refused_while_streaming(windsor_hub: Hub, server: CapServer) -> None:
    big = atom(server, *((f"e{i}", f"/cap/{i}.cap") for i in range(400)))
    assert len(big) > 50_000
    server.routes["/chunked"] = Served(big, chunked=True)
    server.routes["/sized"] = Served(big)
    # 20 KB on the wire, 5 MB once decompressed: the limit counts what the parser would get.
    bomb = gzip.compress(big[:-7] + b" " * 5_000_000 + b"</feed>")
    assert len(bomb) < 20_000
    server.routes["/gzipped"] = Served(bomb, headers={"Content-Encoding": "gzip"})
    server.routes["/feed"] = Served(atom(server, ("a", "/cap/a.cap")))
    server.routes["/cap/a.cap"] = Served(canada().replace(b"<note/>", b"<note>" + b"x" * 50_000 + b"</note>"))
    limits = PollLimits(timeout_seconds=2, max_feed_bytes=20_000, max_message_bytes=20_000)
    feeds = [server.url(p) for p in ("/chunked", "/sized", "/gzipped", "/feed")]
    poller = CapPoller(windsor_hub.runtime, feeds, limits)

    assert await poller.poll() == {"refused": 4}

    chunked, sized, gzipped, feed = poller.feeds.values()
    assert chunked.last_detail.endswith("sent more than 20,000 bytes; refused.")
    assert f"is {len(big):,} bytes; over 20,000 is refused" in sized.last_detail
    assert gzipped.last_detail.endswith("sent more than 20,000 bytes; refused.")
    assert feed.last_detail == "1 refused"
    # No linked message of the refused feeds was fetched.
    assert server.paths == ["/chunked", "/sized", "/gzipped", "/feed", "/cap/a.cap"]
    assert await poller.poll() == {"refused": 3}  # the refused message is not fetched again
    assert await listed(windsor_hub) == []


async def test_failing_and_hanging_feeds_are_logged_and_the_next_poll_succeeds(
    windsor_hub: Hub, server: CapServer, cap_log: pytest.LogCaptureFixture
) -> None:
    server.routes["/broken"] = Served(b"oops", status=500)
    server.routes["/slow"] = Served(hang=True)
    server.routes["/feed"] = Served(atom(server, ("a", "/cap/a.cap"), ("b", "/cap/b.cap")))
    server.routes["/cap/a.cap"] = Served(canada())
    server.routes["/cap/b.cap"] = Served(b"", status=503)
    poller = CapPoller(windsor_hub.runtime, [server.url(p) for p in ("/broken", "/slow", "/feed")], FAST)

    assert await poller.poll() == {"failed": 3, "drafted": 1}  # two feeds and one message; the rest went on

    broken, slow, feed = poller.feeds.values()
    assert (broken.last_outcome, broken.last_detail) == ("failed", f"HTTP 500 from {server.url('/broken')}.")
    assert (slow.last_outcome, slow.last_detail) == (
        "failed",
        f"{server.url('/slow')} did not answer in 0.5 s.",
    )
    assert (feed.last_outcome, feed.last_detail) == ("ok", "1 drafted, 1 failed")
    assert "HTTP 500" in cap_log.text
    assert "HTTP 503" in cap_log.text

    server.routes["/broken"] = Served(atom(server, ("b", "/cap/b.cap")))
    server.routes["/slow"] = Served(atom(server))
    server.routes["/cap/b.cap"] = Served(canada("other.1", "Alert", headline="tornado warning"))
    assert await poller.poll() == {"drafted": 1, "duplicate": 1}  # /broken's b, then /feed's b read again

    assert [a["title"] for a in await listed(windsor_hub)] == ["severe thunderstorm watch", "tornado warning"]
    assert [s.last_outcome for s in poller.feeds.values()] == ["ok", "ok", "ok"]


async def test_redirects_are_followed_to_http_only(windsor_hub: Hub, server: CapServer) -> None:
    server.routes["/moved"] = Served(status=301, headers={"Location": "/feed"})
    server.routes["/sneaky"] = Served(status=302, headers={"Location": "file:///etc/passwd"})
    server.routes["/feed"] = Served(atom(server, ("a", "/cap/a.cap")))
    server.routes["/cap/a.cap"] = Served(canada())
    poller = CapPoller(windsor_hub.runtime, [server.url("/moved"), server.url("/sneaky")], FAST)

    assert await poller.poll() == {"drafted": 1, "refused": 1}

    assert list(poller.feeds.values())[1].last_detail == "'file:///etc/passwd' is not an http(s) URL; not followed."
    assert server.paths == ["/moved", "/feed", "/cap/a.cap", "/sneaky"]


async def test_new_entries_beyond_the_poll_bound_wait_for_the_next_poll(windsor_hub: Hub, server: CapServer) -> None:
    server.routes["/feed"] = Served(atom(server, ("a", "/cap/a.cap"), ("b", "/cap/b.cap")), etag='"v1"')
    server.routes["/cap/a.cap"] = Served(canada())
    server.routes["/cap/b.cap"] = Served(canada("other.1", "Alert", headline="tornado warning"))
    poller = poller_for(windsor_hub, server, limits=PollLimits(timeout_seconds=2, max_messages=1))

    assert await poller.poll() == {"drafted": 1}
    assert await poller.poll() == {"drafted": 1}  # not a 304: the first poll left an entry unread

    assert "If-None-Match" not in server.requests[2][1]
    assert await poller.poll() == {"not_modified": 1}
    assert server.paths == ["/feed", "/cap/a.cap", "/feed", "/cap/b.cap", "/feed"]


async def test_cap_cp_census_division_alert_concerns_the_city_inside_it(settings: Settings, server: CapServer) -> None:
    # The default city is Pickering (CSD 3518001); the alert names Durham, its census division, only.
    durham = canada().replace(f"<value>{WINDSOR}</value>".encode(), b"<value>3518</value>")
    server.routes["/feed"] = Served(atom(server, ("a", "/cap/a.cap")))
    server.routes["/cap/a.cap"] = Served(durham)

    async with running_hub(settings.model_copy(update=LOCAL_FEEDS)) as hub:
        assert await poller_for(hub, server).poll() == {"drafted": 1}


async def test_feed_embedding_its_alerts_is_read_without_fetching_more(windsor_hub: Hub, server: CapServer) -> None:
    message = canada().decode().split("?>", 1)[1]
    body = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><id>naads</id><entry><id>e1</id>'
        f'<content type="text/xml">{message}</content></entry></feed>'
    )
    server.routes["/feed"] = Served(body.encode())

    assert await poller_for(windsor_hub, server).poll() == {"drafted": 1}
    assert server.paths == ["/feed"]


async def test_the_cap_feed_account_is_made_once(windsor_hub: Hub) -> None:
    made = await asyncio.gather(*(feed_agent(windsor_hub.runtime, utcnow()) for _ in range(3)))

    assert len({agent.id for agent in made}) == 1


async def test_embedded_hub_polls_its_feeds(settings: Settings, server: CapServer) -> None:
    server.routes["/feed"] = Served(atom(server, ("a", "/cap/a.cap")))
    server.routes["/cap/a.cap"] = Served(canada())
    configured = {
        "cap_geocodes": [WINDSOR],
        "cap_feed_urls": [server.url("/feed")],
        "cap_poll_interval_seconds": 10,
        **LOCAL_FEEDS,
    }

    async with running_hub(settings.model_copy(update=configured)) as hub:
        headers = await staff(hub)

        async def drafted() -> list[dict[str, Any]]:
            alerts: list[dict[str, Any]] = (await hub.client.get("/api/v1/alerts", headers=headers)).json()
            return [a for a in alerts if a["status"] == "draft"]

        (draft,) = await eventually(drafted, what="the feed's alert to be drafted")
        assert draft["title"] == "severe thunderstorm watch"


async def test_private_addresses_are_refused_unless_allowed(settings: Settings, server: CapServer) -> None:
    # A public feed whose link leads into the city's network (here, the loopback test server) reads nothing there.
    server.routes["/feed"] = Served(atom(server, ("a", "/cap/a.cap")))
    async with running_hub(settings.model_copy(update={"cap_geocodes": [WINDSOR]})) as hub:
        poller = CapPoller(hub.runtime, [server.url("/feed"), "http://localhost:9/feed"], FAST)
        outcome = await poller.poll()
    assert outcome == {"refused": 2}
    assert server.paths == []  # no request reached the server
    literal, named = poller.feeds.values()
    assert "127.0.0.1 is a loopback address" in literal.last_detail
    assert "localhost resolves to 127.0.0.1, which is a loopback address" in named.last_detail


async def test_embedded_hub_without_feeds_starts_no_poller(hub: Hub) -> None:
    assert hub.settings.cap_feed_urls == []
    assert start_embedded(hub.runtime) is None


async def test_worker_cron_polls_with_one_poller_per_process(windsor_hub: Hub, server: CapServer) -> None:
    server.routes["/feed"] = Served(atom(server, ("a", "/cap/a.cap")))
    server.routes["/cap/a.cap"] = Served(canada())
    runtime = windsor_hub.runtime
    runtime.settings = runtime.settings.model_copy(update={"cap_feed_urls": [server.url("/feed")]})
    ctx: dict[str, Any] = {"runtime": runtime}

    assert await cap_poll(ctx) == {"drafted": 1}
    assert await cap_poll(ctx) == {}  # the same poller: the entry was read

    assert isinstance(ctx["cap_poller"], CapPoller)
    assert server.paths == ["/feed", "/cap/a.cap", "/feed"]


@pytest.mark.parametrize(
    ("interval", "minute", "second"),
    [
        (10, None, {0, 10, 20, 30, 40, 50}),
        (60, set(range(60)), {0}),
        (600, {0, 10, 20, 30, 40, 50}, {0}),
        (3600, {0}, {0}),
    ],
)
def test_worker_cron_runs_at_the_poll_interval(
    interval: int, minute: set[int] | None, second: set[int], settings: Settings
) -> None:
    assert cap_poll_crons(settings) == []  # no feeds: no job

    configured = settings.model_copy(
        update={"cap_feed_urls": ["https://feeds.example.ca/"], "cap_poll_interval_seconds": interval}
    )
    (job,) = cap_poll_crons(configured)

    assert (job.name, job.minute, job.second, job.unique) == ("cap_poll", minute, second, True)
