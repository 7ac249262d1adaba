"""Canned responses: supervisors write them per language and team, agents fill one in for a ticket (in the
resident's language when it exists), placeholders are checked when written and filled by plain substitution."""

from __future__ import annotations

from sqlalchemy import update

from carehub.canned.render import render
from carehub.models import Contact, Role
from tests.conftest import Hub
from tests.support.mail import post_email, resident_mail

CONTACTS = Contact.__table__  # type: ignore[attr-defined]
POTHOLE_EN = "Hello {contact_name}, thank you. A crew will fill it this week. Reference {reference}. {agent_name}"
POTHOLE_FR = "Bonjour {contact_name}, merci. Une équipe le réparera cette semaine. Référence {reference}. {agent_name}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def create(hub: Hub, token: str, **fields: object) -> dict[str, object]:
    response = await hub.client.post("/api/v1/canned-responses", json=fields, headers=bearer(token))
    assert response.status_code == 201, response.text
    result: dict[str, object] = response.json()
    return result


async def test_an_agent_fills_in_the_residents_language_version_for_a_ticket(hub: Hub) -> None:
    supervisor = await hub.agent_token(role=Role.SUPERVISOR, email="sup@city.test")
    agent = await hub.agent_token(email="ana@city.test")
    english = await create(hub, supervisor, title="Pothole", language="en", body=POTHOLE_EN)
    await create(hub, supervisor, title="Pothole", language="fr", body=POTHOLE_FR)
    await post_email(hub.client, resident_mail("jo@example.org", "Nid-de-poule", "Rue Brock.\n", name="Jo Tremblay"))
    async with hub.runtime.transaction() as tx:
        await tx.conn.execute(update(CONTACTS).values(language="fr", display_name="Jo"))

    listed = (await hub.client.get("/api/v1/canned-responses", headers=bearer(agent))).json()
    assert [(c["title"], c["language"]) for c in listed] == [("Pothole", "en"), ("Pothole", "fr")]

    filled = await hub.client.get(f"/api/v1/tickets/PKR-000001/canned/{english['id']}", headers=bearer(agent))
    assert filled.status_code == 200, filled.text
    assert (
        filled.json()["language"] == "fr"
    )  # the resident writes French: the French version, though English was picked
    # The agent's name is "agent" (what the test helper names an agent of that role).
    assert (
        filled.json()["body"] == "Bonjour Jo, merci. Une équipe le réparera cette semaine. Référence PKR-000001. agent"
    )


async def test_writing_canned_responses_is_for_supervisors_and_checks_placeholders(hub: Hub) -> None:
    supervisor = await hub.agent_token(role=Role.SUPERVISOR, email="sup@city.test")
    agent = await hub.agent_token(email="ana@city.test")
    refused = await hub.client.post(
        "/api/v1/canned-responses", json={"title": "Hi", "body": "Hello"}, headers=bearer(agent)
    )
    assert refused.status_code == 403
    typo = await hub.client.post(
        "/api/v1/canned-responses", json={"title": "Hi", "body": "Hello {contact_nme}"}, headers=bearer(supervisor)
    )
    assert typo.status_code == 422
    assert "contact_nme" in typo.json()["detail"]
    await create(hub, supervisor, title="Hi", body="Hello {contact_name}")
    again = await hub.client.post(
        "/api/v1/canned-responses", json={"title": "Hi", "body": "Hello again"}, headers=bearer(supervisor)
    )
    assert again.status_code == 409


async def test_a_teams_canned_response_is_only_for_that_team(hub: Hub) -> None:
    supervisor = await hub.agent_token(role=Role.SUPERVISOR, email="sup@city.test")
    agent = await hub.agent_token(email="ana@city.test")  # in no team
    parks = await create(hub, supervisor, title="Park permit", team="Parks", body="See {city_name} permits.")
    assert parks["team"] == "parks"
    assert (await hub.client.get("/api/v1/canned-responses", headers=bearer(agent))).json() == []
    await post_email(hub.client, resident_mail("jo@example.org", "Permit", "Picnic.\n"))
    hidden = await hub.client.get(f"/api/v1/tickets/PKR-000001/canned/{parks['id']}", headers=bearer(agent))
    assert hidden.status_code == 404


def test_placeholders_are_filled_by_plain_substitution_and_a_missing_name_leaves_no_gap() -> None:
    values = {"contact_name": None, "reference": "PKR-000007", "agent_name": "Ana", "city_name": "Pickering"}
    assert render("Hello {contact_name}, about {reference}.", values) == "Hello, about PKR-000007."
    # Anything but a known placeholder stays as it is: no format specs, no attribute access.
    assert render("{reference.__class__} {reference:>20}", values) == "{reference.__class__} {reference:>20}"
