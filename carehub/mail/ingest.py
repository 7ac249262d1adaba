"""Inbound email, from raw bytes to ticket state: store first, then parse, thread, and acknowledge.

accept() commits the raw message before anything can fail on it, so the SMTP listener and the webhook answer
"stored" only for mail that is safe. process() then does the rest; whatever it cannot do (not an email, too big,
the parser crashed, a bounce about mail we never sent) ends in the archive with a reason, never in a drop.
A crash between the two leaves the row "received", and the sweeper processes it again (reprocess_stale).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

from carehub.blobs import key_for
from carehub.clock import utcnow
from carehub.contacts import repository as contacts
from carehub.csat import replies as csat_replies
from carehub.db import Tx
from carehub.help import suggestion
from carehub.inbound import after_hours
from carehub.inbound.service import REFERENCE_SLOT
from carehub.mail import repository as mail
from carehub.messaging.templates import DEFAULT_LANGUAGE, MessageTemplates
from carehub.models import ACTIVE_TICKET_STATUSES, InboundEmailStatus, TicketStatus
from carehub.outbox import repository as outbox
from carehub.outbox.staging import queue_message
from carehub.realtime.events import inbound_events
from carehub.routing.arrival import route_soon
from carehub.runtime import Runtime
from carehub.status import links as status_links
from carehub.subscriptions import service as subscriptions
from carehub.tickets import repository as tickets
from carehub.tickets.reference import format_reference, parse_reference
from channels.base import ChannelKind, DeliveryStatus, StatusUpdate
from channels.email.bounces import reported_message_id
from channels.email.loops import auto_reply_suppressed
from channels.email.mime import Attachment, ParsedEmail, UnparseableEmail, parse_email

log = logging.getLogger("carehub.mail")

EMAIL = ChannelKind.EMAIL
OUR_MESSAGE_ID_PREFIX = "carehub."
# Parsing is CPU work; past this size it runs in a thread so one huge message does not stall every request.
PARSE_IN_THREAD_BYTES = 64 * 1024
# A message whose processing never finishes (it kills the process, say) is tried this often, then archived.
MAX_PROCESSING_ATTEMPTS = 3
_REPLY_PREFIX = re.compile(r"^(?:\s*(?:re|fwd?|tr|aw|sv|réf|ref)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE)


@dataclass(frozen=True)
class EmailOutcome:
    inbound_id: int
    status: InboundEmailStatus
    reason: str | None = None
    ticket_id: int | None = None
    message_id: int | None = None
    new_ticket: bool = False
    acknowledged: bool = False


async def accept(
    rt: Runtime,
    raw: bytes,
    *,
    source: str,
    envelope_from: str | None = None,
    envelope_to: tuple[str, ...] = (),
) -> EmailOutcome:
    """Store raw mail (committed), then process it. Returns how processing ended; mail is safe either way."""
    if rt.hot_pool is not None:  # PostgreSQL: one round trip (migration 0004 says why its commit may be async)
        inbound_id = await rt.hot_pool.fetchval(
            STORE_RAW, utcnow(), source, *mail.envelope_values(envelope_from, envelope_to), raw
        )
    else:
        async with rt.transaction() as tx:
            inbound_id = await mail.store_raw(
                tx.conn, raw, source=source, envelope_from=envelope_from, envelope_to=envelope_to, now=utcnow()
            )
    return await _process_safely(rt, inbound_id, raw, envelope_from=envelope_from, via_smtp=source == "smtp")


async def process(rt: Runtime, inbound_id: int) -> EmailOutcome | None:
    """Process one stored message still waiting (after a crash, or sent back from the archive); None if another
    run processed it already."""
    async with rt.transaction() as tx:
        row = await mail.begin_processing(tx.conn, inbound_id)
    if row is None:
        return None
    if row.attempts > MAX_PROCESSING_ATTEMPTS:  # it stopped the process every time: a person has to look
        return await _archive(rt, inbound_id, f"processing did not finish in {MAX_PROCESSING_ATTEMPTS} attempts")
    return await _process_safely(
        rt, inbound_id, bytes(row.raw), envelope_from=row.envelope_from, via_smtp=row.source == "smtp"
    )


async def _process_safely(
    rt: Runtime, inbound_id: int, raw: bytes, *, envelope_from: str | None, via_smtp: bool
) -> EmailOutcome:
    try:
        return await _process(rt, inbound_id, raw, envelope_from=envelope_from, via_smtp=via_smtp)
    except Exception as exc:
        log.exception("inbound email %d: processing failed; archived", inbound_id)
        return await _archive(rt, inbound_id, f"processing failed: {type(exc).__name__}: {exc}")


async def reprocess_stale(rt: Runtime, limit: int = 100) -> int:
    """Process mail a crash left stored but unprocessed; run by the sweeper."""
    older_than = utcnow() - timedelta(seconds=rt.settings.email_reprocess_after_seconds)
    async with rt.transaction() as tx:
        stale = await mail.stale_received(tx.conn, older_than, limit)
    for inbound_id in stale:
        await process(rt, inbound_id)
    if stale:
        log.info("reprocessed %d stored emails left unprocessed", len(stale))
    return len(stale)


ARCHIVE = (
    "UPDATE inbound_emails SET status = 'unprocessable', processed_at = $2, reason = $3, "
    "header_message_id = $4, subject = $5, from_address = $6 WHERE id = $1"
)


async def _archive(rt: Runtime, inbound_id: int, reason: str, **facts: Any) -> EmailOutcome:
    now, reason = utcnow(), reason[:1000]
    if rt.hot_pool is not None:  # PostgreSQL: one round trip (a good share of real-world mail ends here)
        fields = (facts.get("header_message_id"), facts.get("subject"), facts.get("from_address"))
        await rt.hot_pool.execute(ARCHIVE, inbound_id, now, reason, *fields)
    else:
        async with rt.transaction() as tx:
            await mail.settle(tx.conn, inbound_id, InboundEmailStatus.UNPROCESSABLE, now, reason=reason, **facts)
    return EmailOutcome(inbound_id, InboundEmailStatus.UNPROCESSABLE, reason=reason)


async def parse(rt: Runtime, raw: bytes) -> ParsedEmail:
    """parse_email() with this hub's attachment limits, in a thread for large messages."""
    settings = rt.settings
    limits = {
        "max_attachments": settings.email_max_attachments,
        "max_attachment_bytes": settings.email_max_attachment_bytes,
    }
    if len(raw) > PARSE_IN_THREAD_BYTES:
        return await asyncio.to_thread(lambda: parse_email(raw, **limits))
    return parse_email(raw, **limits)


