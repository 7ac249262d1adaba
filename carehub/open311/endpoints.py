"""Open311 GeoReport v2 at /open311/v2: services, service definitions, service requests (post, list, one) and
tokens, each as .json or .xml, with the spec's errors; and the discovery document at /open311/discovery.json.

Reads are public, as the spec has them (what a request shows names nobody: see views.py); posting needs an API key
an admin issued (carehub/open311/admin.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from fastapi import APIRouter, Request, Response
from starlette.exceptions import HTTPException

from carehub.agents.auth import RuntimeDep
from carehub.clock import utcnow
from carehub.open311 import catalogue, intake, keys, views
from carehub.open311 import repository as requests
from carehub.open311.repository import CLOSED, OPEN, Filters
from carehub.open311.wire import TORONTO, Format, Open311Error, document, error_response, format_of, single
from carehub.runtime import Runtime
from carehub.tickets.reference import format_reference, parse_reference

router = APIRouter(prefix="/open311", tags=["open311"])
WINDOW = timedelta(days=90)  # the spec's longest (and default) date range
MAX_RESULTS = 1000  # the spec's default number of requests listed
MAX_IDS = 200
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"


async def _answer(ext: str, work: Callable[[Format], Awaitable[Response]]) -> Response:
    """Run an endpoint in the format its extension names; its errors are the spec's, in that format."""
    try:
        fmt = format_of(ext)
    except Open311Error as error:
        return error_response(error)
    try:
        return await work(fmt)
    except Open311Error as error:
        error.fmt = fmt
        return error_response(error)


def _check_jurisdiction(rt: Runtime, given: str | None) -> None:
    if given and given.strip().lower() != rt.settings.open311_jurisdiction_id.lower():
        raise Open311Error(404, f"jurisdiction_id '{given[:100]}' is not served here")


@router.get("/discovery.{ext}", summary="Open311 discovery document")
async def discovery(ext: str, request: Request, rt: RuntimeDep) -> Response:
    async def work(fmt: Format) -> Response:
        base = rt.settings.public_url.rstrip("/")
        endpoint = {
            "specification": SPECIFICATION,
            "url": f"{base}/open311/v2",
            "changeset": "2026-12-07T00:00:00Z",
            "type": "production",
            "formats": ["application/json", "text/xml"],
        }
        body = {
            "changeset": "2026-12-07T00:00:00Z",
            "contact": f"{rt.settings.city_name}: {rt.settings.city_phone or rt.settings.email_from_address}",
            "key_service": f"Ask {rt.settings.email_from_address} for an API key to post service requests.",
            "endpoints": [endpoint],
        }
        return single(fmt, "discovery", body)

    return await _answer(ext, work)


@router.get("/v2/services.{ext}", summary="Open311: the services requests can be made for")
async def services(ext: str, request: Request, rt: RuntimeDep) -> Response:
    async def work(fmt: Format) -> Response:
        _check_jurisdiction(rt, request.query_params.get("jurisdiction_id"))
        async with rt.transaction() as tx:
            rows = await catalogue.all_services(tx.conn, active_only=True)
        return document(fmt, "services", "service", [catalogue.listing(r) for r in rows])

    return await _answer(ext, work)


@router.get("/v2/services/{code}.{ext}", summary="Open311: a service's definition (the attributes it asks)")
async def service_definition(code: str, ext: str, request: Request, rt: RuntimeDep) -> Response:
    async def work(fmt: Format) -> Response:
        _check_jurisdiction(rt, request.query_params.get("jurisdiction_id"))
        async with rt.transaction() as tx:
            row = await catalogue.service(tx.conn, code)
        if row is None or not row.is_active:
            raise Open311Error(404, f"service_code '{code[:64]}' is not a service of this city")
        return single(fmt, "service_definition", catalogue.definition(row))

    return await _answer(ext, work)


@router.post("/v2/requests.{ext}", summary="Open311: make a service request (needs api_key)")
async def post_request(ext: str, request: Request, rt: RuntimeDep) -> Response:
    async def work(fmt: Format) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
            raise Open311Error(
                400, f"Post the fields as application/x-www-form-urlencoded, not '{content_type or 'nothing'}'."
            )
        try:
            form = await request.form(max_files=0, max_fields=200)
        except HTTPException as refused:  # a file part (the spec takes media_url), too many fields, bad multipart
            raise Open311Error(400, f"The form could not be read: {refused.detail}") from None
        api_key = form.get("api_key") or request.query_params.get("api_key")
        if not isinstance(api_key, str) or not api_key.strip():
            raise Open311Error(400, "api_key is required to post a service request")
        _check_jurisdiction(rt, str(form.get("jurisdiction_id") or "") or request.query_params.get("jurisdiction_id"))
        async with rt.transaction() as tx:
            key_id = await keys.verify(tx.conn, api_key.strip(), utcnow())
        if key_id is None:
            raise Open311Error(403, "Invalid api_key")
        language = "fr" if request.headers.get("accept-language", "").lower().startswith("fr") else "en"
        submission = intake.read_submission(rt.settings, form, language)
        idempotency_key = request.headers.get("idempotency-key")
        if idempotency_key is not None and not 0 < len(idempotency_key) <= 128:
            raise Open311Error(400, "Idempotency-Key must be 1 to 128 characters")
        created = await intake.submit(rt, key_id, submission, idempotency_key)
        row = {
            "service_request_id": format_reference(rt.settings.ticket_prefix, created.ticket_id),
            "token": created.token,
            "service_notice": None,
            "account_id": submission.text["account_id"],
        }
        return document(fmt, "service_requests", "request", [row], status=201)

    return await _answer(ext, work)


