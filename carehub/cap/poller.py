"""Poll the CAP feeds in CAREHUB_CAP_FEED_URLS: read each feed's index, fetch the messages not seen yet and import
them as the endpoint does (drafts for staff, never a send), under a system account "CAP feed".

Runs every CAREHUB_CAP_POLL_INTERVAL_SECONDS: on a timer in embedded mode, as an arq cron job in workers
(workers/cap_poll.py). What a process remembers (ETag / Last-Modified, entries already read, each feed's last
outcome) lives in its memory only: after a restart, or on another worker, feeds are read in full again, and the
unique index on (cap_sender, cap_identifier) makes every repeat a duplicate.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import aiohttp
from pydantic import ValidationError
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from carehub.agents import repository as agents
from carehub.agents.auth import CurrentAgent
from carehub.cap import importer
from carehub.cap.importer import Imported
from carehub.cap.index import FeedEntry, parse_index
from carehub.cap.parse import CapAlert, CapRejected, parse_cap
from carehub.clock import utcnow
from carehub.models import Role
from carehub.outbox.embedded import EmbeddedSweeper
from carehub.problems import Problem
from carehub.runtime import Runtime
from channels.webhook.addresses import GuardedResolver, RefusedAddress, check_address, literal_ip

log = logging.getLogger("carehub.cap")
FEED_AGENT_EMAIL = "cap-poller@carehub.invalid"  # .invalid (RFC 2606): no mail can ever reach it
FEED_AGENT_NAME = "CAP feed"
USER_AGENT = "carehub-cap-poller/0.1"
ACCEPT = "application/cap+xml, application/atom+xml, application/rss+xml, application/xml;q=0.9, */*;q=0.1"
_REDIRECTS = (301, 302, 303, 307, 308)
AGENTS = agents.AGENTS


@dataclass(frozen=True)
class PollLimits:
    timeout_seconds: float = 10.0  # one request, body included
    max_feed_bytes: int = 5_000_000  # NAADS embeds whole alerts, polygons and all, in its Atom feeds
    max_message_bytes: int = 1_000_000  # as POST /api/v1/alerts/cap
    max_messages: int = 20  # fetched and imported per feed per poll; the rest wait for the next poll
    max_redirects: int = 3


class FetchFailed(Exception):
    """A feed or message could not be read; `reason` says why. Transient (network, timeout, HTTP status): read it
    again next poll. Permanent (too large, a non-http(s) URL): the same entry is not fetched again."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects: relative links in the body are resolved against it
    body: bytes | None  # None: 304 Not Modified
    etag: str | None = None
    last_modified: str | None = None


async def fetch(
    session: aiohttp.ClientSession,
    url: str,
    limits: PollLimits,
    max_bytes: int,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    public_only: bool = True,
) -> Fetched:
    """GET with a timeout, a size limit (read in chunks, stopped past it) and redirects followed by hand, to http(s)
    only, and (public_only) to public addresses only: a feed's links are written by others, and must not make the
    hub read its own network (the session's GuardedResolver refuses names that resolve to private addresses; IP
    literals are checked here). With an ETag or Last-Modified from before, a 304 gives body None."""
    headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    timeout = aiohttp.ClientTimeout(total=limits.timeout_seconds)
    for _hop in range(limits.max_redirects + 1):
        if urlsplit(url).scheme not in ("http", "https"):
            raise FetchFailed(f"{url!r} is not an http(s) URL; not followed.", permanent=True)
        host = urlsplit(url).hostname or ""
        try:
            if public_only and literal_ip(host) is not None:
                check_address(host, host)
            async with session.get(url, headers=headers, allow_redirects=False, timeout=timeout) as response:
                if response.status in _REDIRECTS and "Location" in response.headers:
                    url = urljoin(url, response.headers["Location"])
                    continue
                if response.status == 304 and (etag or last_modified):
                    return Fetched(url, None, etag, last_modified)
                if response.status != 200:
                    raise FetchFailed(f"HTTP {response.status} from {url}.")
                body = await _read(response, max_bytes)
                return Fetched(url, body, response.headers.get("ETag"), response.headers.get("Last-Modified"))
        except TimeoutError:
            raise FetchFailed(f"{url} did not answer in {limits.timeout_seconds:g} s.") from None
        except RefusedAddress as refused:
            raise FetchFailed(f"{url}: {refused} (CAREHUB_CAP_FEED_ALLOW_PRIVATE).", permanent=True) from None
        except aiohttp.ClientError as error:
            raise FetchFailed(f"{url}: {type(error).__name__}: {error}") from None
    raise FetchFailed(f"More than {limits.max_redirects} redirects from {url}.")


async def _read(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    if response.content_length is not None and response.content_length > max_bytes:
        raise FetchFailed(
            f"{response.url} is {response.content_length:,} bytes; over {max_bytes:,} is refused.", permanent=True
        )
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):  # decompressed: a gzip bomb stops here too
        body += chunk
        if len(body) > max_bytes:
            raise FetchFailed(f"{response.url} sent more than {max_bytes:,} bytes; refused.", permanent=True)
    return bytes(body)