async def _process(
    rt: Runtime, inbound_id: int, raw: bytes, *, envelope_from: str | None, via_smtp: bool
) -> EmailOutcome:
    settings = rt.settings
    if len(raw) > settings.email_max_bytes:
        return await _archive(
            rt, inbound_id, f"too large to process: {len(raw):,} bytes (limit {settings.email_max_bytes:,})"
        )
    try:
        parsed = await parse(rt, raw)
    except UnparseableEmail as exc:
        return await _archive(rt, inbound_id, f"not an email: {exc.reason}")
    facts: dict[str, Any] = {
        "header_message_id": parsed.message_id[:255],
        "subject": parsed.subject[:300] or None,
        "from_address": (parsed.from_address or "")[:320] or None,
    }
    if parsed.bounce is not None or parsed.complaint:
        return await _report(rt, inbound_id, parsed, facts)
    if not parsed.from_address:
        return await _archive(rt, inbound_id, "no sender address (From) to answer", **facts)
    quiet = auto_reply_suppressed(parsed.message, our_domains=settings.our_email_domains)
    if quiet is None and via_smtp and envelope_from in ("", "<>"):  # aiosmtpd hands on "MAIL FROM:<>" as "<>"
        quiet = "null envelope sender (MAIL FROM:<>)"
    attachments = [(a, key_for(a.content)) for a in parsed.attachments]
    if attachments:
        # Written after the answer: the raw message already holds them durably (carehub/blobs.py).
        rt.in_background(_store_attachments(rt, [a.content for a, _ in attachments]))
    # An answer suggested in the acknowledgement (None unless CAREHUB_HELP_ACK_TOPICS), never to an automatic mail.
    suggested = None if quiet is not None else await suggestion.find(rt, _body(parsed))
    if rt.engine.dialect.name == "postgresql":
        outcome = await _ingest_in_one_call(
            rt, inbound_id, parsed, quiet=quiet, attachments=attachments, facts=facts, suggested=suggested
        )
    else:
        async with rt.transaction() as tx:
            outcome = await _ingest(
                rt, tx, inbound_id, parsed, quiet=quiet, attachments=attachments, suggested=suggested
            )
            await mail.settle(
                tx.conn,
                inbound_id,
                outcome.status,
                utcnow(),
                reason=outcome.reason,
                ticket_id=outcome.ticket_id,
                message_id=outcome.message_id,
                **facts,
            )
    if outcome.new_ticket and outcome.ticket_id:
        route_soon(rt, outcome.ticket_id)  # committed: rules and assignment run after the sender is answered
    if outcome.status is InboundEmailStatus.PROCESSED and outcome.ticket_id and outcome.message_id:
        if not outcome.new_ticket:  # a survey answered by reply ("5"): carehub/csat/replies.py
            await csat_replies.after_ingest(
                rt, ticket_id=outcome.ticket_id, message_id=outcome.message_id, body=_body(parsed)
            )
        rt.publish_soon(
            inbound_events(
                rt.settings.ticket_prefix,
                ticket_id=outcome.ticket_id,
                message_id=outcome.message_id,
                channel=EMAIL.value,
                body=_body(parsed),
                new_ticket=outcome.new_ticket,
                at=utcnow(),
            )
        )
    return outcome


