"""The `carehub` command: run the hub (dev, serve), workers and migrations, manage agents and tokens, and load the
city's address points."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from sqlalchemy import update

from carehub.agents import repository as agents
from carehub.chat.protocol import WS_SERVER_OPTIONS
from carehub.clock import utcnow
from carehub.db import create_engine, transaction
from carehub.migrations import upgrade
from carehub.models import Role
from carehub.settings import Settings, get_settings
from carehub.subscriptions import places

DEV_AGENT_EMAIL = "admin@localhost"


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _serve(settings: Settings, host: str, port: int, *, workers: int = 1) -> None:
    uvicorn.run(
        "carehub.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        # websockets' sans-I/O implementation: about half the memory per chat socket of the legacy one.
        **WS_SERVER_OPTIONS,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        log_level="info",
        access_log=settings.env != "production",
    )


@dataclass(frozen=True)
class FirstRun:
    """What a new dev store is given, printed once: an admin's API token and console password, and an Open311 key
    for the example services."""

    api_token: str
    password: str
    open311_key: str


async def _first_run(settings: Settings) -> FirstRun | None:
    """In dev, make sure there is an admin to try the API and the console with, example Open311 services and
    example help articles; None if there are agents already."""
    from carehub.agents import passwords
    from carehub.help import service as help_articles
    from carehub.open311 import examples, keys

    password = secrets.token_urlsafe(12)
    hashed = await passwords.hash_password(password)
    engine = create_engine(settings)
    try:
        async with transaction(engine) as tx:
            if await agents.any_agents(tx.conn):
                return None
            now = utcnow()
            agent_id = await agents.create_agent(
                tx.conn, email=DEV_AGENT_EMAIL, name="Dev Admin", role=Role.ADMIN, now=now
            )
            await tx.conn.execute(
                update(agents.AGENTS).where(agents.AGENTS.c.id == agent_id).values(password_hash=hashed)
            )
            await examples.add_examples(tx.conn, now)
            _, open311_key = await keys.issue(tx.conn, "dev", agent_id, now)
            first = FirstRun(await agents.issue_token(tx.conn, agent_id, "dev", now), password, open311_key)
        await help_articles.seed(engine, help_articles.load_drafts(help_articles.EXAMPLES), utcnow())
        return first
    finally:
        await engine.dispose()


def cmd_dev(args: argparse.Namespace) -> None:
    # Everything in one process, the SMTP listener included (CAREHUB_SMTP_INBOUND_PORT, 2525 by default).
    os.environ.setdefault("CAREHUB_SMTP_INBOUND_IN_PROCESS", "true")
    get_settings.cache_clear()
    settings = get_settings()
    upgrade(settings)
    first = asyncio.run(_first_run(settings))
    _print(
        f"carehub dev: http://{args.host}:{args.port}  (store: {settings.database_url}, delivery: "
        f"{'in-process' if settings.embedded_delivery else settings.redis_url})"
    )
    if first:
        _print(f"Created agent {DEV_AGENT_EMAIL}; API token (shown once): {first.api_token}")
        _print(
            f"Agent console: http://{args.host}:{args.port}/console  (sign in as {DEV_AGENT_EMAIL}, password "
            f"(shown once): {first.password})"
        )
        _print(
            f"Open311 GeoReport v2: http://{args.host}:{args.port}/open311/v2/services.json (example services); "
            f"api_key to post requests (shown once): {first.open311_key}"
        )
    _print(f"Help centre: http://{args.host}:{args.port}/help  (example articles; staff API /api/v1/help/articles)")
    _print(
        f"Web chat: the widget on a demo page at http://{args.host}:{args.port}/chat/demo; agents see it live on "
        "GET /api/v1/events (chat is offered in CAREHUB_CHAT_HOURS while an agent holds that stream open)"
    )
    if settings.smtp_inbound_in_process:
        _print(
            f"Email: mail to {settings.email_from_address} is taken on smtp://{settings.smtp_inbound_host}:"
            f"{settings.smtp_inbound_port}"
            + ("" if settings.smtp_host else "; outgoing mail is printed to this console")
        )
    if not settings.twilio_configured:
        _print(
            "SMS: no Twilio credentials, so outgoing texts are printed to this console. Try:\n"
            f"  carehub simulate-sms --from +19055550123 --body 'Pothole on Kingston Rd' --url "
            f"http://{args.host}:{args.port}"
        )
    _serve(settings, args.host, args.port)


def cmd_serve(args: argparse.Namespace) -> None:
    _serve(get_settings(), args.host, args.port, workers=args.workers)


def cmd_worker(args: argparse.Namespace) -> None:
    from arq.worker import check_health, run_worker

    from workers.settings import worker_settings

    if args.check:
        sys.exit(check_health(worker_settings(get_settings())))
    import uvloop

    uvloop.install()  # the hub's event loop too: a worker is mostly socket writes (database, Redis, providers)
    run_worker(worker_settings(get_settings()))


async def _run_smtpd(settings: Settings, host: str, port: int) -> None:
    from carehub.app import start_delivery
    from carehub.mail.smtpd import start_listener
    from carehub.runtime import Runtime

    rt = Runtime.create(settings)
    await rt.open_hot_pool()
    sweeper = await start_delivery(rt)
    server = await start_listener(rt, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    _print(f"carehub smtpd: taking mail for {', '.join(sorted(settings.our_email_domains))} on {host}:{port}")
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()
        if sweeper is not None:
            await sweeper.stop()
        await rt.aclose()


def cmd_smtpd(args: argparse.Namespace) -> None:
    settings = get_settings()
    import uvloop

    # The same event loop as the HTTP hub (uvicorn's loop="uvloop"): cheaper per await, which mail ingest is full of.
    uvloop.run(_run_smtpd(settings, args.host, args.port or settings.smtp_inbound_port))


def cmd_migrate(_args: argparse.Namespace) -> None:
    settings = get_settings()
    upgrade(settings)
    _print("database is at the latest schema")


async def _create_agent(settings: Settings, email: str, name: str, role: Role) -> str:
    engine = create_engine(settings)
    try:
        async with transaction(engine) as tx:
            if await agents.agent_by_email(tx.conn, email) is not None:
                raise SystemExit(f"an agent with email {email} exists; use create-token to give it a new token")
            now = utcnow()
            agent_id = await agents.create_agent(tx.conn, email=email, name=name, role=role, now=now)
            return await agents.issue_token(tx.conn, agent_id, "cli", now)
    finally:
        await engine.dispose()


async def _create_token(settings: Settings, email: str, label: str) -> str:
    engine = create_engine(settings)
    try:
        async with transaction(engine) as tx:
            agent = await agents.agent_by_email(tx.conn, email)
            if agent is None:
                raise SystemExit(f"no agent with email {email}")
            return await agents.issue_token(tx.conn, agent.id, label, utcnow())
    finally:
        await engine.dispose()


async def _set_password(settings: Settings, email: str, password: str) -> None:
    from sqlalchemy import update

    from carehub.agents import passwords, sessions

    try:
        hashed = await passwords.hash_password(password)
    except passwords.WeakPassword as exc:
        raise SystemExit(str(exc)) from None
    engine = create_engine(settings)
    try:
        async with transaction(engine) as tx:
            agent = await agents.agent_by_email(tx.conn, email)
            if agent is None:
                raise SystemExit(f"no agent with email {email}")
            await tx.conn.execute(
                update(agents.AGENTS).where(agents.AGENTS.c.id == agent.id).values(password_hash=hashed)
            )
            # A new password ends every session signed in with the old one.
            await sessions.end_all(tx.conn, agent.id, utcnow())
    finally:
        await engine.dispose()


def cmd_set_password(args: argparse.Namespace) -> None:
    """The password comes from standard input when it is not a terminal (scripts), else from a hidden prompt."""
    import getpass

    password = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else getpass.getpass("New password: ")
    asyncio.run(_set_password(get_settings(), args.email, password))
    _print(f"password set for {args.email}; their other console sessions have ended")


def cmd_create_agent(args: argparse.Namespace) -> None:
    token = asyncio.run(_create_agent(get_settings(), args.email, args.name, Role(args.role)))
    _print(f"API token for {args.email} (shown once, store it safely): {token}")


def cmd_create_token(args: argparse.Namespace) -> None:
    token = asyncio.run(_create_token(get_settings(), args.email, args.label))
    _print(f"API token for {args.email} (shown once, store it safely): {token}")


ADDRESS_BATCH = 1000  # rows per executemany: the city's file has tens of thousands


async def _load_address_points(settings: Settings, path: Path) -> tuple[int, list[str]]:
    """Upsert the file's address points in batches, all in one transaction: (rows loaded, problems by line)."""
    from carehub.subscriptions import addresses

    loaded, problems = 0, []
    batch: dict[str, dict[str, object]] = {}  # by key: a file listing one address twice keeps its last point
    engine = create_engine(settings)
    try:
        async with transaction(engine) as tx:
            for row in addresses.read_address_points(path):
                if isinstance(row, addresses.Skipped):
                    problems.append(f"line {row.line}: {row.reason}")
                    continue
                batch[str(row["address_key"])] = row
                loaded += 1
                if len(batch) >= ADDRESS_BATCH:
                    await places.upsert_address_points(tx.conn, list(batch.values()))
                    batch.clear()
            await places.upsert_address_points(tx.conn, list(batch.values()))
    finally:
        await engine.dispose()
    return loaded, problems


