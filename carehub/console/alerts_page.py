"""The communications staff's alert list (GET /console/alerts) and composer with its live preview
(/console/alerts/new); one alert's page is carehub/console/alert_page.py.

The rules are the alert service's, called directly in one transaction per action; a fan-out starts only after the
commit. Every form posts with the session's CSRF token and redirects back (post/redirect/get); composing carries an
idempotency key, so a double click makes one alert. Communications staff and admins write; supervisors read; anyone
else gets a 403 page."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from carehub.agents.auth import CurrentAgent, RuntimeDep
from carehub.alerts import repository as alerts
from carehub.alerts import service
from carehub.alerts.texts import LANGUAGES
from carehub.clock import utcnow
from carehub.console.alert_form import (
    ALL_RESIDENTS,
    ComposerValues,
    FormProblems,
    Summary,
    field_id,
    from_problem,
    preview,
)
from carehub.console.alert_views import (
    LIST_SIZE,
    TORONTO,
    WRITERS,
    after,
    forbidden,
    page,
    progress,
    reading_agent,
    writing_agent,
)
from carehub.problems import Problem
from carehub.runtime import Runtime
from carehub.subscriptions import places
from carehub.subscriptions import repository as subscriptions

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/alerts")
async def alert_list(request: Request, rt: RuntimeDep, before: Annotated[int | None, Query(ge=1)] = None) -> Response:
    agent = await reading_agent(request, rt)
    if isinstance(agent, Response):
        return agent
    async with rt.transaction() as tx:
        rows = await alerts.list_alerts(tx.conn, limit=LIST_SIZE + 1, before_id=before)
        topics = {t.id: t.name_en for t in await subscriptions.topics(tx.conn, active_only=False)}
        shown = rows[:LIST_SIZE]
        counts = await alerts.done_and_total(tx.conn, [a.id for a in shown])
        items = [(a, progress(*counts.get(a.id, (0, 0)))) for a in shown]
    return page(
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
        areas = await places.areas(tx.conn)
        templates = await alerts.templates(tx.conn)
        shown = await preview(tx.conn, rt.settings, values, now) if with_preview else None
    return page(
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
    agent = await reading_agent(request, rt)
    if isinstance(agent, Response):
        return agent
    if agent.role not in WRITERS:
        return forbidden(rt, agent, "Only communications staff and administrators compose alerts.")
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
    agent = await writing_agent(request, rt)
    if isinstance(agent, Response):
        return agent
    values = ComposerValues.from_form(await request.form())
    if request.headers.get("hx-request") != "true":
        return await _composer(rt, agent, values, with_preview=True)
    async with rt.transaction() as tx:
        shown = await preview(tx.conn, rt.settings, values, utcnow())
    return page(rt, "_alert_preview.html.j2", agent, p=shown)


@router.post("/alerts")
async def compose(request: Request, rt: RuntimeDep) -> Response:
    """Create the draft and send it (or, with "Save as draft", only create it); "Preview" shows the form again."""
    agent = await writing_agent(request, rt)
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
    return await after(rt, alert.id, start)