STORE_RAW = "SELECT carehub_store_email($1, $2, $3, $4, $5)"
INGEST_EMAIL_CALL = (
    "SELECT status, reason, ticket_id, message_id, new_ticket, ack_outbox_id "
    "FROM carehub_ingest_email($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, "
    "$19, $20, $21)"
)


async def _ingest_in_one_call(
    rt: Runtime,
    inbound_id: int,
    parsed: ParsedEmail,
    *,
    quiet: str | None,
    attachments: list[tuple[Attachment, str]],
    facts: dict[str, Any],
    suggested: dict[str, suggestion.Suggested] | None,
) -> EmailOutcome:
    """PostgreSQL: _ingest()'s rules in one round trip (carehub_ingest_email(), migration 0004)."""
    settings = rt.settings
    if rt.hot_pool is None:
        raise RuntimeError("Runtime.open_hot_pool() was not called for this PostgreSQL process")
    now = utcnow()
    token = status_links.new_token()  # used only if the call acknowledges (migration 0021)
    row = await rt.hot_pool.fetchrow(
        INGEST_EMAIL_CALL,
        inbound_id,
        (parsed.from_address or "").lower(),
        parsed.message_id,
        _thread_candidates(parsed),
        _subject_reference(rt, parsed.subject),
        _body(parsed),
        json.dumps(_meta(inbound_id, parsed, quiet=quiet)),
        _ticket_subject(parsed),
        json.dumps([_attachment_row(a, key) for a, key in attachments]),
        quiet is not None,
        _ack_texts_json(rt, now, suggested),
        settings.ticket_prefix,
        now,
        now - timedelta(days=settings.reopen_window_days),
        now - timedelta(seconds=settings.email_ack_interval_seconds),
        facts["header_message_id"],
        facts["subject"],
        facts["from_address"],
        status_links.url_for(settings, token),
        status_links.hash_token(token),
        status_links.expiry(settings, now),
    )
    assert row is not None  # noqa: S101 - the function always returns one row
    if row["ack_outbox_id"] is not None:
        rt.enqueue_soon([row["ack_outbox_id"]])
    return EmailOutcome(
        inbound_id,
        InboundEmailStatus(row["status"]),
        reason=row["reason"],
        ticket_id=row["ticket_id"],
        message_id=row["message_id"],
        new_ticket=row["new_ticket"],
        acknowledged=row["ack_outbox_id"] is not None,
    )


async def _store_attachments(rt: Runtime, contents: list[bytes]) -> None:
    try:
        for content in contents:
            await rt.blobs.put(content)
    except OSError:
        # Not lost: a download finds the blob missing and extracts it from the raw message again.
        log.exception("could not write attachments to the blob store")


def _body(parsed: ParsedEmail) -> str:
    return parsed.reply_text or parsed.text or "(no text)"


def _ticket_subject(parsed: ParsedEmail) -> str | None:
    return _REPLY_PREFIX.sub("", parsed.subject)[:300] or None


def _attachment_row(attachment: Attachment, blob_key: str) -> dict[str, Any]:
    return {
        "filename": attachment.filename,
        "content_type": attachment.content_type[:200],
        "size": attachment.size,
        "blob_key": blob_key,
    }


