"""Web chat over HTTP and WebSocket: the widget's files, its configuration, the demo page, the resident's socket
(/chat/ws, plain ASGI: chat_socket), and the agent's side of a chat (typing, read)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field
from starlette.datastructures import State
from starlette.types import Receive, Scope, Send

from carehub.agents.auth import CurrentAgent, RuntimeDep, TicketAgent
from carehub.chat import repository as chats
from carehub.chat import service
from carehub.chat.hub import ChatHub
from carehub.chat.protocol import frame
from carehub.chat.session import ChatSession
from carehub.chat.socket import ChatSocket
from carehub.problems import Problem
from carehub.realtime.broker import Event
from carehub.runtime import Runtime
from carehub.static_assets import asset_response
from carehub.tickets import service as tickets

resident = APIRouter(prefix="/chat", tags=["chat"])
agent = APIRouter(prefix="/api/v1", tags=["chat"])


def _chat(request: Request) -> ChatHub:
    chat: ChatHub = request.app.state.chat
    return chat


def _cors(chat: ChatHub, request: Request) -> dict[str, str]:
    origin = request.headers.get("origin")
    if origin and chat.origin_allowed(origin):
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {"Vary": "Origin"}


@resident.get("/widget.js", include_in_schema=False)
async def widget_js(request: Request) -> Response:
    return _asset(request, "widget.js")


@resident.get("/widget.css", include_in_schema=False)
async def widget_css(request: Request) -> Response:
    return _asset(request, "widget.css")


def _asset(request: Request, name: str) -> Response:
    asset = _chat(request).assets.get(name)
    if asset is None:
        raise Problem(404, f"The chat widget's {name} is not installed on this hub (templates/chat/{name}).")
    return asset_response(request, asset)


@resident.get("/config")
async def config(request: Request, lang: Annotated[str | None, Query(max_length=35)] = None) -> JSONResponse:
    """What the widget needs before it connects: its words in the resident's language, and whether anyone can
    answer now (business hours, agents online)."""
    chat = _chat(request)
    chosen = chat.catalogue.language(lang or request.headers.get("accept-language"))
    body: dict[str, Any] = {
        "lang": chosen,
        "languages": chat.catalogue.languages,
        "strings": dict(chat.catalogue.strings(chosen)),
        "max_chars": chat.settings.chat_max_chars,
        **await chat.availability(chosen),
    }
    return JSONResponse(body, headers={**_cors(chat, request), "Cache-Control": "no-store"})


@resident.get("/demo", include_in_schema=False)
async def demo(request: Request, rt: RuntimeDep, lang: Annotated[str | None, Query(max_length=35)] = None) -> Response:
    """A plain stand-in for the city's website with the widget's one script tag: what `carehub dev` shows."""
    chat = _chat(request)
    chosen = chat.catalogue.language(lang)
    page = rt.templates.env.get_template("chat/demo.html.j2").render(
        lang=chosen, city_name=rt.settings.city_name, widget_url=str(request.url_for("widget_js"))
    )
    return HTMLResponse(
        page,
        headers={"Content-Security-Policy": "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:"},
    )


async def chat_socket(state: State, scope: Scope, receive: Receive, send: Send) -> None:
    """/chat/ws (see carehub/chat/socket.py for why this is plain ASGI): origin and per-address checks, then the
    resident's session until the socket closes."""
    chat: ChatHub = state.chat
    rt: Runtime = state.runtime
    ws = ChatSocket(scope, receive, send)
    if not chat.origin_allowed(ws.headers.get("origin")):
        await ws.refuse(4403, "this site may not open the city's chat")
        return
    if not chat.sockets_per_ip.try_open(ws.ip):
        if await ws.accept():
            await ws.close(4429, "too many chats open from this address")
        return
    try:
        if not await ws.accept():
            return
        session = ChatSession(rt, chat, ws)
        chat.sessions.add(session)
        try:
            await session.run()
        finally:
            chat.sessions.discard(session)
    finally:
        chat.sockets_per_ip.close(ws.ip)


class TypingUpdate(BaseModel):
    on: bool


class ReadUpdate(BaseModel):
    seq: int = Field(ge=1)


async def _chat_of(rt: Runtime, ref: str, agent: CurrentAgent) -> chats.Conversation:
    """The ticket's (latest) chat conversation; 404 for another team's ticket, 409 for one that never was a chat."""
    ticket_id = tickets.ticket_id_from(rt.settings, ref)
    async with rt.transaction() as tx:
        await tickets.load(tx.conn, rt.settings, ticket_id, agent)
        conversation = await chats.latest_for_ticket(tx.conn, ticket_id)
    if conversation is None:
        raise Problem(409, f"{ref} is not a web chat ticket.")
    return conversation


@agent.post("/tickets/{ref}/typing", status_code=status.HTTP_204_NO_CONTENT)
async def agent_typing(ref: str, update: TypingUpdate, rt: RuntimeDep, agent: TicketAgent) -> Response:
    """Show (or stop showing) "an agent is typing" in the resident's chat."""
    conversation = await _chat_of(rt, ref, agent)
    rt.publish_soon([(service.topic(conversation.id), Event(text=frame("typing", on=update.on)))])
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@agent.post("/tickets/{ref}/read", status_code=status.HTTP_204_NO_CONTENT)
async def agent_read(ref: str, update: ReadUpdate, rt: RuntimeDep, agent: TicketAgent) -> Response:
    """Tell the resident their messages up to seq have been read."""
    conversation = await _chat_of(rt, ref, agent)
    async with rt.transaction() as tx:
        if await chats.set_read(tx.conn, conversation.id, by_resident=False, seq=update.seq):
            tx.staged_events.append((service.topic(conversation.id), Event(text=frame("read", seq=update.seq))))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
