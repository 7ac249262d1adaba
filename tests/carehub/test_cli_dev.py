"""README command 1 for real: `carehub dev` on a fresh directory starts the hub, and a signed SMS sent with
`carehub simulate-sms` becomes a ticket the printed API token can read."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
from pathlib import Path

import aiosmtplib
import httpx

from carehub.settings import Settings
from tests.conftest import running_hub
from tests.support.mail import resident_mail
from tests.support.processes import CAREHUB_BIN, carehub_process, settings_env
from tests.support.waiting import eventually


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_dev_command_serves_a_working_hub_with_embedded_defaults(tmp_path: Path) -> None:
    port, smtp_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    # Only the public URL differs from the defaults (it must match the port Twilio's signature is computed for),
    # and the SMTP port, so a developer's own carehub dev on 2525 does not collide with this test.
    env = {
        k: v
        for k, v in settings_env(Settings(public_url=base, smtp_inbound_port=smtp_port)).items()
        if not k.startswith("CAREHUB_") or k in ("CAREHUB_PUBLIC_URL", "CAREHUB_SMTP_INBOUND_PORT")
    }
    log = tmp_path / "dev.log"
    with carehub_process("dev", "--port", str(port), env=env, cwd=tmp_path, log=log):
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:

            async def healthy() -> bool:
                try:
                    return (await client.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(healthy, within=30, what="carehub dev to answer /healthz")
            sent = await asyncio.to_thread(
                subprocess.run,
                [
                    str(CAREHUB_BIN),
                    "simulate-sms",
                    "--from",
                    "905-555-0199",
                    "--body",
                    "Missed garbage pickup on Whites Rd",
                ],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert sent.stdout.startswith("200 "), sent.stdout + sent.stderr

            token_match = re.search(r"API token \(shown once\): (chub_\S+)", log.read_text())
            assert token_match, log.read_text()
            page = (
                await client.get("/api/v1/tickets", headers={"Authorization": f"Bearer {token_match.group(1)}"})
            ).json()

            # The printed password signs in to the console, whose queue shows the text.
            password = re.search(r"password \(shown once\): (\S+)\)", log.read_text())
            assert password, log.read_text()
            login = await client.get("/console/login")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
            assert csrf
            signed_in = await client.post(
                "/console/login",
                data={"email": "admin@localhost", "password": password.group(1), "csrf_token": csrf.group(1)},
            )
            assert signed_in.headers.get("location") == "/console", signed_in.text
            assert "Missed garbage pickup on Whites Rd" in (await client.get("/console")).text

            async def ack_sent() -> bool:
                return "SMS not sent (console provider)" in log.read_text()

            await eventually(ack_sent, what="the console SMS provider to log the acknowledgement")

            # Email reaches the same process on its SMTP listener; the acknowledgement goes to the console.
            mail = resident_mail("resident@mail.example", "Dog off leash in the park", "Every morning at 8.\n")
            async with aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_port, start_tls=False) as smtp:
                await smtp.sendmail("resident@mail.example", ["care@pickering.example"], mail)
            email_ticket = (
                await client.get(
                    "/api/v1/tickets/PKR-000002", headers={"Authorization": f"Bearer {token_match.group(1)}"}
                )
            ).json()

            async def email_ack_logged() -> bool:
                return "Email not sent (console provider)" in log.read_text()

            await eventually(email_ack_logged, what="the console email provider to log the acknowledgement")

            # An Open311 app lists the example services and posts with the printed key.
            open311_key = re.search(r"api_key to post requests \(shown once\): (o311_\S+)", log.read_text())
            assert open311_key, log.read_text()
            services = (await client.get("/open311/v2/services.json")).json()
            posted = await client.post(
                "/open311/v2/requests.json",
                data={
                    "api_key": open311_key.group(1),
                    "service_code": "STREETLIGHT",
                    "address_string": "1 The Esplanade",
                    "description": "Light out in front of city hall",
                },
            )

    [ticket] = page["items"]
    assert ticket["reference"] == "PKR-000001"
    assert ticket["subject"] == "Missed garbage pickup on Whites Rd"
    assert (tmp_path / "carehub.db").exists()
    assert "+19055550199" in log.read_text()  # the number was normalised to E.164
    assert email_ticket["channel"] == "email"
    assert email_ticket["subject"] == "Dog off leash in the park"
    assert email_ticket["contact_addresses"] == ["email:resident@mail.example"]
    assert "MISSED_WASTE" in [s["service_code"] for s in services]
    assert posted.status_code == 201, posted.text
    assert posted.json()[0]["service_request_id"] == "PKR-000003"


async def test_operator_creates_agents_and_tokens_from_the_cli(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'ops.db'}"
    env = {
        k: v
        for k, v in settings_env(Settings(database_url=db)).items()
        if not k.startswith("CAREHUB_") or k == "CAREHUB_DATABASE_URL"
    }

    def carehub(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own entry point
            [str(CAREHUB_BIN), *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    migrated = await asyncio.to_thread(carehub, "migrate")
    created = await asyncio.to_thread(
        carehub, "create-agent", "--email", "Sup@City.example", "--name", "Sam", "--role", "supervisor"
    )
    again = await asyncio.to_thread(carehub, "create-agent", "--email", "sup@city.example", "--name", "Sam")
    second = await asyncio.to_thread(carehub, "create-token", "--email", "sup@city.example", "--label", "laptop")

    assert migrated.returncode == 0, migrated.stderr
    assert created.returncode == 0, created.stderr
    assert again.returncode != 0
    assert "exists" in again.stderr
    tokens = [re.search(r"(chub_\S+)", r.stdout) for r in (created, second)]
    assert all(tokens)
    async with running_hub(Settings(env="test", database_url=db)) as hub:
        for match in tokens:
            assert match is not None
            me = await hub.client.get("/api/v1/me", headers={"Authorization": f"Bearer {match.group(1)}"})
            assert me.json()["role"] == "supervisor"
            assert me.json()["email"] == "sup@city.example"
