"""The console's sign-in and sign-out (the pages themselves: queue_page, ticket_page, settings_page, supervisor).

Signing in sets an HttpOnly, SameSite=Lax session cookie (Secure when the hub is served over https); the sign-in
form itself carries a CSRF token tied to a short-lived cookie, so no other site can sign a browser in."""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse

from carehub import audit
from carehub.agents import passwords, sessions
from carehub.agents import repository as agents
from carehub.agents.auth import SESSION_COOKIE, RuntimeDep, current_agent
from carehub.clock import utcnow
from carehub.console.views import home_for, render, signed_in
from carehub.models import Role
from carehub.runtime import Runtime

router = APIRouter(prefix="/console", include_in_schema=False)

LOGIN_CSRF_COOKIE = "carehub_login_csrf"
BAD_SIGN_IN = "That email and password do not match an active account."


@router.get("/login")
async def login_page(request: Request, rt: RuntimeDep) -> Response:
    agent = await signed_in(request, rt)
    if agent is not None:
        return RedirectResponse(home_for(agent.role), status_code=status.HTTP_303_SEE_OTHER)
    return _login_form(rt, email="")


def _login_form(rt: Runtime, *, email: str, error: str | None = None, status_code: int = 200) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    response = render(
        rt,
        "login.html.j2",
        status_code=status_code,
        title="Sign in",
        agent=None,
        csrf_token=token,
        email=email,
        error=error,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        secure=rt.settings.secure_cookies,
        samesite="strict",
        path="/console/login",
    )
    return response


@router.post("/login")
async def login(
    request: Request,
    rt: RuntimeDep,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=100)],
) -> Response:
    settings = rt.settings
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, csrf_token):
        return _login_form(rt, email=email, error="The sign-in form expired. Please try again.", status_code=400)
    email = email.strip().lower()
    ip = request.client.host if request.client else "unknown"
    now = utcnow()
    async with rt.transaction() as tx:
        by_email, by_ip = await sessions.recent_failures(
            tx.conn, email=email, ip=ip, since=now - timedelta(minutes=settings.login_window_minutes)
        )
        row = await agents.agent_by_email(tx.conn, email)
    if by_email >= settings.login_max_failures_per_address or by_ip >= settings.login_max_failures_per_client:
        minutes = round(settings.login_window_minutes)
        response = _login_form(
            rt,
            email=email,
            error=f"Too many failed attempts. Wait {minutes} minutes, or ask an administrator to reset your password.",
            status_code=429,
        )
        response.headers["Retry-After"] = str(int(settings.login_window_minutes * 60))
        return response
    ok = await passwords.verify(None if row is None else row.password_hash, password)
    async with rt.transaction() as tx:
        if not ok or row is None or not row.is_active:
            await sessions.record_failure(tx.conn, email=email, ip=ip, now=now)
            await audit.record(
                tx.conn,
                actor=f"client:{ip}",
                action="sign_in_failed",
                entity_type="agent",
                entity_id=0 if row is None else row.id,
                now=now,
            )
            failed = True
        else:
            await sessions.forget_failures(tx.conn, email)
            token, _ = await sessions.start(
                tx.conn,
                row.id,
                ttl=timedelta(hours=settings.session_idle_hours),
                now=now,
                ip=ip,
                user_agent=request.headers.get("user-agent"),
            )
            await audit.by_agent(tx.conn, row.id, "sign_in", "agent", row.id, now)
            failed = False
    if failed or row is None:
        return _login_form(rt, email=email, error=BAD_SIGN_IN, status_code=401)
    signed_in = RedirectResponse(home_for(Role(row.role)), status_code=status.HTTP_303_SEE_OTHER)
    signed_in.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(settings.session_idle_hours * 3600),
        httponly=True,
        secure=settings.secure_cookies,
        samesite="lax",
        path="/",
    )
    signed_in.delete_cookie(LOGIN_CSRF_COOKIE, path="/console/login")
    return signed_in


@router.post("/logout")
async def logout(request: Request, rt: RuntimeDep) -> Response:
    agent = await current_agent(request, rt)  # a session, and the page's CSRF token, or 401/403
    if agent.session_id is not None:
        async with rt.transaction() as tx:
            await sessions.end(tx.conn, agent.session_id, utcnow())
    response = RedirectResponse("/console/login", status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