async def _ingest(
    rt: Runtime,
    tx: Tx,
    inbound_id: int,
    parsed: ParsedEmail,
    *,
    quiet: str | None,
    attachments: list[tuple[Attachment, str]],
    suggested: dict[str, suggestion.Suggested] | None = None,
) -> EmailOutcome:
    """SQLite's ingest, statement by statement; PostgreSQL runs the same rules in carehub_ingest_email() (0004).
    The hub holds one SQLite connection, so transactions run one at a time: no two messages from one sender race."""
    settings, conn, now = rt.settings, tx.conn, utcnow()
    sender_address = (parsed.from_address or "").lower()
    # One lookup answers both "seen before?" (its own Message-ID) and "which thread?" (the ones it refers to).
    thread_ids = _thread_candidates(parsed)
    seen = await mail.tickets_by_message_ids(conn, [parsed.message_id, *thread_ids])
    if parsed.message_id in seen:
        return EmailOutcome(
            inbound_id,
            InboundEmailStatus.DUPLICATE,
            reason="this Message-ID was received before",
            ticket_id=seen[parsed.message_id],
        )

    reopen_since = now - timedelta(days=settings.reopen_window_days)
    sender = await contacts.find_sender(
        conn, EMAIL, sender_address, reopen_since=reopen_since
    ) or await contacts.create_sender(conn, EMAIL, sender_address, now)
    await mail.confirm_deliverable(conn, sender.address_id)

    thread_id = next((seen[i] for i in thread_ids if i in seen), None) or _subject_reference(rt, parsed.subject)
    ticket_id, linked_from, link_reason = None, None, None
    if thread_id is not None:
        ticket = await tickets.get_ticket(conn, thread_id)
        if ticket is not None and ticket.contact_id != sender.contact_id:
            linked_from, link_reason = thread_id, "another sender wrote on this thread"
        elif ticket is not None and not _joinable(ticket.status, ticket.resolved_at, reopen_since):
            linked_from, link_reason = thread_id, "the ticket this replies to is closed"
        elif ticket is not None:
            ticket_id = thread_id
    new_ticket = ticket_id is None
    if ticket_id is None:
        ticket_id = await tickets.create_ticket(
            conn,
            contact_id=sender.contact_id,
            address_id=sender.address_id,
            channel=EMAIL,
            subject=_ticket_subject(parsed),
            now=now,
            linked_ticket_id=linked_from,
        )
    message_id = await tickets.add_inbound_message(
        conn,
        ticket_id=ticket_id,
        channel=EMAIL,
        body=_body(parsed),
        provider_id=parsed.message_id,
        meta=_meta(inbound_id, parsed, quiet=quiet),
        now=now,
    )
    if message_id is None:  # cannot happen under the sender lock; kept as the database's own guarantee
        return EmailOutcome(inbound_id, InboundEmailStatus.DUPLICATE, reason="this Message-ID was received before")
    for attachment, blob_key in attachments:
        await mail.add_attachment(conn, message_id=message_id, now=now, **_attachment_row(attachment, blob_key))
    if not new_ticket:
        await tickets.note_inbound(conn, ticket_id, now)
    acknowledged = (
        new_ticket
        and quiet is None
        and not sender.opted_out
        and await mail.take_auto_reply_slot(
            conn, sender.address_id, now, timedelta(seconds=settings.email_ack_interval_seconds)
        )
    )
    if acknowledged:
        answer = None if suggested is None else suggested.get(sender.language, suggested["en"])
        await _stage_ack(rt, tx, ticket_id, sender.language, sender_address, now, answer)
    return EmailOutcome(
        inbound_id,
        InboundEmailStatus.PROCESSED,
        reason=link_reason,
        ticket_id=ticket_id,
        message_id=message_id,
        new_ticket=new_ticket,
        acknowledged=acknowledged,
    )


def _thread_candidates(parsed: ParsedEmail) -> list[str]:
    """The Message-IDs this message continues, strongest first: In-Reply-To, then References newest first."""
    first = [parsed.in_reply_to] if parsed.in_reply_to else []
    return [i for i in dict.fromkeys([*first, *reversed(parsed.references)]) if i != parsed.message_id]


def _subject_reference(rt: Runtime, subject: str) -> int | None:
    """The ticket named in the subject ("Re: ... [PKR-000123]"), for clients that keep no thread headers."""
    prefix = rt.settings.ticket_prefix
    return parse_reference(prefix, subject) if prefix.lower() in subject.lower() else None


