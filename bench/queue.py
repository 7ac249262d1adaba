"""Benchmark: the agents' ticket queue (carehub.tickets.queue) on a city's two years of tickets: a team agent's and a
supervisor's view of waiting tickets, full-text searches, the same statements' raw SQL on the bare driver (the
floor), and GET /api/v1/tickets and the rendered console page (GET /console) through the app; PostgreSQL (1M
tickets, 5M messages) and SQLite (1M and 1M).

Run: make bench BENCH_ARGS=queue  or  .venv/bin/python -m bench queue [--help]
The data is built on first use (minutes) and kept: database carehub_bench_queue, and bench/.data/ for SQLite.
Prints p50/p95 per case beside the target and writes bench/results/queue.json; --fail-on-goal exits 2 on a miss.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from bench import _machine, _queue_data, _stores
from bench._timing import Figure, Timed, figure, measure, table
from carehub.agents import repository as agents
from carehub.agents import sessions
from carehub.agents.auth import SESSION_COOKIE, CurrentAgent
from carehub.app import create_app
from carehub.clock import utcnow
from carehub.models import ACTIVE_TICKET_STATUSES, Role
from carehub.runtime import Runtime
from carehub.settings import Settings
from carehub.tickets.queue import QueueFilter, queue_page, queue_query

RESULTS_FILE = Path(__file__).with_name("results") / "queue.json"
TARGET_P95_MS = 50.0
PAGE_TARGET_P95_MS = 100.0  # the rendered queue page
TEAM_AGENT_ID = 10  # an agent of one team (bench/_queue_data.py gives agents 5-60 teams; 1-4 are supervisors)
SUPERVISOR_ID = 1
ACTIVE = [s.value for s in ACTIVE_TICKET_STATUSES]
# From common (a topic most tickets of one kind mention) to rare (a made-up word from the end of the vocabulary).
SEARCH_TERMS = ("pothole", "water main", "councillor", _queue_data.vocabulary()[-1])


async def current_agent(conn: AsyncConnection, agent_id: int) -> CurrentAgent:
    row = await agents.agent_by_id(conn, agent_id)
    if row is None:
        raise RuntimeError(f"the bench data has no agent {agent_id}")
    teams = await agents.teams_of(conn, agent_id)
    return CurrentAgent(id=row.id, email=row.email, name=row.name, role=Role(row.role), teams=teams)


def views(team_agent: CurrentAgent) -> list[tuple[str, int, QueueFilter]]:
    """(case name, agent id, filter): the queue cases, each measured by queue_page, as raw SQL and over HTTP."""
    team = sorted(team_agent.teams)[0]
    cases = [
        (f"agent view ({team}: waiting, newest)", TEAM_AGENT_ID, QueueFilter(statuses=ACTIVE)),
        ("supervisor view (waiting, newest)", SUPERVISOR_ID, QueueFilter(statuses=ACTIVE)),
        ("supervisor view (waiting, SLA due first)", SUPERVISOR_ID, QueueFilter(statuses=ACTIVE, sort="due")),
    ]
    cases += [
        (f"search '{q}' (agent, waiting)", TEAM_AGENT_ID, QueueFilter(statuses=ACTIVE, q=q)) for q in SEARCH_TERMS
    ]
    rare = SEARCH_TERMS[-1]
    cases.append((f"search '{rare}' (agent, any status)", TEAM_AGENT_ID, QueueFilter(q=rare)))
    return cases


def api_path(f: QueueFilter) -> str:
    params: list[tuple[str, str | int | float | bool | None]] = [("status", s) for s in f.statuses]
    params += [("sort", f.sort), ("limit", str(f.limit))] + ([("q", f.q)] if f.q else [])
    return "/api/v1/tickets?" + str(httpx.QueryParams(params))


def page_case(client: httpx.AsyncClient, path: str, headers: dict[str, str], cookies: dict[str, str]) -> Timed:
    """One GET through the app (the API, or a console page such as /console), failing loudly on an error."""

    async def call() -> object:
        response = await client.get(path, headers=headers, cookies=cookies)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:300]}")
        return response

    return call


async def measure_store(
    store: str, url: str, runs: int, budget_s: float, log: Callable[[str], None], only: str = ""
) -> list[Figure]:
    settings = Settings(_env_file=None, database_url=url, env="dev")
    rt = Runtime.create(settings)
    figures: list[Figure] = []
    try:
        async with rt.engine.connect() as conn:
            team_agent = await current_agent(conn, TEAM_AGENT_ID)
            supervisor = await current_agent(conn, SUPERVISOR_ID)
            tokens = {a.id: await agents.issue_token(conn, a.id, "bench", utcnow()) for a in (team_agent, supervisor)}
            browsers = {
                a.id: (
                    await sessions.start(conn, a.id, ttl=timedelta(hours=1), now=utcnow(), ip=None, user_agent=None)
                )[0]
                for a in (team_agent, supervisor)
            }
            await conn.commit()
            who = {TEAM_AGENT_ID: team_agent, SUPERVISOR_ID: supervisor}
            raw: Any = (await conn.get_raw_connection()).driver_connection  # asyncpg's, or aiosqlite's
            for case, agent_id, f in views(team_agent):
                if only and only not in case:
                    continue
                agent = who[agent_id]

                async def through_queue(agent: CurrentAgent = agent, f: QueueFilter = f) -> object:
                    async with conn.begin():
                        return await queue_page(conn, settings=settings, agent=agent, f=f, now=utcnow())

                statement = queue_query(conn.dialect.name, agent=agent, f=f, now=utcnow())
                sql = str(statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))

                async def raw_sql(sql: str = sql) -> object:
                    if store == "postgresql":
                        return await raw.fetch(sql)
                    cursor = await raw.execute(sql)
                    return await cursor.fetchall()

                target = TARGET_P95_MS
                for kind, fn in (("queue_page", through_queue), ("raw SQL (floor)", raw_sql)):
                    log(f"{store}: {case}: {kind}")
                    times = await measure(fn, runs, budget_s)
                    figures.append(figure(store, f"{case}: {kind}", times, target if kind == "queue_page" else None))
        if not only:
            figures += await measure_http(store, settings, tokens, browsers, views(team_agent), runs, budget_s, log)
    finally:
        await rt.aclose()
    return figures


async def measure_http(
    store: str,
    settings: Settings,
    tokens: dict[int, str],
    browsers: dict[int, str],
    cases: list[tuple[str, int, QueueFilter]],
    runs: int,
    budget_s: float,
    log: Callable[[str], None],
) -> list[Figure]:
    app = create_app(settings)
    figures = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench.local") as client:
            for case, agent_id, f in cases[:2]:  # the views an agent opens the console on
                log(f"{store}: {case}: GET /api/v1/tickets")
                call = page_case(client, api_path(f), {"Authorization": f"Bearer {tokens[agent_id]}"}, {})
                times = await measure(call, runs, budget_s)
                figures.append(figure(store, f"{case}: GET /api/v1/tickets", times, None))
                # The console's queue page opens on the same view (waiting tickets the agent may see, newest first).
                log(f"{store}: {case}: GET /console (rendered page)")
                call = page_case(client, "/console", {}, {SESSION_COOKIE: browsers[agent_id]})
                times = await measure(call, runs, budget_s)
                figures.append(figure(store, f"{case}: GET /console (rendered page)", times, PAGE_TARGET_P95_MS))
    return figures


def summary_text(figures: list[Figure]) -> str:
    return "\n".join(table(figures, 78))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench queue", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="timed runs per case (default 200)")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds at most per case (default 20)")
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--pg-messages-per-ticket", type=int, default=5)
    parser.add_argument("--sqlite-messages-per-ticket", type=int, default=1)
    parser.add_argument("--store", choices=("postgresql", "sqlite", "both"), default="both")
    parser.add_argument("--only", default="", help="measure only the cases whose name holds this text")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE)
    parser.add_argument("--fail-on-goal", action="store_true", help="exit 2 when a target is missed")
    return parser.parse_args(argv)


def build(args: argparse.Namespace, progress: _queue_data.Progress) -> dict[str, str]:
    """Both stores at once (PostgreSQL builds in its server, SQLite in this process): about one core each."""
    urls: dict[str, str] = {}
    failures: list[BaseException] = []

    def sqlite() -> None:
        try:
            urls["sqlite"] = _queue_data.build_sqlite(
                _queue_data.Size(args.tickets, args.sqlite_messages_per_ticket), progress
            )
        except BaseException as exc:  # re-raised below, in the main thread
            failures.append(exc)

    thread = threading.Thread(target=sqlite) if args.store in ("sqlite", "both") else None
    if thread is not None:
        thread.start()
    if args.store in ("postgresql", "both"):
        urls["postgresql"] = _queue_data.build_postgres(
            _queue_data.Size(args.tickets, args.pg_messages_per_ticket), progress
        )
    if thread is not None:
        thread.join()
    if failures:
        raise failures[0]
    return urls


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    progress = _queue_data.Progress()
    urls = build(args, progress)
    figures: list[Figure] = []
    for store in ("postgresql", "sqlite"):
        if store in urls:
            figures += asyncio.run(measure_store(store, urls[store], args.runs, args.budget, progress, args.only))
    result: dict[str, Any] = {
        "benchmark": "queue",
        "machine": _machine.describe(postgresql=str(_stores.pg_scalar("postgres", "SHOW server_version"))),
        "config": {"tickets": args.tickets, "runs": args.runs, "budget_s": args.budget, "terms": SEARCH_TERMS},
        "figures": [fig.__dict__ | {"met": fig.met} for fig in figures],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(summary_text(figures))
    print(f"bench: results in {args.output}")
    missed = any(fig.met is False for fig in figures)
    return 2 if args.fail_on_goal and missed else 0


if __name__ == "__main__":
    sys.exit(main())
