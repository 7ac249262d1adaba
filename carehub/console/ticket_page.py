"""A ticket in the console (GET /console/tickets/{ref}): the conversation with notes, the reply box with canned
responses and a choice of channel, and the forms that claim, assign, change status, label and merge it.

Every form posts to /console/tickets/{ref}/<action> with the session's CSRF token and, on success, redirects back
(post/redirect/get), so a reload never repeats an action; a reply also carries an idempotency key, so a double
click sends once. A refused action shows the page again with the reason and the agent's draft kept."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, Response, status
from fastapi.responses import RedirectResponse

from carehub.agents import repository as agents
from carehub.agents.auth import CurrentAgent, RuntimeDep
from carehub.canned.endpoints import fill_in, list_canned
from carehub.clock import utcnow
from carehub.console.views import agent_names, form_agent, page_agent, render
from carehub.contacts import history as contact_history
from carehub.help import service as help_articles
from carehub.models import Priority, Role, TicketDetail, TicketStatus, TicketUpdate
from carehub.problems import Problem
from carehub.runtime import Runtime
from carehub.tickets import labels, merge, service
from channels.base import ChannelKind

router = APIRouter(prefix="/console/tickets", include_in_schema=False)

DONE = {
    "reply": "Reply sent. Its delivery status shows in the conversation.",
    "note": "Note added.",
    "claim": "The ticket is assigned to you.",
    "update": "Changes saved.",
    "labels": "Labels saved.",
    "merge": "Ticket merged into the one named. Its messages and notes are there now.",
    "unmerge": "Merge undone: the messages and notes are back on this ticket.",
}


@dataclass(frozen=True)
class TimelineItem:
    kind: str  # "message" or "note"
    at: datetime
    body: str
    author: int | None
    direction: str = ""
    channel: str = ""
    delivery: str = ""


def timeline(detail: TicketDetail) -> list[TimelineItem]:
    items = [
        TimelineItem(
            kind="message",
            at=m.created_at,
            body=m.body,
            author=m.author_agent_id,
            direction=m.direction.value,
            channel=m.channel.value,
            delivery="" if m.delivery is None else _delivery(m.delivery.status.value, m.delivery.last_error),
        )
        for m in detail.messages
    ]
    items += [TimelineItem(kind="note", at=n.created_at, body=n.body, author=n.author_agent_id) for n in detail.notes]
    return sorted(items, key=lambda i: i.at)


def _delivery(state: str, error: str | None) -> str:
    words = {
        "queued": "Sending…",
        "sending": "Sending…",
        "sent": "Sent",
        "delivered": "Delivered",
        "failed": "Not delivered",
    }
    text = words.get(state, state.capitalize())
    return f"{text}: {error}" if error and state == "failed" else text


async def _conversation_context(rt: Runtime, agent: CurrentAgent, ref: str) -> tuple[dict[str, Any], TicketDetail]:
    """What the conversation needs (all that a live refresh renders): the ticket with its messages and notes."""
    ticket_id = service.ticket_id_from(rt.settings, ref)
    now = utcnow()
    async with rt.transaction() as tx:
        detail = await service.detail(tx.conn, rt.settings, ticket_id, agent, now)
        names = await agent_names(tx.conn)
    return {"agent": agent, "t": detail, "timeline": timeline(detail), "agent_names": names, "now": now}, detail


async def _ticket_context(
    rt: Runtime, agent: CurrentAgent, ref: str, *, canned_id: int | None = None, article: str | None = None
) -> dict[str, Any]:
    context, detail = await _conversation_context(rt, agent, ref)
    async with rt.transaction() as tx:
        resident = await contact_history.history(tx.conn, rt.settings, detail.contact_id, agent, context["now"])
        assignable = [a for a in await agents.active_agents(tx.conn) if Role(a.role) is not Role.COMMUNICATIONS]
        articles = await help_articles.reply_choices(tx.conn, detail.contact_id)
        # A help article goes in as its title and public link, in the resident's language.
        linked = (
            None
            if article is None
            else await help_articles.for_reply(tx.conn, rt.settings.public_url, article[:80], detail.contact_id)
        )
    draft = "" if canned_id is None else (await fill_in(ref, canned_id, rt, agent)).body
    if linked:
        draft = linked
    others = {a.channel.value for a in resident.addresses} - {detail.channel.value}
    return {
        **context,
        "ticket_ref": detail.reference,
        "page_kind": "ticket",
        "title": f"{detail.reference}: {detail.subject or 'no subject'}",
        "resident": resident,
        "canned": await list_canned(rt, agent),
        "help_articles": articles,
        "draft": draft,
        "reply_channels": [detail.channel.value, *sorted(others)],
        "reply_channel": detail.channel.value,
        "assignable": assignable,
        "statuses": [s.value for s in TicketStatus],
        "priorities": [p.value for p in Priority],
        "idempotency_key": secrets.token_urlsafe(18),
        "prefix": rt.settings.ticket_prefix,
        "csat": None if detail.csat is None or detail.csat.rating is None else f"{detail.csat.rating} out of 5",
    }


@router.get("/{ref}")
async def ticket_page(
    request: Request,
    ref: str,
    rt: RuntimeDep,
    canned: int | None = None,
    done: str | None = None,
    article: str | None = None,
) -> Response:
    agent = await page_agent(request, rt, ticket_work=True)
    context = await _ticket_context(rt, agent, ref, canned_id=canned, article=article)
    return render(rt, "ticket.html.j2", done=DONE.get(done or ""), **context)


@router.get("/{ref}/conversation")
async def conversation(request: Request, ref: str, rt: RuntimeDep) -> Response:
    """The conversation alone: console.js swaps it in when the live stream reports a new message or note."""
    agent = await page_agent(request, rt, ticket_work=True)
    context, _ = await _conversation_context(rt, agent, ref)
    return render(rt, "_conversation.html.j2", **context)


Action = Callable[[CurrentAgent, int], Awaitable[None]]


async def _act(request: Request, rt: Runtime, ref: str, action: str, run: Action, *, draft: str = "") -> Response:
    """Run one form's action; back to the ticket when it worked, or the ticket again with the reason why not."""
    agent = await form_agent(request, rt)
    ticket_id = service.ticket_id_from(rt.settings, ref)
    try:
        await run(agent, ticket_id)
    except Problem as problem:
        context = await _ticket_context(rt, agent, ref)
        context["draft"] = draft
        return render(rt, "ticket.html.j2", status_code=problem.status, error=problem.detail, **context)
    return RedirectResponse(f"/console/tickets/{quote(ref)}?done={action}", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/{ref}/reply")
async def reply(
    request: Request,
    ref: str,
    rt: RuntimeDep,
    body: Annotated[str, Form(max_length=20_000)],
    idempotency_key: Annotated[str, Form(max_length=128, pattern=r"^[\x21-\x7e]+$")],
    channel: Annotated[ChannelKind | None, Form()] = None,
) -> Response:
    async def run(agent: CurrentAgent, ticket_id: int) -> None:
        if not body.strip():
            raise Problem(422, "Write a message before sending.")
        async with rt.transaction() as tx:
            await service.reply(
                tx,
                rt.settings,
                ticket_id,
                agent,
                body,
                idempotency_key=idempotency_key,
                now=utcnow(),
                on_channel=channel,
            )

    return await _act(request, rt, ref, "reply", run, draft=body)


@router.post("/{ref}/note")
async def note(request: Request, ref: str, rt: RuntimeDep, body: Annotated[str, Form(max_length=20_000)]) -> Response:
    async def run(agent: CurrentAgent, ticket_id: int) -> None:
        if not body.strip():
            raise Problem(422, "Write the note before adding it.")
        async with rt.transaction() as tx:
            await service.add_note(tx, rt.settings, ticket_id, agent, body, utcnow())

    return await _act(request, rt, ref, "note", run)


@router.post("/{ref}/claim")
async def claim(request: Request, ref: str, rt: RuntimeDep) -> Response:
    async def run(agent: CurrentAgent, ticket_id: int) -> None:
        async with rt.transaction() as tx:
            await service.claim(tx.conn, rt.settings, ticket_id, agent, utcnow())

    return await _act(request, rt, ref, "claim", run)


@router.post("/{ref}/update")
async def update(
    request: Request,
    ref: str,
    rt: RuntimeDep,
    status_: Annotated[TicketStatus, Form(alias="status")],
    priority: Annotated[Priority, Form()],
    assignee_id: Annotated[str, Form(max_length=12)] = "",
    team: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    async def run(agent: CurrentAgent, ticket_id: int) -> None:
        async with rt.transaction() as tx:
            current = await service.load(tx.conn, rt.settings, ticket_id, agent)
            changes: dict[str, Any] = {}
            if status_ != current.status:
                changes["status"] = status_
            if priority != current.priority:
                changes["priority"] = priority
            if assignee_id.isdigit() and int(assignee_id) != current.assignee_id:
                changes["assignee_id"] = int(assignee_id)
            if team.strip().lower() != (current.team or "") and team.strip():
                changes["team"] = team.strip()
            if changes:
                await service.change(tx, rt.settings, rt.templates, ticket_id, agent, TicketUpdate(**changes), utcnow())

    return await _act(request, rt, ref, "update", run)


@router.post("/{ref}/labels")
async def set_labels(
    request: Request, ref: str, rt: RuntimeDep, labels_: Annotated[str, Form(alias="labels", max_length=2000)] = ""
) -> Response:
    async def run(agent: CurrentAgent, ticket_id: int) -> None:
        wanted = [part.strip() for part in labels_.split(",") if part.strip()]
        async with rt.transaction() as tx:
            await labels.replace(tx, rt.settings, ticket_id, agent, wanted, utcnow())

    return await _act(request, rt, ref, "labels", run)


@router.post("/{ref}/merge")
async def merge_into(request: Request, ref: str, rt: RuntimeDep, into: Annotated[str, Form(max_length=20)]) -> Response:
    async def run(agent: CurrentAgent, ticket_id: int) -> None:
        target_id = service.ticket_id_from(rt.settings, into.strip().upper())
        async with rt.transaction() as tx:
            await merge.merge(tx, rt.settings, ticket_id, target_id, agent, utcnow())

    return await _act(request, rt, ref, "merge", run)


@router.post("/{ref}/unmerge")
async def unmerge(request: Request, ref: str, rt: RuntimeDep) -> Response:
    async def run(agent: CurrentAgent, ticket_id: int) -> None:
        async with rt.transaction() as tx:
            merge_id = await merge.current_merge_of(tx.conn, rt.settings, ticket_id)
            await merge.unmerge(tx, rt.settings, merge_id, agent, utcnow())

    return await _act(request, rt, ref, "unmerge", run)