def _joinable(status: str, resolved_at: datetime | None, reopen_since: datetime) -> bool:
    if status in ACTIVE_TICKET_STATUSES:
        return True
    return status == TicketStatus.RESOLVED and resolved_at is not None and resolved_at >= reopen_since


def _meta(inbound_id: int, parsed: ParsedEmail, *, quiet: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"inbound_email_id": inbound_id, "subject": parsed.subject}
    optional = {
        "from_name": parsed.from_name,
        "html": parsed.html_sanitized,
        "full_text": parsed.text if parsed.text != parsed.reply_text else None,
        "skipped_attachments": [list(s) for s in parsed.skipped_attachments] or None,
        "defects": list(parsed.defects) or None,
        "no_auto_reply": quiet,
    }
    meta.update({k: v for k, v in optional.items() if v is not None})
    return meta


async def _stage_ack(
    rt: Runtime,
    tx: Tx,
    ticket_id: int,
    language: str,
    to: str,
    now: datetime,
    suggested: suggestion.Suggested | None,
) -> None:
    link = await status_links.issue(tx.conn, rt.settings, ticket_id, now)
    reference = format_reference(rt.settings.ticket_prefix, ticket_id)
    text_body, _html = ack_mail(rt, language, reference, now, status_link=link.url, suggested=suggested)
    await queue_message(tx, ticket_id=ticket_id, channel=EMAIL, to=to, body=text_body, now=now, meta={"auto": "ack"})


@dataclass(frozen=True)
class _Acks:
    """The acknowledgement in every language, text and HTML, with a slot for the reference: rendered once."""

    mails: dict[str, tuple[str, str]]
    texts_json: str  # {language: text}, for carehub_ingest_email()


_ACKS: WeakKeyDictionary[MessageTemplates, _Acks] = WeakKeyDictionary()


def _render_acks(
    rt: Runtime, opening: datetime | None, suggested: dict[str, suggestion.Suggested] | None = None
) -> _Acks:
    context = ack_context(rt, REFERENCE_SLOT, status_links.SLOT)
    mails = {}
    for language in rt.templates.languages(EMAIL, "ack" if opening is None else after_hours.AFTER_HOURS):
        template, extra = ack_template(rt, language, opening)
        answer = None if suggested is None else suggested.get(language, suggested["en"])
        mails[language] = rt.templates.render_email(template, language, **context, **extra, suggestion=answer)
    return _Acks(mails, json.dumps({language: text for language, (text, _) in mails.items()}))


def _acks(rt: Runtime, at: datetime | None) -> _Acks:
    """The acknowledgements for mail that arrived at `at`: in hours, rendered once; after hours (the office is
    closed; when it opens), rendered once per opening time. None: the in-hours ones."""
    opening = None if at is None else after_hours.reopening(rt.settings, at)
    if opening is not None:
        return after_hours.for_opening(rt.templates, ("email",), opening, lambda: _render_acks(rt, opening))
    if rt.templates not in _ACKS:
        _ACKS[rt.templates] = _render_acks(rt, None)
    return _ACKS[rt.templates]


def ack_template(rt: Runtime, language: str, opening: datetime | None) -> tuple[str, dict[str, str]]:
    """(template, extra context) of the acknowledgement: the after-hours one names the next opening (None: open)."""
    if opening is None:
        return "ack", {}
    return after_hours.AFTER_HOURS, {"reopens": after_hours.reopens_in(rt.settings, opening, language)}


def _ack_texts_json(rt: Runtime, at: datetime, suggested: dict[str, suggestion.Suggested] | None) -> str:
    if suggested is None:
        return _acks(rt, at).texts_json
    return _render_acks(rt, after_hours.reopening(rt.settings, at), suggested).texts_json  # one mail's own


def ack_mail(
    rt: Runtime,
    language: str,
    reference: str,
    at: datetime | None = None,
    *,
    status_link: str | None,
    suggested: suggestion.Suggested | None = None,
) -> tuple[str, str]:
    """The acknowledgement mail (text, HTML) for a ticket whose mail arrived at `at`, from once-rendered templates.
    Without a status link (an acknowledgement stored before links existed) it is rendered without one; with a
    suggested answer (carehub/help/suggestion.py), it is rendered for this mail alone."""
    if status_link is None or suggested is not None:
        opening = None if at is None else after_hours.reopening(rt.settings, at)
        template, extra = ack_template(rt, language, opening)
        context = {**ack_context(rt, reference, status_link), **extra}
        return rt.templates.render_email(template, language, **context, suggestion=suggested)
    mails = _acks(rt, at).mails
    text, html = mails.get(language, mails[DEFAULT_LANGUAGE])
    return (
        text.replace(REFERENCE_SLOT, reference).replace(status_links.SLOT, status_link),
        html.replace(REFERENCE_SLOT, reference).replace(status_links.SLOT, status_link),
    )


