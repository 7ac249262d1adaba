"""The communications staff's alert pages in the console: the list (GET /console/alerts), the composer with its live
preview (/console/alerts/new), and an alert with its actions and live delivery report (/console/alerts/{id}).

The rules are the alert service's, called directly in one transaction per action; a fan-out starts only after the
commit. Every form posts with the session's CSRF token and redirects back (post/redirect/get); composing and
following up carry an idempotency key, so a double click makes one alert. Communications staff and admins write;
supervisors read (without residents' addresses); anyone else gets a 403 page."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import RedirectResponse, StreamingResponse
from pydantic import ValidationError

from carehub import audit
from carehub.agents.auth import CurrentAgent, RuntimeDep
from carehub.alerts import repository as alerts
from carehub.alerts import service
from carehub.alerts.endpoints import export_deliveries
from carehub.alerts.runner import start_fanout
from carehub.alerts.service import REPORT_STATUSES, ChannelText, FollowUp
from carehub.alerts.texts import LANGUAGES
from carehub.clock import utcnow
from carehub.console.alert_form import (
    ALL_RESIDENTS,
    LANGUAGE_NAMES,
    PARTS,
    ComposerValues,
    FormProblems,
    Summary,
    field_id,
    from_problem,
    preview,
)
from carehub.console.views import agent_names, form_agent, page_agent, render
from carehub.db import AnyRow
from carehub.models import AlertStatus, Role
from carehub.problems import Problem
from carehub.runtime import Runtime
from carehub.subscriptions import repository as subscriptions

router = APIRouter(prefix="/console", include_in_schema=False)

WRITERS = (Role.COMMUNICATIONS, Role.ADMIN)
READERS = (*WRITERS, Role.SUPERVISOR)
TORONTO = ZoneInfo("America/Toronto")
LIST_SIZE = 50
RECIPIENTS_PAGE = 100
LIVE = (AlertStatus.SENDING.value, AlertStatus.SCHEDULED.value)
CANCELLABLE = (AlertStatus.DRAFT, AlertStatus.AWAITING_APPROVAL, AlertStatus.SCHEDULED, AlertStatus.SENDING)
FOLLOWS_UP = (AlertStatus.SENDING.value, AlertStatus.SENT.value, AlertStatus.CANCELLED.value)
STATUS_NAMES = {
    "draft": "Draft",
    "awaiting_approval": "Waiting for approval",
    "scheduled": "Scheduled",
    "sending": "Sending",
    "sent": "Sent",
    "cancelled": "Cancelled",
}
KIND_NAMES = {"alert": "Alert", "update": "Update", "all_clear": "All clear"}
DONE = {
    "draft": "Draft saved. Nothing has been sent yet.",
    "awaiting_approval": "Sent for approval: another communications officer or administrator must approve it.",
    "scheduled": "Scheduled: it goes out at the time set.",
    "sending": "Sending: the report below follows it live.",
    "sent": "Sent.",
    "approve": "Approved.",
    "cancel": "Cancelled: deliveries not yet handed to a provider were stopped.",
    "update": "Follow-up sent to everyone the first alert reached.",
}
POLL_STOP = 286  # htmx stops polling on this status (and still swaps the answer in)


def local(moment: datetime | str | None) -> str:
    """A stored UTC time (or its ISO text) as Toronto wall time."""
    if moment is None:
        return "—"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(TORONTO).strftime("%Y-%m-%d %H:%M")


def _page(rt: Runtime, template: str, agent: CurrentAgent, *, status_code: int = 200, **context: Any) -> Response:
    return render(
        rt,
        template,
        status_code=status_code,
        agent=agent,
        page_kind="alerts",
        ticket_ref=None,
        status_names=STATUS_NAMES,
        kind_names=KIND_NAMES,
        language_names=LANGUAGE_NAMES,
        local=local,
        can_write=agent.role in WRITERS,
        **context,
    )


def _forbidden(rt: Runtime, agent: CurrentAgent, why: str) -> Response:
    return _page(rt, "alerts.html.j2", agent, status_code=403, title="Not allowed", forbidden=why)


async def _reader(request: Request, rt: Runtime) -> CurrentAgent | Response:
    agent = await page_agent(request, rt)
    if agent.role not in READERS:
        return _forbidden(rt, agent, "Alerts are for communications staff, supervisors and administrators.")
    return agent


async def _writer(request: Request, rt: Runtime) -> CurrentAgent | Response:
    agent = await form_agent(request, rt, ticket_work=False)
    if agent.role not in WRITERS:
        return _forbidden(rt, agent, "Only communications staff and administrators compose, send and stop alerts.")
    return agent


def _progress(report: dict[str, Any]) -> str:
    if not report["total"]:
        return "—"
    return f"{report['done']} of {report['total']} ({round(report['progress'] * 100)}%)"


# ---- the list --------------------------------------------------------------------------------------------------


@router.get("/alerts")
async def alert_list(request: Request, rt: RuntimeDep, before: Annotated[int | None, Query(ge=1)] = None) -> Response:
    agent = await _reader(request, rt)
    if isinstance(agent, Response):
        return agent
    now = utcnow()
    async with rt.transaction() as tx:
        rows = await alerts.list_alerts(tx.conn, limit=LIST_SIZE + 1, before_id=before)
        topics = {t.id: t.name_en for t in await subscriptions.topics(tx.conn, active_only=False)}
        items = [(a, _progress(await service.report(tx.conn, a, now))) for a in rows[:LIST_SIZE]]
    return _page(
        rt,
        "alerts.html.j2",
        agent,
        title="Alerts",
        forbidden=None,
        items=items,
        topics=topics,
        older=f"/console/alerts?before={rows[LIST_SIZE - 1].id}" if len(rows) > LIST_SIZE else None,
    )


# ---- the composer ----------------------------------------------------------------------------------------------


async def _composer(
    rt: Runtime,
    agent: CurrentAgent,
    values: ComposerValues,
    *,
    with_preview: bool = False,
    summary: Summary | None = None,
    status_code: int = 200,
) -> Response:
    now = utcnow()
    async with rt.transaction() as tx:
        topics = await subscriptions.topics(tx.conn)
        areas = await subscriptions.areas(tx.conn)
        templates = await alerts.templates(tx.conn)
        shown = await preview(tx.conn, rt.settings, values, now) if with_preview else None
    return _page(
        rt,
        "alert_compose.html.j2",
        agent,
        status_code=status_code,
        title="Error: new alert" if summary else "New alert",
        v=values,
        topics=topics,
        areas=areas,
        all_residents=ALL_RESIDENTS,
        templates=templates,
        languages=LANGUAGES,
        field_id=field_id,
        summary=summary or [],
        p=shown,
        earliest=now.astimezone(TORONTO).strftime("%Y-%m-%dT%H:%M"),
    )


@router.get("/alerts/new")
async def composer(request: Request, rt: RuntimeDep) -> Response:
    agent = await _reader(request, rt)
    if isinstance(agent, Response):
        return agent
    if agent.role not in WRITERS:
        return _forbidden(rt, agent, "Only communications staff and administrators compose alerts.")
    key = secrets.token_urlsafe(18)
    template_id = request.query_params.get("template", "")
    if template_id.isdigit():
        async with rt.transaction() as tx:
            template = await alerts.template(tx.conn, int(template_id))
        if template is not None:
            return await _composer(rt, agent, ComposerValues.from_template(template, key), with_preview=True)
    return await _composer(rt, agent, ComposerValues(idempotency_key=key))


@router.post("/alerts/preview")
async def preview_panel(request: Request, rt: RuntimeDep) -> Response:
    """The preview panel alone (htmx swaps it in as staff type); without htmx, the whole composer with it."""
    agent = await _writer(request, rt)
    if isinstance(agent, Response):
        return agent
    values = ComposerValues.from_form(await request.form())
    if request.headers.get("hx-request") != "true":
        return await _composer(rt, agent, values, with_preview=True)
    async with rt.transaction() as tx:
        shown = await preview(tx.conn, rt.settings, values, utcnow())
    return _page(rt, "_alert_preview.html.j2", agent, p=shown)


@router.post("/alerts")
async def compose(request: Request, rt: RuntimeDep) -> Response:
    """Create the draft and send it (or, with "Save as draft", only create it); "Preview" shows the form again."""
    agent = await _writer(request, rt)
    if isinstance(agent, Response):
        return agent
    form = await request.form()
    values = ComposerValues.from_form(form)
    action = form.get("action")
    if action == "preview":
        return await _composer(rt, agent, values, with_preview=True)
    now = utcnow()
    try:
        draft = values.to_draft(now)
        async with rt.transaction() as tx:
            alert, _ = await service.create(tx.conn, agent, draft, values.idempotency_key or None, now)
            start = action != "draft" and await service.send(tx.conn, rt.settings, agent, alert.id, now)
    except FormProblems as problems:
        return await _composer(
            rt, agent, values, with_preview=True, summary=problems.summary, status_code=problems.status
        )
    except Problem as problem:
        return await _composer(
            rt, agent, values, with_preview=True, summary=from_problem(problem), status_code=problem.status
        )
    return await _after(rt, alert.id, start)


async def _after(rt: Runtime, alert_id: int, start: bool, done: str | None = None) -> Response:
    """After the commit: start the fan-out if the action asked for it, then back to the alert's page."""
    if start:
        await start_fanout(rt, alert_id)
    if done is None:
        async with rt.transaction() as tx:
            alert = await alerts.get(tx.conn, alert_id)
        done = "sending" if alert is None else str(alert.status)
    return RedirectResponse(f"/console/alerts/{alert_id}?done={done}", status_code=status.HTTP_303_SEE_OTHER)