def cmd_load_address_points(args: argparse.Namespace) -> None:
    try:
        loaded, problems = asyncio.run(_load_address_points(get_settings(), Path(args.path)))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"carehub load-address-points: {exc}") from None
    for problem in problems:
        _print(f"skipped {problem}")
    _print(f"loaded {loaded} address points from {args.path}; skipped {len(problems)}")


def cmd_simulate_sms(args: argparse.Namespace) -> None:
    """Send the hub a text exactly as Twilio would: form-encoded and signed with the configured auth token."""
    import secrets
    import urllib.error
    import urllib.parse
    import urllib.request

    from twilio.request_validator import RequestValidator

    settings = get_settings()
    url = f"{settings.public_url.rstrip('/')}/webhooks/twilio/sms"
    params = {
        "MessageSid": "SM" + secrets.token_hex(16),
        "AccountSid": settings.twilio_account_sid or "AC" + "0" * 32,
        "From": args.from_number,
        "To": settings.twilio_from_number or "+19055550000",
        "Body": args.body,
        "NumMedia": "0",
    }
    signature = RequestValidator(settings.twilio_auth_token.get_secret_value()).compute_signature(url, params)
    target = (args.url.rstrip("/") + "/webhooks/twilio/sms") if args.url else url
    request = urllib.request.Request(  # noqa: S310 - the operator's own hub URL
        target,
        data=urllib.parse.urlencode(params).encode(),
        method="POST",
        headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            _print(f"{response.status} {response.read().decode()}")
    except urllib.error.HTTPError as exc:
        _print(f"{exc.code} {exc.read().decode()}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carehub", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    for name, func, help_text, default_host in (
        (
            "dev",
            cmd_dev,
            "all-in-one for trying it out: SQLite, in-process delivery, migrations applied",
            "127.0.0.1",
        ),
        ("serve", cmd_serve, "the HTTP hub for production (run `carehub migrate` first)", "0.0.0.0"),  # noqa: S104
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--host", default=default_host)
        p.add_argument("--port", type=int, default=8000)
        if name == "serve":
            p.add_argument("--workers", type=int, default=1, help="HTTP processes")
        p.set_defaults(func=func)

    p = sub.add_parser("smtpd", help="the SMTP listener for the city's inbound mail (production: port 25 behind MX)")
    p.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a mail server listens on all interfaces
    p.add_argument("--port", type=int, default=0, help="default: CAREHUB_SMTP_INBOUND_PORT")
    p.set_defaults(func=cmd_smtpd)

    p = sub.add_parser("worker", help="an arq delivery worker (needs CAREHUB_REDIS_URL)")
    p.add_argument("--check", action="store_true", help="exit 0 if a worker of this queue is alive (healthcheck)")
    p.set_defaults(func=cmd_worker)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)

    p = sub.add_parser("create-agent", help="create an agent and print an API token for it")
    p.add_argument("--email", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--role", choices=[r.value for r in Role], default=Role.AGENT.value)
    p.set_defaults(func=cmd_create_agent)

    p = sub.add_parser("create-token", help="issue another API token for an agent")
    p.add_argument("--email", required=True)
    p.add_argument("--label", default="cli")
    p.set_defaults(func=cmd_create_token)

    p = sub.add_parser("set-password", help="set an agent's console password (from stdin, or a hidden prompt)")
    p.add_argument("--email", required=True)
    p.set_defaults(func=cmd_set_password)

    p = sub.add_parser("simulate-sms", help="send the hub a signed SMS webhook, as Twilio would (dev)")
    p.add_argument("--from", dest="from_number", required=True)
    p.add_argument("--body", required=True)
    p.add_argument("--url", help="hub base URL if not CAREHUB_PUBLIC_URL")
    p.set_defaults(func=cmd_simulate_sms)

    p = sub.add_parser(
        "load-address-points", help="load the city's address points (CSV: address, lon, lat) to place residents"
    )
    p.add_argument("path", help="a CSV file with a header row naming the columns address, lon and lat")
    p.set_defaults(func=cmd_load_address_points)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    args.func(args)
