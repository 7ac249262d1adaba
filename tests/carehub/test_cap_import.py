"""CAP import through the API: a CAP-CP alert for the city becomes a draft for staff (never a send), a repeat is
a duplicate, an Update replaces an unsent draft, a Cancel of a sent alert drafts an all-clear to its recipients,
and anything else is refused or ignored with a reason."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from carehub.models import AuditEvent, Role
from carehub.settings import Settings
from channels.base import ChannelKind
from tests.conftest import Hub, running_hub
from tests.fakes.twilio_api import FakeTwilioApi
from tests.support.alerts import phone, subscribe
from tests.support.alerts import staff as staff_headers
from tests.support.corpus import CORPUS
from tests.support.waiting import eventually

TESTDATA = CORPUS / "cap" / "google-cap-library" / "testdata"
CANADA_ID = "2.49.0.1.124.6bddbc91.2012"
CANADA_REF = f"cap@ec.gc.ca,{CANADA_ID},2012-05-02T23:21:04-00:00"
WINDSOR = "3537001"  # one of canada.cap's SGC geocodes
CAP_XML = {"Content-Type": "application/cap+xml"}
AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]


@pytest.fixture
async def windsor_hub(settings: Settings) -> AsyncIterator[Hub]:
    fast = {"cap_geocodes": [WINDSOR], "sms_mps": 500.0, "email_mps": 500.0, "alert_interval_seconds": 1}
    async with running_hub(settings.model_copy(update=fast)) as running:
        yield running


def canada() -> str:
    return (TESTDATA / "canada.cap").read_text(encoding="utf-8")


def follow_on(msg_type: str, identifier: str, headline: str = "severe thunderstorm watch") -> bytes:
    """canada.cap as a later message of the same sender that references it."""
    text = (
        canada().replace(CANADA_ID, identifier).replace("<msgType>Update</msgType>", f"<msgType>{msg_type}</msgType>")
    )
    start, end = text.index("<references>"), text.index("</references>")
    text = text[: start + len("<references>")] + CANADA_REF + text[end:]
    return text.replace("<headline>severe thunderstorm watch</headline>", f"<headline>{headline}</headline>").encode()


async def staff(hub: Hub, role: Role = Role.COMMUNICATIONS) -> dict[str, str]:
    return {**await staff_headers(hub, role), **CAP_XML}


async def import_cap(hub: Hub, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
    answer = await hub.client.post("/api/v1/alerts/cap", content=body, headers=headers)
    return answer.status_code, answer.json()


async def alert_ids(hub: Hub, headers: dict[str, str]) -> list[int]:
    return [a["id"] for a in (await hub.client.get("/api/v1/alerts", headers=headers)).json()]


async def test_cap_alert_for_the_city_becomes_a_bilingual_draft_and_sends_nothing(
    windsor_hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    headers = await staff(windsor_hub)
    await subscribe(windsor_hub.runtime, ChannelKind.SMS, [phone(1)], "emergencies")
    code, body = await import_cap(windsor_hub, headers, canada().encode())
    assert code == 201, body
    assert body["outcome"] == "drafted"
    alert = body["alert"]
    assert alert["status"] == "draft"
    assert alert["kind"] == "alert"
    assert alert["parent_id"] is None
    assert alert["emergency"] is False  # Minor, Past
    assert alert["channels"] == ["sms", "email"]
    assert set(alert["content"]) == {"en", "fr"}
    assert alert["content"]["en"]["email_subject"] == "severe thunderstorm watch"
    assert alert["content"]["fr"]["email_subject"] == "veille d'orages violents"
    assert alert["title"] == "severe thunderstorm watch"
    async with windsor_hub.runtime.transaction() as tx:
        audited = (await tx.conn.execute(select(AUDIT).where(AUDIT.c.action == "import_cap"))).one()
    assert audited.detail["identifier"] == CANADA_ID
    assert audited.detail["outcome"] == "drafted"
    assert fake_twilio.accepted == []


async def test_importing_the_same_cap_message_twice_stores_one_alert(windsor_hub: Hub) -> None:
    headers = await staff(windsor_hub)
    first_code, first = await import_cap(windsor_hub, headers, canada().encode())
    again_code, again = await import_cap(windsor_hub, headers, canada().encode())
    assert (first_code, again_code) == (201, 200)
    assert again["outcome"] == "duplicate"
    assert again["alert"]["id"] == first["alert"]["id"]
    assert await alert_ids(windsor_hub, headers) == [first["alert"]["id"]]


async def test_cap_alert_elsewhere_is_not_for_the_city(hub: Hub) -> None:
    headers = await staff(hub)  # default geocodes: Pickering only
    code, body = await import_cap(hub, headers, canada().encode())
    assert (code, body["outcome"], body["alert"]) == (200, "not_for_city", None)
    assert await alert_ids(hub, headers) == []


async def test_cap_update_of_an_unsent_draft_replaces_it(windsor_hub: Hub) -> None:
    headers = await staff(windsor_hub)
    _, first = await import_cap(windsor_hub, headers, canada().encode())
    code, body = await import_cap(
        windsor_hub, headers, follow_on("Update", "2.49.0.1.124.update.2012", "severe thunderstorm warning")
    )
    assert code == 201, body
    assert body["outcome"] == "drafted"
    assert body["cancelled"] == [first["alert"]["id"]]
    assert body["alert"]["status"] == "draft"
    assert body["alert"]["title"] == "severe thunderstorm warning"
    # A new alert to the topic, not a follow-up: the replaced draft reached nobody.
    assert body["alert"]["parent_id"] is None
    replaced = (await windsor_hub.client.get(f"/api/v1/alerts/{first['alert']['id']}", headers=headers)).json()
    assert replaced["status"] == "cancelled"


async def test_cap_cancel_of_an_unsent_draft_cancels_it(windsor_hub: Hub) -> None:
    headers = await staff(windsor_hub)
    _, first = await import_cap(windsor_hub, headers, canada().encode())
    code, body = await import_cap(windsor_hub, headers, follow_on("Cancel", "2.49.0.1.124.cancel.2012"))
    assert (code, body["outcome"], body["cancelled"]) == (200, "cancelled", [first["alert"]["id"]])
    again_code, again = await import_cap(windsor_hub, headers, follow_on("Cancel", "2.49.0.1.124.cancel2.2012"))
    assert (again_code, again["outcome"]) == (200, "nothing_to_cancel")


async def imported_and_sent(hub: Hub, headers: dict[str, str]) -> int:
    _, first = await import_cap(hub, headers, canada().encode())
    first_id = int(first["alert"]["id"])
    sent = await hub.client.post(f"/api/v1/alerts/{first_id}/send", headers=headers)
    assert sent.status_code == 200, sent.text

    async def is_sent() -> bool:
        alert = (await hub.client.get(f"/api/v1/alerts/{first_id}", headers=headers)).json()
        return bool(alert["status"] == "sent")

    await eventually(is_sent, within=20, what="the first alert to be sent")
    return first_id


async def test_cap_update_of_a_sent_alert_drafts_an_update_to_its_recipients(
    windsor_hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    headers = await staff(windsor_hub)
    await subscribe(windsor_hub.runtime, ChannelKind.SMS, [phone(1)], "emergencies")
    first_id = await imported_and_sent(windsor_hub, headers)
    code, body = await import_cap(
        windsor_hub, headers, follow_on("Update", "2.49.0.1.124.update.2012", "severe thunderstorm warning")
    )
    assert code == 201, body
    assert (body["alert"]["kind"], body["alert"]["parent_id"], body["alert"]["status"]) == ("update", first_id, "draft")
    assert body["alert"]["title"] == "Update: severe thunderstorm warning"
    assert body["cancelled"] == []
    assert len(fake_twilio.accepted) == 1


async def test_cap_cancel_of_a_sent_alert_drafts_an_all_clear_to_its_recipients(
    windsor_hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    headers = await staff(windsor_hub)
    await subscribe(windsor_hub.runtime, ChannelKind.SMS, [phone(1)], "emergencies")
    first_id = await imported_and_sent(windsor_hub, headers)
    code, body = await import_cap(windsor_hub, headers, follow_on("Cancel", "2.49.0.1.124.cancel.2012"))
    assert code == 201, body
    assert body["outcome"] == "drafted"
    assert body["cancelled"] == []
    assert body["alert"]["kind"] == "all_clear"
    assert body["alert"]["parent_id"] == first_id
    assert body["alert"]["status"] == "draft"
    assert len(fake_twilio.accepted) == 1  # the first alert only: the all-clear waits for staff

    all_clear = body["alert"]["id"]
    out = await windsor_hub.client.post(f"/api/v1/alerts/{all_clear}/send", headers=headers)
    assert out.status_code == 200, out.text
    await eventually(lambda: _count(fake_twilio, 2), within=20, what="the all-clear to reach the first's recipient")
    assert fake_twilio.accepted[1].to == phone(1)


async def _count(fake: FakeTwilioApi, n: int) -> bool:
    return len(fake.accepted) >= n


async def test_cap_with_entities_is_refused_with_the_reason(windsor_hub: Hub) -> None:
    code, body = await import_cap(windsor_hub, await staff(windsor_hub), (TESTDATA / "xee.cap").read_bytes())
    assert code == 422
    assert "DOCTYPE" in body["detail"]


async def test_cap_import_needs_an_xml_content_type(windsor_hub: Hub) -> None:
    headers = {**await staff(windsor_hub), "Content-Type": "application/json"}
    answer = await windsor_hub.client.post("/api/v1/alerts/cap", content=canada().encode(), headers=headers)
    assert answer.status_code == 415
    assert answer.headers["content-type"].startswith("application/problem+json")


async def test_cap_over_the_size_limit_is_refused(windsor_hub: Hub) -> None:
    padded = canada().replace("<note/>", "<note>" + "x" * 1_100_000 + "</note>").encode()
    code, body = await import_cap(windsor_hub, await staff(windsor_hub), padded)
    assert code == 413, body


async def test_cap_larger_than_other_api_bodies_is_still_taken(windsor_hub: Hub) -> None:
    """CAP-CP messages with many area polygons exceed the API's usual 64 KiB body limit; up to 1 MB is read."""
    padded = canada().replace("<note/>", "<note>" + "x" * 200_000 + "</note>").encode()
    code, body = await import_cap(windsor_hub, await staff(windsor_hub), padded)
    assert code == 201, body
    assert body["outcome"] == "drafted"


async def test_cap_import_is_for_communications_staff(windsor_hub: Hub) -> None:
    code, _ = await import_cap(windsor_hub, await staff(windsor_hub, Role.AGENT), canada().encode())
    assert code == 403


async def test_cap_test_message_is_ignored(windsor_hub: Hub) -> None:
    headers = await staff(windsor_hub)
    test = canada().replace("<status>Actual</status>", "<status>Test</status>").encode()
    code, body = await import_cap(windsor_hub, headers, test)
    assert (code, body["outcome"]) == (200, "ignored")
    assert "Test" in body["detail"]
    assert await alert_ids(windsor_hub, headers) == []