def message_id_for(rt: Runtime, outbox_id: int, created_ms: int) -> str:
    """Our outgoing Message-ID: stable per outbox row (a retry is the same message to the receiver), unique across
    database resets, and recognisable, so a report about someone else's mail needs no lookup."""
    return f"<{OUR_MESSAGE_ID_PREFIX}{outbox_id}.{created_ms}@{rt.settings.email_from_address.rpartition('@')[2]}>"


def is_our_message_id(rt: Runtime, message_id: str) -> bool:
    domain = rt.settings.email_from_address.rpartition("@")[2]
    return message_id.startswith(f"<{OUR_MESSAGE_ID_PREFIX}") and message_id.endswith(f"@{domain}>")


def ack_context(rt: Runtime, reference: str, status_link: str | None = None) -> dict[str, Any]:
    """What every resident-facing email template is given about the city (sender identity, CASL), and the
    request's status link (acknowledgements only; None leaves it out)."""
    s = rt.settings
    return {
        "city_name": s.city_name,
        "reference": reference,
        "status_link": status_link,
        "contact_name": None,
        "sender_name": s.email_from_name,
        "city_postal_address": s.city_postal_address,
        "city_phone": s.city_phone,
        "city_website": s.city_website,
    }


async def _report(rt: Runtime, inbound_id: int, parsed: ParsedEmail, facts: dict[str, Any]) -> EmailOutcome:
    """A bounce or spam complaint: attach it to the outbound message it is about, via our Message-ID."""
    bounce = parsed.bounce
    about = bounce.original_message_id if bounce is not None else reported_message_id(parsed.message)
    not_ours = "a delivery report about mail carehub did not send (no Message-ID of ours in it)"
    if about is None or not is_our_message_id(rt, about):  # most bounces are backscatter: no lookup needed
        return await _archive(rt, inbound_id, not_ours, **facts)
    now = utcnow()
    async with rt.transaction() as tx:
        sent = await mail.outbox_by_message_id(tx.conn, about)
        if sent is None:
            await mail.settle(tx.conn, inbound_id, InboundEmailStatus.UNPROCESSABLE, now, reason=not_ours, **facts)
            return EmailOutcome(inbound_id, InboundEmailStatus.UNPROCESSABLE, reason=not_ours)
        if bounce is None:
            reason = f"spam complaint about mail to {sent.to_address}: no more mail goes there"
            # The resident told their mail provider our mail is unwanted: as good as STOP (CASL), recorded as one.
            await subscriptions.opt_out(
                tx.conn,
                channel=EMAIL,
                address=sent.to_address,
                method=subscriptions.Method.PROVIDER_OPT_OUT,
                wording=f"spam complaint (ARF) about our message {about}",
                now=now,
            )
        else:
            mine = [r for r in bounce.recipients if r.address.lower() == sent.to_address] or list(bounce.recipients)
            first = mine[0] if mine else None
            status = (first.status if first else None) or ("5.0.0" if bounce.is_permanent else "4.0.0")
            detail = (first.diagnostic if first else None) or "no diagnostic given"
            if any(r.permanent for r in mine):
                reason = f"permanent failure {status} for {sent.to_address}: {detail}"
                await outbox.apply_status(
                    tx.conn,
                    EMAIL,
                    StatusUpdate(about, DeliveryStatus.UNDELIVERED, sent.id, error_code=status, error_message=reason),
                    now,
                )
                await mail.mark_undeliverable(tx.conn, sent.to_address, reason, now)
            else:
                reason = f"temporary problem {status} for {sent.to_address}: {detail}"
                await mail.note_outbox_problem(tx.conn, sent.id, code=status, error=reason, now=now)
        await mail.settle(
            tx.conn,
            inbound_id,
            InboundEmailStatus.BOUNCE,
            now,
            reason=reason,
            outbox_id=sent.id,
            ticket_id=sent.ticket_id,
            **facts,
        )
    return EmailOutcome(inbound_id, InboundEmailStatus.BOUNCE, reason=reason, ticket_id=sent.ticket_id)
