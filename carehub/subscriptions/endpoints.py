"""Alert subscriptions over HTTP: the residents' pages (subscribe, confirm, unsubscribe, in English and French, no
script needed). The staff API for topics and areas is in carehub/subscriptions/catalogue.py.

The public pages carry no session and so no CSRF token. Subscribing needs the code texted or mailed to the
address (double opt-in), so a forged post can at most send someone one confirmation; posts whose Origin says
another site are refused all the same. A signed link token is the authority to unsubscribe, so the one-click
POST (RFC 8058) works from a mail provider's server with no cookie. Requests are rate-limited per client and, for
the posts that send a message, per address."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub import resident_pages
from carehub.agents.auth import RuntimeDep
from carehub.chat.service import mask
from carehub.clock import utcnow
from carehub.contacts import repository as contacts
from carehub.db import Tx
from carehub.models import SubscriptionStatus
from carehub.outbox.staging import queue_notice
from carehub.runtime import Runtime
from carehub.same_site import cross_site
from carehub.static_assets import asset_response, cached_asset
from carehub.subscriptions import catalogue, pages, places, service, tokens
from carehub.subscriptions import form as subscribe_form
from carehub.subscriptions import repository as subs
from carehub.subscriptions.addresses import area_for_address
from carehub.subscriptions.areas import area_for_postal_code
from carehub.subscriptions.page_text import LANGUAGE_NAMES, LANGUAGES, TEXT, consent_wording, language, sender_identity
from carehub.subscriptions.repository import SubscriptionRow
from channels.base import ChannelKind

router = APIRouter(prefix="/alerts", include_in_schema=False)

SENDS_PER_MINUTE = 1  # per address: confirmation messages, after a burst of 3
SEND_BURST = 3
MAX_FORM_FIELDS = 40
# Bodies these routes take (the app's BodySizeLimit enforces them before a handler reads anything): forms are
# small; an area's boundary may hold 10,000 positions (about 300 KB of GeoJSON).
BODY_LIMITS = {"/alerts/subscribe": 8 * 1024, "/alerts/confirm": 4 * 1024}
BODY_PREFIX_LIMITS = {"/alerts/": 8 * 1024, **catalogue.BODY_PREFIX_LIMITS}


# ---------------------------------------------------------------- pages: subscribe


@router.get("/alerts.css")
async def stylesheet(request: Request, rt: RuntimeDep) -> Response:
    path = rt.templates.root / "alerts_public" / "alerts.css"
    return asset_response(request, cached_asset(path, "text/css; charset=utf-8"))


async def _form_page(
    rt: Runtime,
    conn: AsyncConnection,
    lang: str,
    entered: subscribe_form.Entered,
    errors: list[subscribe_form.FieldError],
) -> HTMLResponse:
    t = TEXT[lang]
    return pages.page(
        rt,
        "subscribe.html.j2",
        lang,
        422 if errors else 200,
        title=(t["error_prefix"] + t["subscribe_title"]) if errors else t["subscribe_title"],
        topics=[(topic.slug, topic.name(lang)) for topic in await subs.topics(conn)],
        entered=entered,
        errors=errors,
        error_for={e.target: e.message for e in errors},
        consent=t["consent"].format(city_name=rt.settings.city_name),
        sender=sender_identity(rt.settings, lang),
        summary=[(e.target, e.message) for e in errors],
        languages=[(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        switch_url=pages.switch_url("/alerts/subscribe", lang),
    )


@router.get("/subscribe")
async def subscribe_page(request: Request, rt: RuntimeDep) -> Response:
    lang = pages.lang(request)
    if pages.limited(request):
        return pages.notice(rt, request, lang, "limited", 429)
    async with rt.transaction() as tx:
        return await _form_page(rt, tx.conn, lang, subscribe_form.Entered(language=lang), [])


async def _ask(
    rt: Runtime,
    tx: Tx,
    checked: subscribe_form.Checked,
    channel: ChannelKind,
    address: str,
    topic_ids: list[int],
    area_id: int | None,
    wording: str,
    contact_id: int | None,
) -> tuple[bool, int]:
    """Ask for the subscriptions at one address and send its code or link: (False if all were already active, the
    address's id). `contact_id`: the resident's other address in this form, so a new address joins its contact."""
    now = utcnow()
    asked = await service.request(
        tx.conn,
        rt.settings,
        channel=channel,
        address=address,
        topic_ids=topic_ids,
        area_id=area_id,
        language=checked.language,
        method=service.Method.WEB_FORM,
        wording=wording,
        now=now,
        contact_id=contact_id,
    )
    if asked.code is None:
        return False, asked.address_id
    context = {
        "city_name": rt.settings.city_name,
        "city_postal_address": rt.settings.city_postal_address,
        "city_phone": rt.settings.city_phone,
        "city_website": rt.settings.city_website,
        "minutes": rt.settings.subscription_confirm_minutes,
    }
    if channel is ChannelKind.SMS:
        body = rt.templates.render(channel, "subscribe_code", checked.language, code=asked.code, **context)
        await queue_notice(tx, channel=channel, to=address, body=body, now=now)
        return True, asked.address_id
    token = tokens.sign(rt.settings, tokens.CONFIRM, asked.address_id)
    link = f"{rt.settings.public_url.rstrip('/')}/alerts/confirm/{token}?{urlencode({'c': asked.code})}"
    if checked.language != "en":
        link += f"&lang={checked.language}"
    body = rt.templates.render(channel, "subscribe_confirm", checked.language, link=link, **context)
    subject = TEXT[checked.language]["email_subject"].format(city_name=rt.settings.city_name)
    await queue_notice(tx, channel=channel, to=address, body=body, now=now, subject=subject)
    return True, asked.address_id


async def _placed(conn: AsyncConnection, checked: subscribe_form.Checked) -> places.AreaRow | None:
    """The resident's area: by postal code when it is in one, else by street address; None means the whole city.
    An address the city did not publish is no error: the page says the alerts will be city-wide."""
    if checked.postal_code is None and checked.street_address is None:
        return None
    areas = await places.areas(conn)
    area = area_for_postal_code(areas, checked.postal_code) if checked.postal_code is not None else None
    if area is None and checked.street_address is not None:
        area = await area_for_address(conn, areas, checked.street_address)
    return area


@router.post("/subscribe")
async def subscribe(request: Request, rt: RuntimeDep) -> Response:
    """Ask for the chosen alerts at each address given: a code by text, a link by mail (double opt-in)."""
    lang = pages.lang(request)
    if pages.limited(request):
        return pages.notice(rt, request, lang, "limited", 429)
    if cross_site(request, rt.settings.public_url):
        return pages.notice(rt, request, lang, "cross_site", 403)
    entered = subscribe_form.read(await request.form(max_files=0, max_fields=MAX_FORM_FIELDS), lang)
    async with rt.transaction() as tx:
        topics = await subs.topics(tx.conn)
        errors, checked = subscribe_form.check(entered, rt.settings, [t.slug for t in topics], lang)
        if checked is None:
            return await _form_page(rt, tx.conn, lang, entered, errors)
        addresses = [(c, a) for c, a in ((ChannelKind.SMS, checked.phone), (ChannelKind.EMAIL, checked.email)) if a]
        per_address = resident_pages.limiter(request, "alerts_address_limiter", SENDS_PER_MINUTE, SEND_BURST)
        allowed = [per_address.allow(pair) for pair in addresses]  # each address spends its own token
        if not all(allowed):
            return pages.notice(rt, request, lang, "limited", 429)
        area = await _placed(tx.conn, checked)
        topic_ids = [t.id for t in topics if t.slug in checked.topics]
        wording = consent_wording(rt.settings, lang)
        area_id = area.id if area else None
        sent: dict[ChannelKind, bool] = {}
        contact_id: int | None = None  # a phone and an email given together are one resident (alert fallback)
        for channel, address in addresses:
            sent[channel], address_id = await _ask(
                rt, tx, checked, channel, address, topic_ids, area_id, wording, contact_id
            )
            contact_id = contact_id or await subs.contact_of(tx.conn, address_id)
        t = TEXT[lang]
        where = None
        if area is not None:
            where = t["area_found"].format(area=area.name)
        elif checked.street_address is not None:
            where = t["address_none"]
        elif checked.postal_code is not None:
            where = t["area_none"]
        if checked.phone and sent[ChannelKind.SMS]:
            return _code_page(rt, lang, checked.phone, where=where, email=checked.email if checked.email else None)
        if checked.email and sent[ChannelKind.EMAIL]:
            return pages.page(
                rt,
                "email_sent.html.j2",
                lang,
                title=t["email_sent_title"],
                email=checked.email,
                minutes=rt.settings.subscription_confirm_minutes,
                where=where,
            )
        channel, address = addresses[0]  # every one asked for was already active: say so, without unsubscribe links
        first_id = await subs.existing_address_id(tx.conn, channel, address)
        active = await subs.subscriptions_of(tx.conn, first_id or 0, statuses=[SubscriptionStatus.ACTIVE])
        asked = [s for s in active if s.topic_id in topic_ids and s.area_id == area_id]
        return await pages.subscribed_page(rt, tx.conn, lang, channel, address, asked, links=False)


def _code_page(
    rt: Runtime,
    lang: str,
    phone: str,
    *,
    where: str | None = None,
    email: str | None = None,
    error: str | None = None,
) -> HTMLResponse:
    t = TEXT[lang]
    return pages.page(
        rt,
        "code.html.j2",
        lang,
        422 if error else 200,
        title=(t["error_prefix"] + t["code_title"]) if error else t["code_title"],
        phone=phone,
        shown_phone=mask(ChannelKind.SMS, phone),
        minutes=rt.settings.subscription_confirm_minutes,
        where=where,
        email=email,
        error=error,
        summary=[("code", error)] if error else [],
    )


# ---------------------------------------------------------------- pages: confirm


@router.post("/confirm")
async def confirm_code(request: Request, rt: RuntimeDep) -> Response:
    """The code typed back from the text message: the subscriptions start (the service counts wrong tries)."""
    lang = pages.lang(request)
    if pages.limited(request):
        return pages.notice(rt, request, lang, "limited", 429)
    if cross_site(request, rt.settings.public_url):
        return pages.notice(rt, request, lang, "cross_site", 403)
    posted = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
    raw_phone, raw_code = posted.get("phone"), posted.get("code")
    phone = subscribe_form.normalise_phone(rt.settings, raw_phone)
    code = raw_code.strip()[:16] if isinstance(raw_code, str) else ""
    if phone is None:
        return pages.notice(rt, request, lang, "not_found", 404)
    t = TEXT[lang]
    if not code:
        return _code_page(rt, lang, phone, error=t["code_required"])
    async with rt.transaction() as tx:
        address_id = await subs.existing_address_id(tx.conn, ChannelKind.SMS, phone)
        active = None
        if address_id is not None:
            active = await service.confirm(
                tx.conn,
                channel=ChannelKind.SMS,
                address_id=address_id,
                code=code,
                method=service.Method.WEB_FORM,
                wording=consent_wording(rt.settings, lang),
                now=utcnow(),
                language=lang,
            )
        if active is None:
            return _code_page(rt, lang, phone, error=t["code_wrong"])
        return await pages.subscribed_page(rt, tx.conn, lang, ChannelKind.SMS, phone, active)


async def _pending_match(conn: AsyncConnection, address_id: int, code: str) -> bool:
    """Whether the code would confirm something, without counting a try (a GET must change nothing)."""
    wanted = service.confirm_hash(address_id, code)
    now = utcnow()
    return any(
        h == wanted and expires is not None and expires > now and tries < service.MAX_CONFIRM_ATTEMPTS
        for _, h, expires, tries in await subs.pending_confirmations(conn, address_id)
    )


@router.get("/confirm/{token}")
async def confirm_link_page(token: str, request: Request, rt: RuntimeDep) -> Response:
    """The mailed link: a button to confirm. Mail scanners fetch links, so this page changes nothing."""
    lang = pages.lang(request)
    if pages.limited(request):
        return pages.notice(rt, request, lang, "limited", 429)
    address_id = tokens.verify(rt.settings, tokens.CONFIRM, token)
    code = request.query_params.get("c", "")[:64]
    if address_id is None:
        return pages.notice(rt, request, lang, "not_found", 404)
    async with rt.transaction() as tx:
        matched = bool(code) and await _pending_match(tx.conn, address_id, code)
        address = await subs.address_by_id_or_none(tx.conn, address_id)
    if not matched or address is None:
        return pages.notice(rt, request, lang, "confirm_failed", 410)
    return pages.page(
        rt,
        "confirm_link.html.j2",
        lang,
        title=TEXT[lang]["confirm_title"],
        action=f"/alerts/confirm/{token}?lang={lang}",
        code=code,
        email=mask(ChannelKind.EMAIL, address),
        switch_url=pages.switch_url(f"/alerts/confirm/{token}", lang, c=code),
    )


@router.post("/confirm/{token}")
async def confirm_link(token: str, request: Request, rt: RuntimeDep) -> Response:
    lang = pages.lang(request)
    if pages.limited(request):
        return pages.notice(rt, request, lang, "limited", 429)
    address_id = tokens.verify(rt.settings, tokens.CONFIRM, token)
    if address_id is None:
        return pages.notice(rt, request, lang, "not_found", 404)
    posted = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
    raw_code = posted.get("c")
    code = raw_code.strip()[:64] if isinstance(raw_code, str) else ""
    async with rt.transaction() as tx:
        address = await subs.address_by_id_or_none(tx.conn, address_id)
        active = None
        if code and address is not None:
            active = await service.confirm(
                tx.conn,
                channel=ChannelKind.EMAIL,
                address_id=address_id,
                code=code,
                method=service.Method.EMAIL_LINK,
                wording=consent_wording(rt.settings, lang),
                now=utcnow(),
                language=lang,
            )
        if active is None or address is None:
            return pages.notice(rt, request, lang, "confirm_failed", 410)
        return await pages.subscribed_page(rt, tx.conn, lang, ChannelKind.EMAIL, address, active)


# ---------------------------------------------------------------- pages: unsubscribe


async def _unsubscribe_context(
    rt: Runtime, conn: AsyncConnection, token: str, lang: str | None
) -> tuple[SubscriptionRow, str, str, dict[str, str]] | None:
    """(subscription, language, topic name, words) for a valid token, else None."""
    subscription_id = tokens.verify(rt.settings, tokens.UNSUBSCRIBE, token)
    if subscription_id is None:
        return None
    found = await subs.subscription_by_id(conn, subscription_id)
    if found is None:
        return None
    lang = lang or language(found.language)
    topic = next((t for t in await subs.topics(conn, active_only=False) if t.id == found.topic_id), None)
    name = topic.name(lang) if topic else ""
    channel = (await contacts.address_by_id(conn, found.address_id)).channel
    t = TEXT[lang]
    words = {"topic": name, "channel": t["by_email"] if channel is ChannelKind.EMAIL else t["by_sms"]}
    return found, lang, name, words


@router.get("/unsubscribe/{token}")
async def unsubscribe_page(token: str, request: Request, rt: RuntimeDep) -> Response:
    asked = request.query_params.get("lang")
    if pages.limited(request):
        return pages.notice(rt, request, language(asked), "limited", 429)
    async with rt.transaction() as tx:
        found = await _unsubscribe_context(rt, tx.conn, token, language(asked) if asked else None)
    if found is None:
        return pages.notice(rt, request, language(asked), "not_found", 404)
    subscription, lang, _, words = found
    t = TEXT[lang]
    live = subscription.status is not SubscriptionStatus.ENDED
    return pages.page(
        rt,
        "unsubscribe.html.j2",
        lang,
        title=t["unsubscribe_title"] if live else t["unsubscribed_title"],
        live=live,
        text=(t["unsubscribe_intro"] if live else t["already_unsubscribed"]).format(**words),
        button=t["unsubscribe_button"].format(**words),
        action=f"/alerts/unsubscribe/{token}?lang={lang}",
        switch_url=pages.switch_url(f"/alerts/unsubscribe/{token}", lang),
    )


@router.post("/unsubscribe/{token}")
async def unsubscribe(token: str, request: Request, rt: RuntimeDep) -> Response:
    """RFC 8058 one-click (body List-Unsubscribe=One-Click, from a mail provider) or the page's button: the
    subscription ends. Idempotent: posting again answers the same page.

    Not rate-limited per client: a mail provider posts its users' one-click unsubscribes from a few addresses, and
    an unsubscribe must never be refused (CASL). A forged token costs one HMAC and no query."""
    asked = request.query_params.get("lang")
    if tokens.verify(rt.settings, tokens.UNSUBSCRIBE, token) is None:
        return pages.notice(rt, request, language(asked), "not_found", 404)
    posted = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
    one_click = posted.get("List-Unsubscribe") == "One-Click"
    async with rt.transaction() as tx:
        found = await _unsubscribe_context(rt, tx.conn, token, language(asked) if asked else None)
        if found is None:
            return pages.notice(rt, request, language(asked), "not_found", 404)
        subscription, lang, _, words = found
        t = TEXT[lang]
        await service.unsubscribe(
            tx.conn,
            subscription_id=subscription.id,
            method=service.Method.ONE_CLICK if one_click else service.Method.EMAIL_LINK,
            wording="List-Unsubscribe=One-Click" if one_click else t["unsubscribe_button"].format(**words),
            now=utcnow(),
        )
    return pages.page(
        rt,
        "unsubscribed.html.j2",
        lang,
        title=t["unsubscribed_title"],
        text=t["unsubscribed"].format(**words),
        switch_url=None,
    )
