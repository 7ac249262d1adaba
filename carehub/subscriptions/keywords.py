"""SMS keywords in front of the inquiry queue: STOP, START, HELP, JOIN <topic> and YES change subscriptions and are
answered by text, and STATUS [reference] answers where the sender's requests are (carehub/status/keyword.py); they
never become tickets. An ordinary text costs one parse and no query.

What the consent record keeps as `wording` (CASL: what the resident sent and saw) is
`received '<their text>'; replied '<our reply>'`, both exactly, or `...; no reply sent by carehub (...)` when the
provider answers the keyword itself (CAREHUB_SMS_KEYWORD_REPLIES off).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from carehub.clock import utcnow
from carehub.contacts import repository as contacts
from carehub.contacts.repository import Sender
from carehub.db import Tx
from carehub.models import SubscriptionStatus
from carehub.outbox.staging import queue_notice
from carehub.runtime import Runtime
from carehub.status import keyword as status_keyword
from carehub.subscriptions import repository as subs
from carehub.subscriptions import service
from carehub.subscriptions.service import Method
from channels.base import ChannelKind, InboundMessage
from channels.sms.keywords import Command, Keyword, parse_keyword

SMS = ChannelKind.SMS

# Twilio's opt-out handling (Advanced Opt-Out) answers its own opt-out, opt-in (START, UNSTOP, YES) and help words;
# with CAREHUB_SMS_KEYWORD_REPLIES off we leave those to it. JOIN is ours alone, and its YES prompt is what makes
# the double opt-in possible, so it is always answered.
_PROVIDER_ANSWERS = frozenset({Keyword.STOP, Keyword.START, Keyword.HELP, Keyword.CONFIRM})


class _Inquiry(Exception):
    """A YES with nothing to confirm: an answer to an agent, not a keyword (the receipt is rolled back)."""


@dataclass(frozen=True)
class _Turn:
    """One keyword being handled, inside its transaction."""

    rt: Runtime
    tx: Tx
    message: InboundMessage
    command: Command
    sender: Sender | None  # None: a number we have never heard from
    language: str
    now: datetime

    @property
    def replies(self) -> bool:
        return self.rt.settings.sms_keyword_replies or self.command.keyword not in _PROVIDER_ANSWERS

    def render(self, name: str, **context: Any) -> str:
        return self.rt.templates.render(SMS, name, self.language, city_name=self.rt.settings.city_name, **context)

    def wording(self, reply: str) -> str:
        if self.replies:
            return f"received {self.message.body!r}; replied {reply!r}"
        return (
            f"received {self.message.body!r}; no reply sent by carehub "
            "(the provider's opt-out handling answers this keyword)"
        )

    async def reply(self, text: str) -> None:
        if self.replies:
            await queue_notice(self.tx, channel=SMS, to=self.message.from_address, body=text, now=self.now)


async def handle_keyword(rt: Runtime, message: InboundMessage) -> bool:
    """True if the text was a keyword and has been handled (committed, reply staged), or was handled before;
    False if it is an ordinary inquiry for the queue."""
    command = parse_keyword(message.body)
    if command is None:
        return False
    now = utcnow()
    try:
        async with rt.transaction() as tx:
            # The receipt comes first, even for a YES that may turn out to be an inquiry (then rolled back): a
            # redelivered YES finds nothing left to confirm, and only the receipt tells it apart from an answer.
            if not await subs.take_receipt(tx.conn, SMS, message.provider_id, command.keyword.value, now):
                return True
            sender = await contacts.find_sender(tx.conn, SMS, message.from_address, reopen_since=now)
            turn = _Turn(rt, tx, message, command, sender, _language(command, sender), now)
            await _HANDLERS[command.keyword](turn)
    except _Inquiry:
        return False
    return True


def _language(command: Command, sender: Sender | None) -> str:
    """French if the keyword was (ARRET, AIDE, OUI...), else what we know of the resident, else English."""
    if command.language == "fr":
        return "fr"
    return sender.language if sender is not None else "en"


async def _stop(turn: _Turn) -> None:
    reply = turn.render("keyword_stop")
    await service.opt_out(
        turn.tx.conn,
        channel=SMS,
        address=turn.message.from_address,
        method=Method.SMS_KEYWORD,
        wording=turn.wording(reply),
        now=turn.now,
        provider_id=turn.message.provider_id,
        language=turn.language,
    )
    await turn.reply(reply)


async def _start(turn: _Turn) -> None:
    conn = turn.tx.conn
    # What opt_in_again will restore, named in the reply that the consent record quotes.
    restorable = [] if turn.sender is None else await subs.ended_by(conn, turn.sender.address_id, service.OPT_OUT)
    topics = await subs.topics(conn, active_only=False)
    reply = turn.render(
        "keyword_start",
        topics=_names(topics, [s.topic_id for s in restorable], turn.language),
        keywords=[t.keyword for t in topics if t.active],
    )
    await service.opt_in_again(
        conn,
        channel=SMS,
        address=turn.message.from_address,
        method=Method.SMS_KEYWORD,
        wording=turn.wording(reply),
        now=turn.now,
        provider_id=turn.message.provider_id,
        language=turn.language,
    )
    await turn.reply(reply)


async def _confirm(turn: _Turn) -> None:
    """YES / OUI: confirm what JOIN asked for; from an opted-out number with nothing pending it means START;
    otherwise it answers someone and goes to the queue."""
    if turn.sender is None:
        raise _Inquiry
    conn, address_id = turn.tx.conn, turn.sender.address_id
    live = {
        sub_id
        for sub_id, _hash, expires, attempts in await subs.pending_confirmations(conn, address_id)
        if expires is not None and expires > turn.now and attempts < service.MAX_CONFIRM_ATTEMPTS
    }  # the rule service.confirm applies, so the reply names exactly what it confirms
    if not live:
        if turn.sender.opted_out:
            await _start(turn)
            return
        raise _Inquiry
    pending = await subs.subscriptions_of(conn, address_id, statuses=[SubscriptionStatus.PENDING])
    topic_ids = [s.topic_id for s in pending if s.id in live]
    reply = turn.render(
        "keyword_joined", topics=_names(await subs.topics(conn, active_only=False), topic_ids, turn.language)
    )
    await service.confirm(
        conn,
        channel=SMS,
        address_id=address_id,
        code=None,  # the YES came from the number itself: possession of the phone is the proof
        method=Method.SMS_KEYWORD,
        wording=turn.wording(reply),
        now=turn.now,
        provider_id=turn.message.provider_id,
        language=turn.language,
    )
    await turn.reply(reply)


async def _join(turn: _Turn) -> None:
    conn, word = turn.tx.conn, turn.command.argument
    topic = None
    if word is not None:
        topic = await subs.topic_by(conn, keyword=word) or await subs.topic_by(conn, slug=word.lower())
    if topic is None or not topic.active:
        keywords = [t.keyword for t in await subs.topics(conn)]
        await turn.reply(turn.render("keyword_topics", unknown=word is not None, keywords=keywords))
        return
    name = topic.name(turn.language)
    reply = turn.render("keyword_join", topic=name, already=False)
    requested = await service.request(
        conn,
        turn.rt.settings,
        channel=SMS,
        address=turn.message.from_address,
        topic_ids=[topic.id],
        area_id=None,
        language=turn.language,
        method=Method.SMS_KEYWORD,
        wording=turn.wording(reply),
        now=turn.now,
        provider_id=turn.message.provider_id,
    )
    if requested.code is None:  # already active: nothing was asked, so nothing was recorded
        reply = turn.render("keyword_join", topic=name, already=True)
    await turn.reply(reply)


async def _help(turn: _Turn) -> None:
    settings = turn.rt.settings
    await turn.reply(turn.render("keyword_help", city_phone=settings.city_phone, city_website=settings.city_website))


async def _status(turn: _Turn) -> None:
    """Where the sender's requests are; an opted-out number gets nothing, as it gets no acknowledgement."""
    if turn.sender is not None and turn.sender.opted_out:
        return
    reply = await status_keyword.answer(
        turn.tx.conn,
        turn.rt.settings,
        turn.rt.templates,
        sender=turn.sender,
        argument=turn.command.argument,
        language=turn.language,
        now=turn.now,
    )
    await turn.reply(reply)


def _names(topics: list[subs.TopicRow], topic_ids: list[int], language: str) -> list[str]:
    by_id = {t.id: t for t in topics}
    return [by_id[i].name(language) for i in dict.fromkeys(topic_ids) if i in by_id]


_HANDLERS: dict[Keyword, Callable[[_Turn], Awaitable[None]]] = {
    Keyword.STOP: _stop,
    Keyword.START: _start,
    Keyword.CONFIRM: _confirm,
    Keyword.JOIN: _join,
    Keyword.HELP: _help,
    Keyword.STATUS: _status,
}
