"""SLA timers through a real arq worker: the cron job is registered, runs on the worker against this run's Redis,
and its breach reaches a supervisor's live stream on the hub over Redis pub/sub."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from carehub.clock import utcnow
from carehub.models import Role, Ticket
from carehub.settings import Settings
from tests.support.chat import agent_stream
from tests.support.live import live_hub
from tests.support.mail import post_email, resident_mail
from tests.workers.conftest import arq_worker
from workers.settings import worker_settings
from workers.sla import sla_cron

TICKETS = Ticket.__table__  # type: ignore[attr-defined]


async def test_the_worker_cron_finds_a_breach_and_the_supervisor_hears_of_it(queue_settings: Settings) -> None:
    settings = queue_settings.model_copy(update={"business_hours": "mon-sun 00:00-24:00", "sla_interval_seconds": 5})
    crons = {job.name: job for job in worker_settings(settings)["cron_jobs"]}
    assert crons["sla_timers"].unique
    assert crons["sla_timers"].second == set(range(0, 60, 5))
    async with live_hub(settings) as live:
        supervisor = await live.agent_token(role=Role.SUPERVISOR)
        headers = {"Authorization": f"Bearer {supervisor}"}
        created = await live.client.post(
            "/api/v1/sla-policies",
            json={"priority": "normal", "first_response_minutes": 15, "resolution_minutes": 60},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        await post_email(live.client, resident_mail("jo@example.org", "Streetlight out", "Corner of Elm.\n"))
        async with live.runtime.transaction() as tx:  # it arrived 20 minutes ago and nobody has answered
            await tx.conn.execute(update(TICKETS).values(created_at=utcnow() - timedelta(minutes=20)))

        async with agent_stream(live.url, supervisor) as stream, arq_worker(settings):
            breach = await stream.wait_for("sla.breached", within=20, reference="PKR-000001")

        assert breach["target"] == "first_response"
        shown = (await live.client.get("/api/v1/tickets/PKR-000001", headers=headers)).json()
        assert shown["sla_breached_at"] is not None
        assert shown["first_response_due_at"] == breach["due_at"].replace("+00:00", "Z")


def test_intervals_of_a_minute_or_more_run_on_minutes() -> None:
    job = sla_cron(Settings(sla_interval_seconds=300))
    assert (job.second, job.minute) == (0, set(range(0, 60, 5)))
    assert sla_cron(Settings(sla_interval_seconds=3600)).minute == {0}
