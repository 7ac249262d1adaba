"""Console sign-in: argon2 passwords, session cookies with CSRF tokens, the guessing throttle, and disabling an
agent ending their sessions. Driven over the real app (httpx keeps the cookies as a browser would)."""

from __future__ import annotations

import pytest

from carehub.agents import passwords
from carehub.agents import repository as agents
from carehub.models import Role
from tests.conftest import Hub
from tests.support.console import PASSWORD, agent_with_password, browser, csrf_of, sign_in


async def test_signing_in_sets_a_locked_down_session_cookie_that_works_for_the_api(hub: Hub) -> None:
    await agent_with_password(hub, "ana@city.test")
    async with browser(hub) as ana:
        response = await sign_in(ana, "Ana@City.test")
        assert response.status_code == 303
        assert response.headers["location"] == "/console"
        cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("carehub_session="))
        attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
        assert {"httponly", "secure", "samesite", "path", "max-age"} <= attributes
        assert "samesite=lax" in cookie.lower()

        home = await ana.get("/console")
        assert home.status_code == 200
        assert "Signed in as agent" in home.text
        me = await ana.get("/api/v1/me")  # no Authorization header: the cookie is enough for reading
        assert me.json()["email"] == "ana@city.test"


async def test_a_wrong_password_or_unknown_address_gets_the_same_plain_refusal(hub: Hub) -> None:
    await agent_with_password(hub, "ana@city.test")
    async with browser(hub) as someone:
        wrong = await sign_in(someone, "ana@city.test", "not the password at all")
        unknown = await sign_in(someone, "nobody@city.test")
        for response in (wrong, unknown):
            assert response.status_code == 401
            assert "do not match an active account" in response.text
            assert "carehub_session" not in response.headers.get("set-cookie", "")
        assert (await someone.get("/console")).headers["location"] == "/console/login"


async def test_the_sign_in_form_refuses_a_post_without_its_own_csrf_token(hub: Hub) -> None:
    await agent_with_password(hub, "ana@city.test")
    async with browser(hub) as other_site:
        response = await other_site.post(
            "/console/login", data={"email": "ana@city.test", "password": PASSWORD, "csrf_token": "forged"}
        )
        assert response.status_code == 400
        assert "carehub_session" not in response.headers.get("set-cookie", "")


async def test_state_changing_requests_with_the_cookie_need_the_csrf_token(hub: Hub) -> None:
    await agent_with_password(hub, "ana@city.test")
    async with browser(hub) as ana:
        await sign_in(ana, "ana@city.test")
        home = await ana.get("/console")
        refused = await ana.post("/console/logout", data={})
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
        assert "CSRF" in refused.json()["detail"]
        api = await ana.patch("/api/v1/tickets/PKR-000001", json={"status": "open"})
        assert api.status_code == 403  # the API too, when the caller is a browser session

        signed_out = await ana.post("/console/logout", data={"csrf_token": csrf_of(home)})
        assert signed_out.status_code == 303
        assert (await ana.get("/api/v1/me")).status_code == 401


async def test_guessing_is_throttled_per_address_even_with_the_right_password_next(hub: Hub) -> None:
    await agent_with_password(hub, "ana@city.test")
    limit = hub.settings.login_max_failures_per_address
    async with browser(hub) as guesser:
        for i in range(limit):
            assert (await sign_in(guesser, "ana@city.test", f"guess number {i}")).status_code == 401
        throttled = await sign_in(guesser, "ana@city.test")
        assert throttled.status_code == 429
        assert int(throttled.headers["retry-after"]) == int(hub.settings.login_window_minutes * 60)
        assert "Too many failed attempts" in throttled.text


async def test_disabling_an_agent_ends_their_session_and_their_tokens(hub: Hub) -> None:
    token = await agent_with_password(hub, "ana@city.test")
    admin = await hub.agent_token(role=Role.ADMIN)
    async with browser(hub) as ana:
        await sign_in(ana, "ana@city.test")
        assert (await ana.get("/api/v1/me")).status_code == 200
        async with hub.runtime.transaction() as tx:
            row = await agents.agent_by_email(tx.conn, "ana@city.test")
        assert row is not None
        response = await hub.client.patch(
            f"/api/v1/agents/{row.id}", json={"is_active": False}, headers={"Authorization": f"Bearer {admin}"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["sessions_ended"] == 1

        assert (await ana.get("/api/v1/me")).status_code == 401
        assert (await ana.get("/console")).headers["location"] == "/console/login"
        by_token = await hub.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert by_token.status_code == 401
        assert (await sign_in(ana, "ana@city.test")).status_code == 401  # and cannot sign in again


async def test_only_admins_manage_agents(hub: Hub) -> None:
    supervisor = await hub.agent_token(role=Role.SUPERVISOR)
    response = await hub.client.patch(
        "/api/v1/agents/1", json={"is_active": False}, headers={"Authorization": f"Bearer {supervisor}"}
    )
    assert response.status_code == 403


async def test_a_short_password_is_refused() -> None:
    with pytest.raises(passwords.WeakPassword, match="12 characters"):
        await passwords.hash_password("short")
