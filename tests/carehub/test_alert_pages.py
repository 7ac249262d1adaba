"""The console's alert pages over the real app (no browser): who may open them, composing and sending through the
form to the fake Twilio API, a double submit making one alert, the preview fragment, cancelling with its confirm
step, and the CSV download with the session cookie. tests/browser/test_alert_pages.py drives them in Chromium."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from carehub.alerts import repository as alerts
from carehub.models import Role
from channels.base import ChannelKind
from tests.conftest import Hub, running_hub
from tests.fakes.twilio_api import FakeTwilioApi
from tests.support.alerts import phone, subscribe
from tests.support.console import agent_with_password, browser, csrf_of, sign_in
from tests.support.waiting import eventually

FAST = {"sms_mps": 500.0, "email_mps": 500.0, "alert_interval_seconds": 1}
KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')
ALERT_URL = re.compile(r"^/console/alerts/(\d+)\?done=")


@pytest.fixture
async def hub(settings: Any) -> AsyncIterator[Hub]:
    async with running_hub(settings.model_copy(update=FAST)) as running:
        yield running


async def composer_form(client: httpx.AsyncClient, **fields: str) -> dict[str, str]:
    page = await client.get("/console/alerts/new")
    assert page.status_code == 200, page.text
    key = KEY.search(page.text)
    assert key is not None
    return {
        "csrf_token": csrf_of(page),
        "idempotency_key": key.group(1),
        "title": "Water main break",
        "audience": "water",
        "channels": "sms",
        "when": "now",
        "en_sms": "Water main break on Kingston Rd. Boil water before you drink it.",
        **fields,
    }


def alert_id_of(response: httpx.Response) -> int:
    assert response.status_code == 303, response.text
    found = ALERT_URL.match(response.headers["location"])
    assert found is not None, response.headers["location"]
    return int(found.group(1))


async def alert_count(hub: Hub) -> int:
    async with hub.runtime.transaction() as tx:
        return int((await tx.conn.execute(select(func.count()).select_from(alerts.ALERTS))).scalar_one())


async def test_who_may_open_the_alert_pages(hub: Hub) -> None:
    await agent_with_password(hub, "ana@city.test")
    await agent_with_password(hub, "sue@city.test", role=Role.SUPERVISOR)
    await agent_with_password(hub, "cam@city.test", role=Role.COMMUNICATIONS)
    async with browser(hub) as nobody:
        response = await nobody.get("/console/alerts")
        assert (response.status_code, response.headers.get("location")) == (303, "/console/login")
    async with browser(hub) as cam:
        await sign_in(cam, "cam@city.test")
        form = await composer_form(cam)
        alert_id = alert_id_of(await cam.post("/console/alerts", data={**form, "action": "draft"}))
    async with browser(hub) as ana:
        await sign_in(ana, "ana@city.test")
        for path in ("/console/alerts", "/console/alerts/new", f"/console/alerts/{alert_id}"):
            refused = await ana.get(path)
            assert refused.status_code == 403, path
            assert "Not allowed" in refused.text
        assert 'href="/console/alerts"' not in (await ana.get("/console/settings")).text  # no nav link either
    async with browser(hub) as sue:
        await sign_in(sue, "sue@city.test")
        listed = await sue.get("/console/alerts")
        assert listed.status_code == 200
        assert "Water main break" in listed.text
        assert "New alert" not in listed.text
        page = await sue.get(f"/console/alerts/{alert_id}")
        assert page.status_code == 200
        assert "Delivery report" in page.text
        assert f"/console/alerts/{alert_id}/send" not in page.text  # read-only: no action forms
        assert (await sue.get("/console/alerts/new")).status_code == 403
        csrf = csrf_of(page)
        assert (await sue.post(f"/console/alerts/{alert_id}/send", data={"csrf_token": csrf})).status_code == 403
        assert (await sue.get(f"/console/alerts/{alert_id}/deliveries.csv")).status_code == 403


async def test_an_alert_composed_in_the_console_reaches_subscribers_once(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    phones = [phone(i) for i in range(3)]
    await subscribe(hub.runtime, ChannelKind.SMS, phones)
    await agent_with_password(hub, "cam@city.test", role=Role.COMMUNICATIONS)
    async with browser(hub) as cam:
        await sign_in(cam, "cam@city.test")
        form = {**await composer_form(cam), "action": "send"}
        first = await cam.post("/console/alerts", data=form)
        again = await cam.post("/console/alerts", data=form)  # a double click
        alert_id = alert_id_of(first)
        assert alert_id_of(again) == alert_id
        assert await alert_count(hub) == 1

        sent = await fake_twilio.wait_for(3)
        assert sorted(m.to for m in sent) == sorted(phones)
        assert sent[0].body == (
            "City of Pickering: Water main break on Kingston Rd. Boil water before you drink it. Reply STOP to end."
        )

        async def finished() -> str | None:
            report = await cam.get(f"/console/alerts/{alert_id}/report")
            return report.text if report.status_code == 286 else None  # htmx: stop polling, it is final

        final = await eventually(finished, within=15, what="the report to reach 'sent'")
        assert "status-sent" in final
        assert 'hx-swap-oob="innerHTML"' in final  # announced to screen readers
        page = await cam.get(f"/console/alerts/{alert_id}")
        assert phones[0] in page.text  # per-recipient detail for communications staff
        assert 'hx-trigger="every 2s"' not in page.text  # final: no polling

        listed = await cam.get("/console/alerts")
        assert "3 of 3 (100%)" in listed.text


async def test_invalid_compositions_show_an_error_summary_and_keep_the_text(hub: Hub) -> None:
    await agent_with_password(hub, "cam@city.test", role=Role.COMMUNICATIONS)
    async with browser(hub) as cam:
        await sign_in(cam, "cam@city.test")
        form = await composer_form(cam, title="", audience="", channels="email")
        refused = await cam.post("/console/alerts", data={**form, "action": "send"})
        assert refused.status_code == 422
        assert 'class="error-summary"' in refused.text
        assert 'href="#title"' in refused.text
        assert 'href="#audience"' in refused.text
        assert "Boil water before you drink it." in refused.text  # kept

        no_email = await cam.post("/console/alerts", data={**form, "title": "T", "audience": "water"})
        assert no_email.status_code == 422
        assert 'href="#en-email-subject"' in no_email.text
        assert "email subject and body in &#39;en&#39; are both needed" in no_email.text
        assert await alert_count(hub) == 0


async def test_the_preview_fragment_shows_ucs2_and_the_character_that_forced_it(hub: Hub) -> None:
    await subscribe(hub.runtime, ChannelKind.SMS, [phone(1)], language="fr")
    await agent_with_password(hub, "cam@city.test", role=Role.COMMUNICATIONS)
    async with browser(hub) as cam:
        await sign_in(cam, "cam@city.test")
        form = await composer_form(cam, fr_sms="La conduite d'eau est brisée; faites bouillir l'eau, même filtrée.")
        fragment = await cam.post("/console/alerts/preview", data=form, headers={"HX-Request": "true"})
        assert fragment.status_code == 200
        assert "<html" not in fragment.text
        french = fragment.text.split('id="preview-fr"')[1]
        assert "UCS-2, because of “ê”" in french
        assert "GSM-7" in fragment.text.split('id="preview-fr"')[0]  # the English text stays GSM-7
        assert "1 recipient" in fragment.text
        assert "Not needed" in fragment.text  # a topic alert, not an emergency: no second approval

        whole = await cam.post("/console/alerts", data={**form, "action": "preview"})  # without script
        assert whole.status_code == 200
        assert "<html" in whole.text
        assert "UCS-2, because of “ê”" in whole.text
        assert await alert_count(hub) == 0


async def test_cancel_asks_first_then_stops_the_alert(hub: Hub) -> None:
    await agent_with_password(hub, "cam@city.test", role=Role.COMMUNICATIONS)
    async with browser(hub) as cam:
        await sign_in(cam, "cam@city.test")
        form = await composer_form(cam)
        alert_id = alert_id_of(await cam.post("/console/alerts", data={**form, "action": "draft"}))
        page = await cam.get(f"/console/alerts/{alert_id}")
        csrf = csrf_of(page)

        asked = await cam.post(f"/console/alerts/{alert_id}/cancel", data={"csrf_token": csrf})
        assert asked.status_code == 200
        assert "Cancel this alert?" in asked.text
        async with hub.runtime.transaction() as tx:
            still = await alerts.get(tx.conn, alert_id)
        assert still is not None
        assert still.status == "draft"

        done = await cam.post(f"/console/alerts/{alert_id}/cancel", data={"csrf_token": csrf, "confirm": "yes"})
        assert done.headers["location"] == f"/console/alerts/{alert_id}?done=cancel"
        after = await cam.get(done.headers["location"])
        assert "status-cancelled" in after.text
        assert "Cancelled:" in after.text

        forged = await cam.post(f"/console/alerts/{alert_id}/cancel", data={"confirm": "yes"})
        assert forged.status_code == 403


async def test_the_author_cannot_approve_an_emergency_alert_and_a_colleague_can(
    hub: Hub, fake_twilio: FakeTwilioApi
) -> None:
    await subscribe(hub.runtime, ChannelKind.SMS, [phone(7)])
    await agent_with_password(hub, "cam@city.test", role=Role.COMMUNICATIONS)
    await agent_with_password(hub, "ada@city.test", role=Role.ADMIN)
    async with browser(hub) as cam:
        await sign_in(cam, "cam@city.test")
        form = await composer_form(cam, emergency="yes")
        alert_id = alert_id_of(await cam.post("/console/alerts", data={**form, "action": "send"}))
        page = await cam.get(f"/console/alerts/{alert_id}?done=awaiting_approval")
        assert "Sent for approval" in page.text
        assert "disabled" in page.text.split(f"/console/alerts/{alert_id}/approve")[1].split("</form>")[0]
        assert "You wrote this alert" in page.text
    async with browser(hub) as ada:
        await sign_in(ada, "ada@city.test")
        csrf = csrf_of(await ada.get(f"/console/alerts/{alert_id}"))
        approved = await ada.post(f"/console/alerts/{alert_id}/approve", data={"csrf_token": csrf})
        assert approved.headers["location"] == f"/console/alerts/{alert_id}?done=approve"
        [text] = await fake_twilio.wait_for(1)
        assert text.to == phone(7)


async def test_the_deliveries_csv_downloads_with_the_session_cookie(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    await subscribe(hub.runtime, ChannelKind.SMS, [phone(1), phone(2)])
    await agent_with_password(hub, "cam@city.test", role=Role.COMMUNICATIONS)
    async with browser(hub) as cam:
        await sign_in(cam, "cam@city.test")
        form = await composer_form(cam)
        alert_id = alert_id_of(await cam.post("/console/alerts", data={**form, "action": "send"}))
        await fake_twilio.wait_for(2)
        download = await cam.get(f"/console/alerts/{alert_id}/deliveries.csv")
        assert download.status_code == 200
        assert download.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(download.text)))
        assert sorted(r["to_address"] for r in rows) == [phone(1), phone(2)]


async def test_an_update_goes_to_everyone_the_alert_reached(hub: Hub, fake_twilio: FakeTwilioApi) -> None:
    await subscribe(hub.runtime, ChannelKind.SMS, [phone(1)])
    await agent_with_password(hub, "cam@city.test", role=Role.COMMUNICATIONS)
    async with browser(hub) as cam:
        await sign_in(cam, "cam@city.test")
        form = await composer_form(cam)
        alert_id = alert_id_of(await cam.post("/console/alerts", data={**form, "action": "send"}))
        await fake_twilio.wait_for(1)

        async def reached() -> bool:
            page = await cam.get(f"/console/alerts/{alert_id}/report")
            return page.status_code == 286

        await eventually(reached, within=15, what="the alert to be sent")
        page = await cam.get(f"/console/alerts/{alert_id}")
        key = KEY.search(page.text)
        assert key is not None
        update = {"csrf_token": csrf_of(page), "idempotency_key": key.group(1), "kind": "all_clear",
                  "en_sms": "The water is safe to drink again."}  # fmt: skip
        followed = await cam.post(f"/console/alerts/{alert_id}/updates", data=update)
        child_id = alert_id_of(followed)
        assert child_id != alert_id
        sent = await fake_twilio.wait_for(2)
        assert sent[1].body == "City of Pickering: All clear: The water is safe to drink again. Reply STOP to end."
        child = await cam.get(f"/console/alerts/{child_id}")
        assert "All clear: " in child.text
        assert f'href="/console/alerts/{alert_id}"' in child.text


async def test_communications_staff_land_on_alerts_and_can_start_from_a_template(hub: Hub) -> None:
    await agent_with_password(hub, "cam@city.test", role=Role.COMMUNICATIONS)
    async with browser(hub) as cam:
        landed = await sign_in(cam, "cam@city.test")
        assert landed.headers.get("location") == "/console/alerts"  # they work no tickets: no queue to land on
        queue = await cam.get("/console")
        assert (queue.status_code, queue.headers.get("location")) == (303, "/console/alerts")
        composer = await cam.get("/console/alerts/new")
        assert "Start from a template" in composer.text
        template_id = re.search(r'<option value="(\d+)">Snow route in effect</option>', composer.text)
        assert template_id is not None
        filled = await cam.get(f"/console/alerts/new?template={template_id.group(1)}")

    assert 'value="Snow route in effect"' in filled.text
    assert "Snow route in effect from [time]. Do not park on snow routes" in filled.text
    assert "Replace the template&#39;s bracketed parts before you send: [time]" in filled.text