@router.get("/v2/requests.{ext}", summary="Open311: service requests (by id, service, status and date)")
async def list_requests(ext: str, request: Request, rt: RuntimeDep) -> Response:
    async def work(fmt: Format) -> Response:
        query = request.query_params
        _check_jurisdiction(rt, query.get("jurisdiction_id"))
        filters = _filters(rt, query.get, utcnow())
        async with rt.transaction() as tx:
            rows = await requests.find(tx.conn, filters)
        return document(fmt, "service_requests", "request", [views.service_request(rt.settings, r) for r in rows])

    return await _answer(ext, work)


@router.get("/v2/requests/{request_id}.{ext}", summary="Open311: one service request")
async def get_request(request_id: str, ext: str, request: Request, rt: RuntimeDep) -> Response:
    async def work(fmt: Format) -> Response:
        _check_jurisdiction(rt, request.query_params.get("jurisdiction_id"))
        ticket_id = parse_reference(rt.settings.ticket_prefix, request_id)
        row = None
        if ticket_id is not None:
            async with rt.transaction() as tx:
                row = await requests.one(tx.conn, ticket_id)
        if row is None:
            raise Open311Error(404, f"There is no service request '{request_id[:40]}'")
        return document(fmt, "service_requests", "request", [views.service_request(rt.settings, row)])

    return await _answer(ext, work)


@router.get("/v2/tokens/{token}.{ext}", summary="Open311: the service request a token stands for")
async def token_lookup(token: str, ext: str, request: Request, rt: RuntimeDep) -> Response:
    async def work(fmt: Format) -> Response:
        _check_jurisdiction(rt, request.query_params.get("jurisdiction_id"))
        ticket_id = None
        if len(token) <= 64:
            async with rt.transaction() as tx:
                ticket_id = await requests.by_token(tx.conn, token)
        if ticket_id is None:
            raise Open311Error(404, f"There is no service request with token '{token[:64]}'")
        row = {"service_request_id": format_reference(rt.settings.ticket_prefix, ticket_id), "token": token}
        return document(fmt, "service_requests", "request", [row])

    return await _answer(ext, work)


def _filters(rt: Runtime, param: Callable[[str], str | None], now: datetime) -> Filters:
    ids = _listed(param("service_request_id"))
    ticket_ids = None
    if ids:
        if len(ids) > MAX_IDS:
            raise Open311Error(400, f"At most {MAX_IDS} service_request_id values at once")
        parsed = [parse_reference(rt.settings.ticket_prefix, i) for i in ids]
        unknown = [i for i, p in zip(ids, parsed, strict=True) if p is None]
        if unknown:
            raise Open311Error(400, f"service_request_id '{unknown[0][:40]}' is not a request id of this city")
        ticket_ids = [p for p in parsed if p is not None]
    statuses = _listed(param("status"))
    wrong = [s for s in statuses if s.lower() not in (OPEN, CLOSED)]
    if wrong:
        raise Open311Error(400, f"status must be open or closed (or both, comma separated), not '{wrong[0][:20]}'")
    start, end = _window(_date(param("start_date"), "start_date"), _date(param("end_date"), "end_date"), now)
    return Filters(
        ticket_ids=ticket_ids,
        service_codes=_listed(param("service_code")),
        statuses=[s.lower() for s in statuses],
        start=start,
        end=end,
        limit=_page_size(param("page_size")),
    )


def _window(start: datetime | None, end: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """The dates asked for, at most 90 days apart; one given: 90 days from (or to) it; none: the last 90 days."""
    if start is not None and end is not None:
        if end < start:
            raise Open311Error(400, "end_date is before start_date")
        if end - start > WINDOW:
            raise Open311Error(400, "start_date and end_date may not span more than 90 days")
        return start, end
    if start is not None:
        return start, start + WINDOW
    if end is not None:
        return end - WINDOW, end
    return now - WINDOW, now


def _listed(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _date(value: str | None, name: str) -> datetime | None:
    if value is None or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name} must be a W3C date and time like 2026-12-07T00:00:00Z") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=TORONTO)


def _page_size(value: str | None) -> int:
    if value is None:
        return MAX_RESULTS
    if not value.isdigit() or not 1 <= int(value) <= MAX_RESULTS:
        raise Open311Error(400, f"page_size must be a whole number from 1 to {MAX_RESULTS}")
    return int(value)