@dataclass
class FeedState:
    """What this process knows of one feed."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    seen: dict[str, datetime | None] = field(default_factory=dict)  # entry key -> its updated time, when read
    last_polled_at: datetime | None = None
    last_outcome: str = "not polled yet"  # ok, not_modified, failed, refused
    last_detail: str = ""
    outcomes: Counter[str] = field(default_factory=Counter)  # import outcomes since the process started


@dataclass
class _Round:
    """One poll of one feed."""

    outcomes: Counter[str] = field(default_factory=Counter)
    complete: bool = True  # every entry was read: only then may the next poll ask "changed since?"


class CapPoller:
    """Polls the feeds; one per process, kept for its memory of each feed."""

    def __init__(self, rt: Runtime, urls: Sequence[str] | None = None, limits: PollLimits | None = None) -> None:
        self.rt = rt
        self.limits = limits or PollLimits()
        self.feeds = {url: FeedState(url) for url in (rt.settings.cap_feed_urls if urls is None else urls)}
        self._agent: CurrentAgent | None = None

    @property
    def public_only(self) -> bool:
        return not self.rt.settings.cap_feed_allow_private

    async def poll(self, now: datetime | None = None) -> dict[str, int]:
        """Read every feed once. A feed that fails is logged and read again next time; never raises for one."""
        now = now or utcnow()
        totals: Counter[str] = Counter()
        connector = aiohttp.TCPConnector(resolver=GuardedResolver()) if self.public_only else aiohttp.TCPConnector()
        async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as session:
            for feed in self.feeds.values():
                try:
                    outcomes = await self._poll_feed(session, feed, now)
                except Exception as error:  # the store, most likely: this feed waits for the next poll
                    log.exception("CAP feed %s: polling failed; trying again next poll", feed.url)
                    outcomes = Counter({"failed": 1})
                    self._record(feed, now, "failed", f"{type(error).__name__}: {error}")
                totals.update(outcomes)
        return dict(totals)

    def _record(self, feed: FeedState, now: datetime, outcome: str, detail: str) -> None:
        feed.last_polled_at = now
        feed.last_outcome = outcome
        feed.last_detail = detail

    async def _poll_feed(self, session: aiohttp.ClientSession, feed: FeedState, now: datetime) -> Counter[str]:
        limits = self.limits
        try:
            fetched = await fetch(
                session,
                feed.url,
                limits,
                limits.max_feed_bytes,
                etag=feed.etag,
                last_modified=feed.last_modified,
                public_only=self.public_only,
            )
        except FetchFailed as failed:
            log.warning("CAP feed %s: %s Reading it again next poll.", feed.url, failed.reason)
            outcome = "refused" if failed.permanent else "failed"
            self._record(feed, now, outcome, failed.reason)
            return Counter({outcome: 1})
        if fetched.body is None:
            self._record(feed, now, "not_modified", "")
            return Counter({"not_modified": 1})
        try:
            index = parse_index(fetched.body, fetched.url, max_bytes=limits.max_feed_bytes)
        except CapRejected as rejected:
            log.warning("CAP feed %s refused: %s", feed.url, rejected.reason)
            self._record(feed, now, "refused", rejected.reason)
            return Counter({"refused": 1})
        for reason in index.skipped:
            log.info("CAP feed %s: %s", feed.url, reason)
        round_ = await self._read_entries(session, feed, index.entries, now)
        # Entries that left the feed are forgotten: the memory is as large as the feed, no larger.
        listed = {entry.key for entry in index.entries}
        feed.seen = {key: updated for key, updated in feed.seen.items() if key in listed}
        if round_.complete:
            feed.etag, feed.last_modified = fetched.etag, fetched.last_modified
        else:
            feed.etag = feed.last_modified = None
        feed.outcomes.update(round_.outcomes)
        detail = ", ".join(f"{n} {what}" for what, n in sorted(round_.outcomes.items())) or "nothing new"
        self._record(feed, now, "ok", detail)
        return round_.outcomes

    async def _read_entries(
        self, session: aiohttp.ClientSession, feed: FeedState, entries: Sequence[FeedEntry], now: datetime
    ) -> _Round:
        """Download the new entries, oldest first, then import them in the order they were sent: feeds list the
        newest first, and a Cancel imported before the alert it cancels would cancel nothing."""
        round_ = _Round()
        new = sorted((e for e in entries if e.key not in feed.seen or feed.seen[e.key] != e.updated), key=_age)
        if len(new) > self.limits.max_messages:
            log.info("CAP feed %s: %d new entries; the rest wait for the next poll", feed.url, len(new))
            new, round_.complete = new[: self.limits.max_messages], False
        read: list[tuple[FeedEntry, CapAlert]] = []
        for entry in new:
            cap = await self._download(session, feed, entry)
            if isinstance(cap, CapAlert):
                read.append((entry, cap))
            else:
                self._count(round_, feed, entry, cap)
        for entry, cap in sorted(read, key=lambda pair: pair[1].sent):
            self._count(round_, feed, entry, await self._import_entry(feed, entry, cap, now))
        return round_

    def _count(self, round_: _Round, feed: FeedState, entry: FeedEntry, outcome: str) -> None:
        round_.outcomes[outcome] += 1
        if outcome == "failed":
            round_.complete = False
        else:
            feed.seen[entry.key] = entry.updated

    async def _download(self, session: aiohttp.ClientSession, feed: FeedState, entry: FeedEntry) -> CapAlert | str:
        """The entry's CAP message, or "refused" (not read again) or "failed" (read again next poll)."""
        data = entry.message
        if data is None and entry.url is not None:
            try:
                fetched = await fetch(
                    session, entry.url, self.limits, self.limits.max_message_bytes, public_only=self.public_only
                )
                data = fetched.body
            except FetchFailed as failed:
                if failed.permanent:
                    log.warning("CAP feed %s: entry %s refused: %s", feed.url, entry.key, failed.reason)
                    return "refused"
                log.warning("CAP feed %s: entry %s: %s Trying again next poll.", feed.url, entry.key, failed.reason)
                return "failed"
        try:
            return parse_cap(data or b"", max_bytes=self.limits.max_message_bytes)
        except CapRejected as rejected:
            log.warning("CAP feed %s: entry %s refused: %s", feed.url, entry.key, rejected.reason)
            return "refused"

    async def _import_entry(self, feed: FeedState, entry: FeedEntry, cap: CapAlert, now: datetime) -> str:
        """The import's outcome (drafted, duplicate, not_for_city, ...), refused, or failed (read again)."""
        try:
            result = await self._import(cap, now)
        except CapRejected as rejected:  # no info block to draft from
            log.warning("CAP feed %s: entry %s refused: %s", feed.url, entry.key, rejected.reason)
            return "refused"
        except (Problem, ValidationError) as problem:
            if isinstance(problem, Problem) and problem.status == 409:  # lost a race with staff: read it again
                log.warning("CAP feed %s: entry %s: %s Trying again next poll.", feed.url, entry.key, problem)
                return "failed"
            log.warning("CAP feed %s: entry %s cannot be drafted: %s", feed.url, entry.key, problem)
            return "refused"
        log.info("CAP feed %s: entry %s: %s: %s", feed.url, entry.key, result.outcome, result.detail)
        return result.outcome

    async def _import(self, cap: CapAlert, now: datetime) -> Imported:
        """One transaction per message, as the endpoint does; a duplicate imported at the same moment (by staff, or
        another worker) is the other's row."""
        agent = await self.agent(now)
        try:
            async with self.rt.transaction() as tx:
                return await importer.import_cap(tx.conn, self.rt.settings, agent, cap, now)
        except IntegrityError:
            async with self.rt.transaction() as tx:
                return await importer.duplicate(tx.conn, agent, cap, now)

    async def agent(self, now: datetime) -> CurrentAgent:
        if self._agent is None:
            self._agent = await feed_agent(self.rt, now)
        return self._agent


