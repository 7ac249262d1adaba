"""One alert in the console (GET /console/alerts/{id}): its texts and audience, its actions (send, approve, cancel
with a confirm step, update or all-clear) and the live delivery report, polled by htmx while it is sending;
per-recipient detail and CSV for communications staff and admins (reading it is audited)."""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from carehub import audit
from carehub.agents.auth import CurrentAgent, RuntimeDep
from carehub.alerts import report, service
from carehub.alerts import repository as alerts
from carehub.alerts.endpoints import export_deliveries
from carehub.alerts.report import REPORT_STATUSES
from carehub.alerts.service import ChannelText, FollowUp
from carehub.alerts.texts import LANGUAGES
from carehub.clock import utcnow
from carehub.console.alert_form import PARTS, from_problem
from carehub.console.alert_views import (
    CANCELLABLE,
    DONE,
    FOLLOWS_UP,
    LIVE,
    POLL_STOP,
    RECIPIENTS_PAGE,
    WRITERS,
    after,
    forbidden,
    page,
    progress,
    reading_agent,
    writing_agent,
)
from carehub.console.views import agent_names
from carehub.db import AnyRow
from carehub.models import AlertStatus
from carehub.problems import Problem
from carehub.runtime import Runtime
from carehub.subscriptions import places
from carehub.subscriptions import repository as subscriptions

router = APIRouter(prefix="/console", include_in_schema=False)


async def _load(rt: Runtime, alert_id: int) -> tuple[AnyRow, dict[str, Any]]:
    now = utcnow()
    async with rt.transaction() as tx:
        alert = await alerts.get(tx.conn, alert_id)
        if alert is None:
            raise Problem(404, f"There is no alert {alert_id}.")
        return alert, await report.report(tx.conn, alert, now)


def _report_context(alert: AnyRow, report: dict[str, Any]) -> dict[str, Any]:
    return {
        "a": alert,
        "report": report,
        "statuses": [*REPORT_STATUSES, "total"],
        "live": alert.status in LIVE,
        "progress_text": progress(report["done"], report["total"]),
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
        area_names = {a.id: a.name for a in await places.areas(tx.conn)}
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
    return page(rt, "alert.html.j2", agent, status_code=status_code, **context)


@router.get("/alerts/{alert_id:int}")
async def alert_page(
    request: Request,
    alert_id: int,
    rt: RuntimeDep,
    after: Annotated[int, Query(ge=0)] = 0,
    done: str | None = None,
) -> Response:
    agent = await reading_agent(request, rt)
    if isinstance(agent, Response):
        return agent
    return await _alert_page(rt, agent, alert_id, after=after, done=DONE.get(done or ""))


@router.get("/alerts/{alert_id:int}/report")
async def report_fragment(request: Request, alert_id: int, rt: RuntimeDep) -> Response:
    """The delivery report alone, polled by htmx every 2 s while the alert is live; 286 stops the polling."""
    agent = await reading_agent(request, rt)
    if isinstance(agent, Response):
        return agent
    alert, report = await _load(rt, alert_id)
    context = _report_context(alert, report)
    final = not context["live"]
    return page(rt, "_alert_report.html.j2", agent, status_code=POLL_STOP if final else 200, announce=final, **context)


@router.get("/alerts/{alert_id:int}/deliveries.csv", response_model=None)
async def deliveries_csv(request: Request, alert_id: int, rt: RuntimeDep) -> Response | StreamingResponse:
    """The API's CSV export (streamed, audited), for the signed-in browser."""
    agent = await reading_agent(request, rt)
    if isinstance(agent, Response):
        return agent
    if agent.role not in WRITERS:
        return forbidden(rt, agent, "Residents' addresses are for communications staff and administrators.")
    return await export_deliveries(alert_id, rt, agent)


async def _act(rt: Runtime, agent: CurrentAgent, alert_id: int, run: Any, done: str | None = None) -> Response:
    """Run one action (it returns whether to start the fan-out); the page again with the reason if refused."""
    try:
        async with rt.transaction() as tx:
            start = await run(tx.conn)
    except Problem as problem:
        return await _alert_page(rt, agent, alert_id, status_code=problem.status, error=problem.detail)
    return await after(rt, alert_id, bool(start), done)


@router.post("/alerts/{alert_id:int}/send")
async def send(request: Request, alert_id: int, rt: RuntimeDep) -> Response:
    agent = await writing_agent(request, rt)
    if isinstance(agent, Response):
        return agent
    writer = agent
    return await _act(rt, agent, alert_id, lambda conn: service.send(conn, rt.settings, writer, alert_id, utcnow()))


@router.post("/alerts/{alert_id:int}/approve")
async def approve(request: Request, alert_id: int, rt: RuntimeDep) -> Response:
    agent = await writing_agent(request, rt)
    if isinstance(agent, Response):
        return agent
    writer = agent
    return await _act(rt, agent, alert_id, lambda conn: service.approve(conn, writer, alert_id, utcnow()), "approve")


@router.post("/alerts/{alert_id:int}/cancel")
async def cancel(request: Request, alert_id: int, rt: RuntimeDep) -> Response:
    """Without confirm=yes, the page asks first (a second form: no script needed)."""
    agent = await writing_agent(request, rt)
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
    agent = await writing_agent(request, rt)
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
    return await after(rt, alert.id, created, "update")
