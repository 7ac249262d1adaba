"""The webhooks admin API: admins only; the secret shown once (and on rotation); URLs that could reach the hub's
own network refused with a problem document; every change audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from carehub.models import AuditEvent, Role
from tests.conftest import Hub
from tests.support.alerts import staff

AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]
HOOK_URL = "https://hooks.example.org/carehub"  # never called: these tests send no events


def hook(url: str = HOOK_URL, **overrides: object) -> dict[str, object]:
    return {"url": url, "events": ["ticket.created"], **overrides}


async def test_an_admin_registers_an_endpoint_and_sees_its_secret_only_once(hub: Hub) -> None:
    admin = await staff(hub, Role.ADMIN)

    created = await hub.client.post(
        "/api/v1/webhooks",
        json=hook(events=["message.created", "ticket.created", "ticket.created"], description="City CRM"),
        headers=admin,
    )

    assert created.status_code == 201, created.text
    endpoint = created.json()
    assert endpoint["secret"].startswith("whsec_")
    assert endpoint["events"] == ["message.created", "ticket.created"]
    assert (endpoint["url"], endpoint["description"], endpoint["is_active"]) == (HOOK_URL, "City CRM", True)
    listed = (await hub.client.get("/api/v1/webhooks", headers=admin)).json()
    one = (await hub.client.get(f"/api/v1/webhooks/{endpoint['id']}", headers=admin)).json()
    assert [e["id"] for e in listed] == [endpoint["id"]]
    assert "secret" not in listed[0]
    assert "secret" not in one
    rotated = await hub.client.post(f"/api/v1/webhooks/{endpoint['id']}/rotate-secret", headers=admin)
    assert rotated.status_code == 200
    assert rotated.json()["secret"].startswith("whsec_")
    assert rotated.json()["secret"] != endpoint["secret"]
    changed = await hub.client.patch(
        f"/api/v1/webhooks/{endpoint['id']}", json={"events": ["alert.sent"], "description": "Ops"}, headers=admin
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["events"], changed.json()["description"]) == (["alert.sent"], "Ops")
    assert (await hub.client.delete(f"/api/v1/webhooks/{endpoint['id']}", headers=admin)).status_code == 204
    async with hub.runtime.engine.connect() as conn:
        audited = (await conn.execute(select(AUDIT.c.action).where(AUDIT.c.entity_type == "webhook"))).scalars()
        assert list(audited) == ["create", "rotate_secret", "update", "deactivate"]


@pytest.mark.parametrize("role", [Role.AGENT, Role.SUPERVISOR, Role.COMMUNICATIONS])
async def test_only_admins_manage_webhooks(hub: Hub, role: Role) -> None:
    headers = await staff(hub, role)

    listed = await hub.client.get("/api/v1/webhooks", headers=headers)
    created = await hub.client.post("/api/v1/webhooks", json=hook(), headers=headers)
    anonymous = await hub.client.get("/api/v1/webhooks")

    assert (listed.status_code, created.status_code, anonymous.status_code) == (403, 403, 401)
    assert created.headers["content-type"] == "application/problem+json"


PRIVATE_TARGETS = [
    ("https://127.0.0.1/hooks", "loopback"),
    ("https://127.0.0.1:8443/hooks", "loopback"),
    ("https://10.20.30.40/hooks", "private"),
    ("https://192.168.0.10/hooks", "private"),
    ("https://169.254.169.254/latest/meta-data/", "link-local"),
    ("https://[::1]/hooks", "loopback"),
    ("https://[fe80::1]/hooks", "link-local"),
    ("https://[::ffff:10.0.0.1]/hooks", "private"),
    ("https://100.64.0.1/hooks", "globally reachable"),
    ("https://localhost/hooks", "loopback"),
    ("https://localhost:9000/hooks", "loopback"),
]


async def test_private_loopback_and_link_local_targets_are_refused_at_registration(hub: Hub) -> None:
    admin = await staff(hub, Role.ADMIN)
    for url, says in PRIVATE_TARGETS:
        refused = await hub.client.post("/api/v1/webhooks", json=hook(url), headers=admin)

        assert refused.status_code == 422, url
        assert refused.headers["content-type"] == "application/problem+json"
        assert says in refused.json()["detail"], (url, refused.json()["detail"])
    assert (await hub.client.get("/api/v1/webhooks", headers=admin)).json() == []


async def test_a_private_target_is_accepted_when_an_admin_allows_it(hub: Hub) -> None:
    admin = await staff(hub, Role.ADMIN)

    created = await hub.client.post(
        "/api/v1/webhooks", json=hook("http://10.20.30.40:8080/hooks", allow_private=True), headers=admin
    )
    assert created.status_code == 201, created.text
    endpoint_id = created.json()["id"]
    switched_off = await hub.client.patch(
        f"/api/v1/webhooks/{endpoint_id}", json={"allow_private": False}, headers=admin
    )

    assert switched_off.status_code == 422
    assert "https" in switched_off.json()["detail"]
    still = (await hub.client.get(f"/api/v1/webhooks/{endpoint_id}", headers=admin)).json()
    assert still["allow_private"] is True


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (hook("http://hooks.example.org/carehub"), "https"),
        (hook("ftp://hooks.example.org/carehub"), "https"),
        (hook("https://user:secret@hooks.example.org/carehub"), "user name or password"),
        (hook("https:///nohost"), "host"),
        (hook("not a url"), "https"),
        (hook("https://hooks.example.org/" + "a" * 2000), "2000"),
        (hook(events=["ticket.deleted"]), "Unknown event(s): ticket.deleted"),
        (hook(events=[]), "events"),
    ],
)
async def test_bad_urls_and_events_are_refused_with_a_problem(hub: Hub, body: dict[str, object], says: str) -> None:
    admin = await staff(hub, Role.ADMIN)

    refused = await hub.client.post("/api/v1/webhooks", json=body, headers=admin)

    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert says in refused.json()["detail"]


async def test_an_unknown_endpoint_is_a_404(hub: Hub) -> None:
    admin = await staff(hub, Role.ADMIN)

    for method, path in [("GET", "/99"), ("PATCH", "/99"), ("DELETE", "/99"), ("POST", "/99/rotate-secret")]:
        answer = await hub.client.request(
            method, f"/api/v1/webhooks{path}", json={"is_active": True} if method == "PATCH" else None, headers=admin
        )
        assert answer.status_code == 404, (method, path)