# ---- one alert -------------------------------------------------------------------------------------------------


async def _load(rt: Runtime, alert_id: int) -> tuple[AnyRow, dict[str, Any]]:
    now = utcnow()
    async with rt.transaction() as tx:
        alert = await alerts.get(tx.conn, alert_id)
        if alert is None:
            raise Problem(404, f"There is no alert {alert_id}.")
        return alert, await service.report(tx.conn, alert, now)


def _report_context(alert: AnyRow, report: dict[str, Any]) -> dict[str, Any]:
    return {
        "a": alert,
        "report": report,
        "statuses": [*REPORT_STATUSES, "total"],
        "live": alert.status in LIVE,
        "progress_text": _progress(report),
    }


async def _alert_page(
    rt: Runtime,
    agent: CurrentAgent,
    alert_id: int,
    *,
    after: int = 0,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    alert, report = await _load(rt, alert_id)
    writer = agent.role in WRITERS
    recipients: list[AnyRow] = []
    more = None
    async with rt.transaction() as tx:
        names = await agent_names(tx.conn)
        topic = next(
            (t for t in await subscriptions.topics(tx.conn, active_only=False) if t.id == alert.topic_id), None
        )
        area_names = {a.id: a.name for a in await subscriptions.areas(tx.conn)}
        if writer:  # residents' addresses: for those who send alerts, and audited as the API does
            rows = await alerts.deliveries(tx.conn, alert_id, after_id=after, limit=RECIPIENTS_PAGE + 1)
            recipients = rows[:RECIPIENTS_PAGE]
            more = recipients[-1].id if len(rows) > RECIPIENTS_PAGE else None
            await audit.by_agent(
                tx.conn,
                agent.id,
                "read_alert_deliveries",
                "alert",
                alert_id,
                utcnow(),
                {"after": after, "n": len(recipients)},
            )
    context: dict[str, Any] = {
        "title": f"Alert: {alert.title}",
        "names": names,
        "topic": topic,
        "areas": [area_names.get(i, f"area {i}") for i in alert.area_ids],
        "can_send": writer and alert.status == AlertStatus.DRAFT.value,
        "can_approve": writer and alert.status == AlertStatus.AWAITING_APPROVAL.value,
        "own_alert": alert.created_by == agent.id,
        "can_cancel": writer and alert.status in [s.value for s in CANCELLABLE],
        "can_follow_up": writer and alert.status in FOLLOWS_UP,
        "recipients": recipients,
        "after": after,
        "more": more,
        "confirm_cancel": False,
        "summary": [],
        "follow": {"kind": "update", "title": "", "key": secrets.token_urlsafe(18), "texts": {}},
        "announce": False,
        **_report_context(alert, report),
        **extra,
    }
    return _page(rt, "alert.html.j2", agent, status_code=status_code, **context)


@router.get("/alerts/{alert_id:int}")
async def alert_page(
    request: Request,
    alert_id: int,
    rt: RuntimeDep,
    after: Annotated[int, Query(ge=0)] = 0,
    done: str | None = None,
) -> Response:
    agent = await _reader(request, rt)
    if isinstance(agent, Response):
        return agent
    return await _alert_page(rt, agent, alert_id, after=after, done=DONE.get(done or ""))


@router.get("/alerts/{alert_id:int}/report")
async def report_fragment(request: Request, alert_id: int, rt: RuntimeDep) -> Response:
    """The delivery report alone, polled by htmx every 2 s while the alert is live; 286 stops the polling."""
    agent = await _reader(request, rt)
    if isinstance(agent, Response):
        return agent
    alert, report = await _load(rt, alert_id)
    context = _report_context(alert, report)
    final = not context["live"]
    return _page(rt, "_alert_report.html.j2", agent, status_code=POLL_STOP if final else 200, announce=final, **context)


@router.get("/alerts/{alert_id:int}/deliveries.csv", response_model=None)
async def deliveries_csv(request: Request, alert_id: int, rt: RuntimeDep) -> Response | StreamingResponse:
    """The API's CSV export (streamed, audited), for the signed-in browser."""
    agent = await _reader(request, rt)
    if isinstance(agent, Response):
        return agent
    if agent.role not in WRITERS:
        return _forbidden(rt, agent, "Residents' addresses are for communications staff and administrators.")
    return await export_deliveries(alert_id, rt, agent)


async def _act(rt: Runtime, agent: CurrentAgent, alert_id: int, run: Any, done: str | None = None) -> Response:
    """Run one action (it returns whether to start the fan-out); the page again with the reason if refused."""
    try:
        async with rt.transaction() as tx:
            start = await run(tx.conn)
    except Problem as problem:
        return await _alert_page(rt, agent, alert_id, status_code=problem.status, error=problem.detail)
    return await _after(rt, alert_id, bool(start), done)


@router.post("/alerts/{alert_id:int}/send")
async def send(request: Request, alert_id: int, rt: RuntimeDep) -> Response:
    agent = await _writer(request, rt)
    if isinstance(agent, Response):
        return agent
    writer = agent
    return await _act(rt, agent, alert_id, lambda conn: service.send(conn, rt.settings, writer, alert_id, utcnow()))


@router.post("/alerts/{alert_id:int}/approve")
async def approve(request: Request, alert_id: int, rt: RuntimeDep) -> Response:
    agent = await _writer(request, rt)
    if isinstance(agent, Response):
        return agent
    writer = agent
    return await _act(rt, agent, alert_id, lambda conn: service.approve(conn, writer, alert_id, utcnow()), "approve")


@router.post("/alerts/{alert_id:int}/cancel")
async def cancel(request: Request, alert_id: int, rt: RuntimeDep) -> Response:
    """Without confirm=yes, the page asks first (a second form: no script needed)."""
    agent = await _writer(request, rt)
    if isinstance(agent, Response):
        return agent
    if (await request.form()).get("confirm") != "yes":
        return await _alert_page(rt, agent, alert_id, confirm_cancel=True)
    writer = agent

    async def run(conn: Any) -> bool:
        await service.cancel(conn, writer, alert_id, utcnow())
        return False

    return await _act(rt, agent, alert_id, run, "cancel")


@router.post("/alerts/{alert_id:int}/updates")
async def follow_up(request: Request, alert_id: int, rt: RuntimeDep) -> Response:
    """An update or an all-clear (the button pressed says which) to everyone the alert reached, now."""
    agent = await _writer(request, rt)
    if isinstance(agent, Response):
        return agent
    form = await request.form()

    def typed(name: str) -> str:
        value = form.get(name)
        return value if isinstance(value, str) else ""

    texts = {lang: {part: typed(f"{lang}_{part}") for part in PARTS} for lang in LANGUAGES}
    kind: Literal["update", "all_clear"] = "all_clear" if typed("kind") == "all_clear" else "update"
    title, key = typed("title"), typed("idempotency_key")
    follow = {"kind": kind, "title": title, "key": key, "texts": texts}
    written = [lang for lang in LANGUAGES if lang == "en" or any(v.strip() for v in texts[lang].values())]
    try:
        payload = FollowUp(
            kind=kind,
            title=title.strip() or None,
            content={lang: ChannelText(**texts[lang]) for lang in written},
        )
        async with rt.transaction() as tx:
            alert, created = await service.follow_up(tx.conn, agent, alert_id, payload, key or None, utcnow())
    except ValidationError as error:
        summary = [("follow-en-sms", f"{'.'.join(map(str, e['loc']))}: {e['msg']}") for e in error.errors()]
        return await _alert_page(rt, agent, alert_id, status_code=422, summary=summary, follow=follow)
    except Problem as problem:
        summary = [(f"follow-{target}", message) for target, message in from_problem(problem)]
        return await _alert_page(rt, agent, alert_id, status_code=problem.status, summary=summary, follow=follow)
    return await _after(rt, alert.id, created, "update")