async def feed_agent(rt: Runtime, now: datetime) -> CurrentAgent:
    """The account CAP drafts are made by (alerts.created_by), made on first use: communications, with no password
    and no token, and inactive, so nobody can ever sign in as it (token and session checks want an active agent),
    nor is it offered tickets or mentions. Staff see "CAP feed" as a draft's author and in the audit trail."""
    for _attempt in range(2):
        try:
            async with rt.transaction() as tx:
                row = await agents.agent_by_email(tx.conn, FEED_AGENT_EMAIL)
                if row is None:
                    agent_id = await agents.create_agent(
                        tx.conn, email=FEED_AGENT_EMAIL, name=FEED_AGENT_NAME, role=Role.COMMUNICATIONS, now=now
                    )
                    await tx.conn.execute(update(AGENTS).where(AGENTS.c.id == agent_id).values(is_active=False))
                    row = await agents.agent_by_id(tx.conn, agent_id)
                if row is not None:
                    return CurrentAgent(id=row.id, email=row.email, name=row.name, role=Role(row.role))
        except IntegrityError:  # another process made it at the same moment: read theirs
            continue
    raise RuntimeError(f"the {FEED_AGENT_EMAIL} agent could not be made")


def _age(entry: FeedEntry) -> tuple[bool, datetime]:
    """Oldest first; entries without a time first, in the feed's order."""
    return (entry.updated is not None, entry.updated or datetime.min.replace(tzinfo=UTC))


def start_embedded(rt: Runtime) -> EmbeddedSweeper | None:
    """Embedded mode: poll in this process every CAREHUB_CAP_POLL_INTERVAL_SECONDS, when feeds are configured
    (workers do it with Redis)."""
    if rt.settings.redis_url is not None or not rt.settings.cap_feed_urls:
        return None
    poller = CapPoller(rt)
    timer = EmbeddedSweeper(poller.poll, rt.settings.cap_poll_interval_seconds, name="cap-poller")
    timer.start()
    return timer
