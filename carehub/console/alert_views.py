"""What the console's alert pages share: who may read and write, the page frame, names and times as staff read
them, and what follows an action (the fan-out after commit, then back to the alert)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request, Response, status
from fastapi.responses import RedirectResponse

from carehub.agents.auth import CurrentAgent
from carehub.alerts import repository as alerts
from carehub.alerts.runner import start_fanout
from carehub.console.alert_form import LANGUAGE_NAMES
from carehub.console.views import form_agent, page_agent, render
from carehub.models import AlertStatus, Role
from carehub.runtime import Runtime

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


def page(rt: Runtime, template: str, agent: CurrentAgent, *, status_code: int = 200, **context: Any) -> Response:
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


def forbidden(rt: Runtime, agent: CurrentAgent, why: str) -> Response:
    return page(rt, "alerts.html.j2", agent, status_code=403, title="Not allowed", forbidden=why)


async def reading_agent(request: Request, rt: Runtime) -> CurrentAgent | Response:
    agent = await page_agent(request, rt)
    if agent.role not in READERS:
        return forbidden(rt, agent, "Alerts are for communications staff, supervisors and administrators.")
    return agent


async def writing_agent(request: Request, rt: Runtime) -> CurrentAgent | Response:
    agent = await form_agent(request, rt, ticket_work=False)
    if agent.role not in WRITERS:
        return forbidden(rt, agent, "Only communications staff and administrators compose, send and stop alerts.")
    return agent


def progress(done: int, total: int) -> str:
    """How far the deliveries are, as staff read it: "30 of 40 (75%)"."""
    if not total:
        return "—"
    return f"{done} of {total} ({round(done / total * 100)}%)"


async def after(rt: Runtime, alert_id: int, start: bool, done: str | None = None) -> Response:
    """After the commit: start the fan-out if the action asked for it, then back to the alert's page."""
    if start:
        await start_fanout(rt, alert_id)
    if done is None:
        async with rt.transaction() as tx:
            alert = await alerts.get(tx.conn, alert_id)
        done = "sending" if alert is None else str(alert.status)
    return RedirectResponse(f"/console/alerts/{alert_id}?done={done}", status_code=status.HTTP_303_SEE_OTHER)
