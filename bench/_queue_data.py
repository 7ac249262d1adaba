# ruff: noqa: S608 - every statement here is built from this module's own constants and sizes, never from input
"""Data for bench/queue.py: a PostgreSQL database and a SQLite file with a city's two years of tickets, generated
inside the database (INSERT ... SELECT over a series), kept between runs and rebuilt only when incomplete."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench import _stores
from carehub.migrations import upgrade
from carehub.settings import Settings

_MIGRATING = threading.Lock()


def _migrate(url: str) -> None:
    """Alembic's context is process-global: the two stores' builders (two threads) migrate one at a time."""
    with _MIGRATING:
        upgrade(Settings(_env_file=None, database_url=url))


DATA_VERSION = 1  # bump when the generated data changes shape: a kept database with another version is rebuilt
PG_DATABASE = "carehub_bench_queue"
SQLITE_DIR = Path(__file__).with_name(".data")
TEAMS = ("roads", "water", "waste", "parking", "parks", "bylaw")
AGENTS = 60
SUPERVISORS = 4  # agents 1-4; the others are agents of one team (some of two)
# (topic phrase for message bodies, email subject): every ticket has a topic; most of its messages mention it.
TOPICS = (
    ("There is a deep pothole on my street that damaged my tire", "Pothole on my street"),
    ("The water main broke and the road is flooding", "Water main break"),
    ("Our garbage pickup was missed again this week", "Missed garbage pickup"),
    ("I want to appeal a parking ticket I got downtown", "Parking ticket appeal"),
    ("The streetlight in front of our house is out", "Streetlight out"),
    ("Loud music from the neighbours every night, a noise complaint", "Noise complaint"),
    ("The snow plow damaged the lawn and the mailbox", "Snow plow damage"),
    ("Our recycling bin was not emptied and is cracked", "Recycling bin"),
    ("A large tree branch fell on the sidewalk after the storm", "Fallen tree branch"),
    ("The sidewalk is cracked and someone tripped", "Cracked sidewalk"),
    ("Basement flooding after the heavy rain, the sewer backed up", "Basement flooding"),
    ("The fire hydrant on the corner is leaking water", "Leaking fire hydrant"),
    ("A dog has been barking all night next door", "Barking dog"),
    ("There is graffiti on the wall of the community centre", "Graffiti"),
    ("The traffic signal at the intersection is not working", "Traffic signal not working"),
    ("My property tax bill seems wrong this year", "Property tax bill"),
    ("How do I apply for a building permit for a deck", "Building permit"),
    ("When is yard waste collection in my area", "Yard waste collection"),
    ("I need a bulk item pickup for an old couch", "Bulk item pickup"),
    ("Why is the road closed near the school", "Road closure"),
    ("The bus stop shelter glass is broken", "Bus stop shelter"),
    ("The park washroom has been locked all week", "Park washroom"),
    ("Playground equipment is broken and unsafe for kids", "Broken playground equipment"),
    ("Our water bill is far too high this month", "High water bill"),
    ("Someone is illegally dumping mattresses in the ravine", "Illegal dumping"),
    ("An abandoned vehicle has been parked here for weeks", "Abandoned vehicle"),
    ("Cars are speeding on our residential street", "Speeding on residential street"),
    ("The crosswalk paint has faded and drivers do not stop", "Faded crosswalk"),
    ("The storm drain is blocked with leaves", "Blocked storm drain"),
    ("Raccoons keep getting into the garbage bins", "Raccoons in garbage"),
    ("What are the ice rink hours this weekend", "Ice rink hours"),
    ("There is a dead animal on the road", "Dead animal on road"),
    ("Construction noise starts before seven in the morning", "Early construction noise"),
    ("The grass on the vacant lot is overgrown", "Overgrown grass"),
    ("When does leaf collection start on our street", "Leaf collection"),
)
_COMMON_WORDS = (
    "the a an and or but if on in at to from for with about after before during since until again still already "
    "please thank thanks hello hi sorry help need want would could should can will may might must again today "
    "yesterday tomorrow morning evening night week weekend month year time day hour minute street road avenue "
    "crescent drive lane court house home apartment building neighbour neighbours resident residents city council "
    "ward councillor office staff crew truck service request report complaint issue problem concern question answer "
    "call called calling email emailed phone number address corner intersection block near next behind across "
    "front back side north south east west water sewer drain pipe main leak leaking leaks leaked flood flooding "
    "garbage trash waste bin bins recycling compost pickup collection collected missed schedule truck bag bags "
    "parking ticket tickets fine permit meter car cars vehicle driver drivers speed speeding sign signs signal light "
    "lights streetlight pole tree trees branch branches grass park parks playground bench path trail snow ice plow "
    "salt sidewalk sidewalks curb pothole potholes hole crack cracked broken damage damaged repair repaired fix fixed "
    "fixing replace replaced noise loud music dog dogs cat animal raccoon coyote bylaw officer enforcement tax bill "
    "payment paid pay account refund online form website portal app photo picture attached attachment reference "
    "number still nobody came come came went go going done finished waiting weeks days months again urgent safety "
    "unsafe dangerous child children school bus stop shelter route transit station library pool rink arena centre "
    "community event hours open closed closure construction contractor work working worker workers early late"
)
_SYLLABLES = (
    "ba be bi bo ca co da de di do fa fe ga go ha he ka ki la le li lo ma me mi mo na ne ni no pa pe pi po "
    "ra re ri ro sa se si so ta te ti to va ve vi wa we ya yo za"
)
COMMON = _COMMON_WORDS.split()
SYLLABLES = _SYLLABLES.split()
VOCABULARY_SIZE = 3000


def vocabulary() -> list[str]:
    """A few thousand words: everyday and municipal English first (drawn most often), then made-up filler."""
    rng = random.Random(7)
    words = list(dict.fromkeys(COMMON))
    seen = set(words)
    while len(words) < VOCABULARY_SIZE:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


@dataclass(frozen=True)
class Size:
    tickets: int
    messages_per_ticket: int  # on average: each ticket has 1 .. 2*n-1


def _sql_words(pick: str, count: int) -> str:
    return " || ' ' || ".join([pick] * count)


# --- PostgreSQL --------------------------------------------------------------------------------------------------


def _pg_ticket_sql(n: int) -> str:
    recent = max(n * 3 // 100, 1)
    topics = len(TOPICS)
    return f"""
INSERT INTO tickets (id, contact_id, address_id, channel, status, priority, team, assignee_id, subject,
    created_at, updated_at, last_inbound_at, first_response_at, resolved_at, routed_at, sla_computed_at,
    first_response_due_at, resolution_due_at, sla_warned_at, sla_breached_at, merged_into_id)
SELECT g, c, c, ch, st, pr, tm,
    CASE WHEN st IN ('new') OR (st IN ('open', 'pending') AND r4 < 0.2) THEN NULL ELSE 5 + (g * 13) % {AGENTS - 4} END,
    CASE WHEN ch = 'email'
        THEN ($1::text[])[1 + g % {topics}] || CASE WHEN r4 < 0.5 THEN '' ELSE ' (follow-up)' END END,
    created, created + (r2 * 96) * interval '1 hour', created,
    CASE WHEN st = 'new' THEN NULL ELSE created + (r3 * 8) * interval '1 hour' END,
    CASE WHEN st IN ('resolved', 'closed') THEN created + (r2 * 96) * interval '1 hour' END,
    created, created, created + interval '4 hours', created + interval '3 days',
    CASE WHEN r3 > 0.45 THEN created + interval '3 hours' END,
    CASE WHEN r3 > 0.5 THEN created + interval '4 hours' END,
    CASE WHEN st = 'closed' AND r4 > 0.995 AND g > 1 THEN g - 1 END
FROM (
    SELECT g, c, r2, r3, r4, created,
        (ARRAY['email', 'sms', 'sms', 'chat', 'email'])[1 + c % 5] AS ch,
        CASE WHEN (g > {n - recent} AND r1 < 0.5) OR r1 < 0.005
             THEN (ARRAY['new', 'new', 'open', 'open', 'open', 'pending', 'pending', 'open', 'new', 'open'])
                  [1 + (g * 7) % 10]
             WHEN r1 < 0.3 THEN 'resolved' ELSE 'closed' END AS st,
        CASE WHEN r2 < 0.1 THEN 'low' WHEN r2 < 0.8 THEN 'normal' WHEN r2 < 0.95 THEN 'high' ELSE 'urgent' END AS pr,
        CASE WHEN r4 < 0.03 THEN NULL
             ELSE (ARRAY{list(TEAMS)!r}::text[])[1 + (g % {topics}) % {len(TEAMS)}] END AS tm
    FROM (
        SELECT g, (1 + floor(random() * {max(n // 3, 1)}))::int AS c, random() AS r1, random() AS r2,
            random() AS r3, random() AS r4,
            now() - interval '730 days' + (g::float8 / {n}) * interval '730 days'
                + random() * interval '10 minutes' AS created
        FROM generate_series(1, {n}) AS g
    ) AS base
) AS t
"""


FRAGMENTS = 20_000  # message bodies join two of these random seven-word runs (indexing a big text[] is slow)


def _pg_fragments_sql() -> str:
    pick = "w[1 + floor(power(random(), 2) * array_length(w, 1))::int]"
    return f"""
CREATE TEMP TABLE bench_fragments AS
SELECT g AS id, {_sql_words(pick, 7)} AS words
FROM generate_series(1, {FRAGMENTS}) AS g CROSS JOIN (SELECT $1::text[] AS w) AS vocabulary
"""


def _pg_message_sql(per_ticket: int) -> str:
    return f"""
INSERT INTO messages (ticket_id, direction, channel, body, author_agent_id, created_at)
SELECT m.ticket_id, CASE WHEN m.k % 2 = 1 THEN 'in' ELSE 'out' END, m.channel,
    CASE WHEN m.r < 0.6 THEN ($1::text[])[1 + m.ticket_id % {len(TOPICS)}] || '. '
         WHEN m.r < 0.65 THEN ($1::text[])[1 + (m.a % {len(TOPICS)})] || '. ' ELSE '' END
        || f1.words || ' ' || f2.words,
    CASE WHEN m.k % 2 = 0 THEN coalesce(m.assignee_id, 5) END,
    m.created_at + (m.k - 1) * interval '3 hours'
FROM (
    SELECT t.id AS ticket_id, t.channel, t.assignee_id, t.created_at, k, random() AS r,
        1 + floor(random() * {FRAGMENTS})::int AS a, 1 + floor(random() * {FRAGMENTS})::int AS b
    FROM tickets AS t CROSS JOIN LATERAL generate_series(1, 1 + (t.id * 7) % {2 * per_ticket - 1}) AS k
) AS m
JOIN bench_fragments AS f1 ON f1.id = m.a
JOIN bench_fragments AS f2 ON f2.id = m.b
ORDER BY m.ticket_id, m.k
"""


async def _pg_complete(conn: asyncpg.Connection, size: Size) -> bool:
    exists = await conn.fetchval("SELECT to_regclass('bench_queue_meta') IS NOT NULL")
    if not exists:
        return False
    row = await conn.fetchrow("SELECT version, tickets FROM bench_queue_meta")
    return row is not None and (row["version"], row["tickets"]) == (DATA_VERSION, size.tickets)


async def _pg_build(url: str, size: Size, progress: Progress) -> None:
    conn = await asyncpg.connect(url, timeout=30)
    try:
        if await _pg_complete(conn, size):
            counts = await conn.fetchrow("SELECT tickets, messages FROM bench_queue_meta")
            progress(f"PostgreSQL: kept ({counts['tickets']:,} tickets, {counts['messages']:,} messages)")
            return
        progress(f"PostgreSQL: building {size.tickets:,} tickets")
        await conn.execute("SET maintenance_work_mem = '1GB'")
        await conn.execute("SET session_replication_role = replica")  # no FK triggers while loading
        await conn.execute(
            "TRUNCATE ticket_labels, messages, tickets, contact_addresses, contacts, agent_teams, api_tokens, agents"
            " RESTART IDENTITY CASCADE"
        )
        await conn.execute("DROP TABLE IF EXISTS bench_queue_meta")
        # Indexes are dropped while loading and made again from their own definitions (the migrations') after.
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('tickets', 'messages') "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        )
        for ix in indexes:
            await conn.execute(f'DROP INDEX "{ix["indexname"]}"')
        await _pg_fill(conn, size, progress)
        started = time.perf_counter()
        await conn.execute("SELECT carehub_rebuild_search()")  # its triggers were off while loading
        progress(f"  search documents: {time.perf_counter() - started:.0f} s")
        for ix in indexes:
            started = time.perf_counter()
            await conn.execute(ix["indexdef"])
            progress(f"  index {ix['indexname']}: {time.perf_counter() - started:.0f} s")
        for table in ("agents", "contacts", "contact_addresses", "tickets", "messages"):
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        progress("  ANALYZE")
        await conn.execute("ANALYZE")
        messages = await conn.fetchval("SELECT count(*) FROM messages")
        await conn.execute("CREATE TABLE bench_queue_meta (version int, tickets int, messages bigint)")
        await conn.execute("INSERT INTO bench_queue_meta VALUES ($1, $2, $3)", DATA_VERSION, size.tickets, messages)
    finally:
        await conn.close()


async def _pg_fill(conn: asyncpg.Connection, size: Size, progress: Progress) -> None:
    n = size.tickets
    await conn.execute("SELECT setseed(0.42)")
    await conn.execute(f"""
        INSERT INTO agents (id, email, name, role, is_active, capacity, created_at)
        SELECT g, 'agent' || g || '@bench.city.test', 'Agent ' || g,
            CASE WHEN g <= {SUPERVISORS} THEN 'supervisor' ELSE 'agent' END, true, 5, now() - interval '3 years'
        FROM generate_series(1, {AGENTS}) AS g""")
    await conn.execute(f"""
        INSERT INTO agent_teams (agent_id, team)
        SELECT g, (ARRAY{list(TEAMS)!r}::text[])[1 + g % {len(TEAMS)}] FROM generate_series(5, {AGENTS}) AS g
        UNION SELECT g, (ARRAY{list(TEAMS)!r}::text[])[1 + (g + 1) % {len(TEAMS)}]
        FROM generate_series(5, {AGENTS}, 7) AS g""")
    contacts = max(n // 3, 1)
    await conn.execute(f"""
        INSERT INTO contacts (id, display_name, language, created_at)
        SELECT g, 'Resident ' || g, 'en', now() - interval '3 years' FROM generate_series(1, {contacts}) AS g""")
    await conn.execute(f"""
        INSERT INTO contact_addresses (id, contact_id, channel, address, created_at)
        SELECT g, g, (ARRAY['email', 'sms', 'sms', 'chat', 'email'])[1 + g % 5],
            CASE WHEN g % 5 IN (0, 4) THEN 'resident' || g || '@mail.example'
                 WHEN g % 5 = 3 THEN 'chat-' || g ELSE '+1905' || lpad(g::text, 7, '0') END,
            now() - interval '3 years'
        FROM generate_series(1, {contacts}) AS g""")
    started = time.perf_counter()
    await conn.execute(_pg_ticket_sql(n), [subject for _, subject in TOPICS])
    progress(f"  tickets: {n:,} in {time.perf_counter() - started:.0f} s")
    await conn.execute("""
        INSERT INTO ticket_labels (ticket_id, label)
        SELECT id, (ARRAY['follow-up', 'vip', 'councillor', 'media', 'repeat', 'accessibility'])[1 + (id * 3) % 6]
        FROM tickets WHERE id % 5 = 0""")
    started = time.perf_counter()
    await conn.execute(_pg_fragments_sql(), vocabulary())
    await conn.execute(_pg_message_sql(size.messages_per_ticket), [phrase for phrase, _ in TOPICS])
    progress(f"  messages: in {time.perf_counter() - started:.0f} s")


def build_postgres(size: Size, progress: Progress, database: str = PG_DATABASE) -> str:
    """The bench database's SQLAlchemy URL, built unless it already holds this size of data."""
    if not _stores.pg_query("postgres", "SELECT 1 FROM pg_database WHERE datname = $1", database):
        _stores.pg_query("postgres", f'CREATE DATABASE "{database}"')
    url = _stores.sqlalchemy_url(database)
    _migrate(url)
    asyncio.run(_pg_build(f"{_stores.PG_SERVER}/{database}", size, progress))
    return url


class Progress:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    def __call__(self, line: str) -> None:
        print(f"bench: [{time.perf_counter() - self.started:6.0f} s] {line}", flush=True)


# --- SQLite ------------------------------------------------------------------------------------------------------


def _ts(seconds: str) -> str:
    """An SQL expression for a Unix time as SQLAlchemy stores timestamps in SQLite (naive UTC, microseconds)."""
    return f"(strftime('%Y-%m-%d %H:%M:%S', {seconds}, 'unixepoch') || '.000000')"


def _r(expr: str, salt: int) -> str:
    """A pseudo-random fraction in [0, 1) from an integer expression (SQLite's random() would be evaluated anew
    for each reference once the planner flattens a subquery)."""
    return f"((({expr}) * {2654435761 + salt * 40503} + {salt * 7919}) % 1000003) / 1000003.0"


def _sqlite_ticket_sql(n: int, start: int) -> str:
    recent = max(n * 3 // 100, 1)
    r1, r2, r3, r4 = (_r("g", salt) for salt in range(1, 5))
    created = f"({start} + g * {730 * 86400} / {n})"
    topics = len(TOPICS)
    subjects = " ".join(f"WHEN {i} THEN '{subject}'" for i, (_, subject) in enumerate(TOPICS))
    teams = " ".join(f"WHEN {i} THEN '{team}'" for i, team in enumerate(TEAMS))
    return f"""
WITH RECURSIVE series(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM series WHERE g < {n}),
base AS (
    SELECT g, 1 + (g * 7) % {max(n // 3, 1)} AS c, {created} AS created, {r2} AS r2, {r3} AS r3, {r4} AS r4,
        CASE WHEN (g > {n - recent} AND {r1} < 0.5) OR {r1} < 0.005
             THEN CASE (g * 7) % 10 WHEN 0 THEN 'new' WHEN 1 THEN 'new' WHEN 8 THEN 'new'
                  WHEN 5 THEN 'pending' WHEN 6 THEN 'pending' ELSE 'open' END
             WHEN {r1} < 0.3 THEN 'resolved' ELSE 'closed' END AS st
    FROM series
)
INSERT INTO tickets (id, contact_id, address_id, channel, status, priority, team, assignee_id, subject,
    created_at, updated_at, last_inbound_at, first_response_at, resolved_at, routed_at, sla_computed_at,
    first_response_due_at, resolution_due_at, sla_warned_at, sla_breached_at, merged_into_id)
SELECT g, c, c, CASE c % 5 WHEN 0 THEN 'email' WHEN 4 THEN 'email' WHEN 3 THEN 'chat' ELSE 'sms' END, st,
    CASE WHEN r2 < 0.1 THEN 'low' WHEN r2 < 0.8 THEN 'normal' WHEN r2 < 0.95 THEN 'high' ELSE 'urgent' END,
    CASE WHEN r4 < 0.03 THEN NULL ELSE CASE (g % {topics}) % {len(TEAMS)} {teams} END END,
    CASE WHEN st = 'new' OR (st IN ('open', 'pending') AND r4 < 0.2) THEN NULL ELSE 5 + (g * 13) % {AGENTS - 4} END,
    CASE WHEN c % 5 IN (0, 4) THEN (CASE g % {topics} {subjects} END)
        || CASE WHEN r4 < 0.5 THEN '' ELSE ' (follow-up)' END END,
    {_ts("created")}, {_ts("created + r2 * 96 * 3600")}, {_ts("created")},
    CASE WHEN st = 'new' THEN NULL ELSE {_ts("created + r3 * 8 * 3600")} END,
    CASE WHEN st IN ('resolved', 'closed') THEN {_ts("created + r2 * 96 * 3600")} END,
    {_ts("created")}, {_ts("created")}, {_ts("created + 4 * 3600")}, {_ts("created + 3 * 86400")},
    CASE WHEN r3 > 0.45 THEN {_ts("created + 3 * 3600")} END,
    CASE WHEN r3 > 0.5 THEN {_ts("created + 4 * 3600")} END,
    CASE WHEN st = 'closed' AND r4 > 0.995 AND g > 1 THEN g - 1 END
FROM base
"""


def _sqlite_fill(db: sqlite3.Connection, size: Size, progress: Progress) -> None:
    n = size.tickets
    start = int(time.time()) - 730 * 86400
    contacts = max(n // 3, 1)
    db.execute("CREATE TEMP TABLE vocabulary (id INTEGER PRIMARY KEY, word TEXT)")
    db.executemany("INSERT INTO vocabulary VALUES (?, ?)", enumerate(vocabulary()))
    db.execute("CREATE TEMP TABLE topics (id INTEGER PRIMARY KEY, phrase TEXT)")
    db.executemany("INSERT INTO topics VALUES (?, ?)", [(i, phrase) for i, (phrase, _) in enumerate(TOPICS)])
    pick = f"(SELECT word FROM vocabulary WHERE id = (g * 0 + abs(random()) % {VOCABULARY_SIZE}))"
    db.execute("CREATE TEMP TABLE fragments (id INTEGER PRIMARY KEY, words TEXT)")
    db.execute(f"""
        WITH RECURSIVE series(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM series WHERE g < {FRAGMENTS})
        INSERT INTO fragments SELECT g AS id, {" || ' ' || ".join([pick] * 7)} AS words FROM series""")
    db.execute(f"""
        WITH RECURSIVE series(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM series WHERE g < {AGENTS})
        INSERT INTO agents (id, email, name, role, is_active, capacity, created_at)
        SELECT g, 'agent' || g || '@bench.city.test', 'Agent ' || g,
            CASE WHEN g <= {SUPERVISORS} THEN 'supervisor' ELSE 'agent' END, 1, 5, {_ts(str(start))} FROM series""")
    db.executemany(
        "INSERT INTO agent_teams (agent_id, team) VALUES (?, ?)",
        sorted({(g, TEAMS[g % len(TEAMS)]) for g in range(5, AGENTS + 1)}
               | {(g, TEAMS[(g + 1) % len(TEAMS)]) for g in range(5, AGENTS + 1, 7)}),
    )  # fmt: skip
    db.execute(f"""
        WITH RECURSIVE series(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM series WHERE g < {contacts})
        INSERT INTO contacts (id, display_name, language, created_at)
        SELECT g, 'Resident ' || g, 'en', {_ts(str(start))} FROM series""")
    db.execute(f"""
        WITH RECURSIVE series(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM series WHERE g < {contacts})
        INSERT INTO contact_addresses (id, contact_id, channel, address, created_at)
        SELECT g, g, CASE g % 5 WHEN 0 THEN 'email' WHEN 4 THEN 'email' WHEN 3 THEN 'chat' ELSE 'sms' END,
            CASE WHEN g % 5 IN (0, 4) THEN 'resident' || g || '@mail.example'
                 WHEN g % 5 = 3 THEN 'chat-' || g ELSE '+1905' || substr('0000000' || g, -7) END,
            {_ts(str(start))}
        FROM series""")
    started = time.perf_counter()
    db.execute(_sqlite_ticket_sql(n, start))
    progress(f"  tickets: {n:,} in {time.perf_counter() - started:.0f} s")
    db.execute("""
        INSERT INTO ticket_labels (ticket_id, label)
        SELECT id, CASE (id * 3) % 6 WHEN 0 THEN 'follow-up' WHEN 1 THEN 'vip' WHEN 2 THEN 'councillor'
            WHEN 3 THEN 'media' WHEN 4 THEN 'repeat' ELSE 'accessibility' END
        FROM tickets WHERE id % 5 = 0""")
    started = time.perf_counter()
    per = 2 * size.messages_per_ticket - 1
    db.execute(f"""
        WITH RECURSIVE k(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM k WHERE k < {per})
        INSERT INTO messages (ticket_id, direction, channel, body, author_agent_id, created_at)
        SELECT t.id, CASE WHEN k.k % 2 = 1 THEN 'in' ELSE 'out' END, t.channel,
            CASE WHEN (t.id * 31 + k.k * 17) % 100 < 60
                 THEN (SELECT phrase FROM topics WHERE id = t.id % {len(TOPICS)}) || '. '
                 WHEN (t.id * 31 + k.k * 17) % 100 < 65
                 THEN (SELECT phrase FROM topics WHERE id = (t.id + k.k) % {len(TOPICS)}) || '. ' ELSE '' END
                || (SELECT words FROM fragments WHERE id = 1 + (t.id * 0 + abs(random()) % {FRAGMENTS}))
                || ' ' || (SELECT words FROM fragments WHERE id = 1 + (k.k * 0 + abs(random()) % {FRAGMENTS})),
            CASE WHEN k.k % 2 = 0 THEN coalesce(t.assignee_id, 5) END,
            strftime('%Y-%m-%d %H:%M:%S', t.created_at, '+' || ((k.k - 1) * 3) || ' hours') || '.000000'
        FROM tickets AS t JOIN k ON k.k <= 1 + (t.id * 7) % {per}
        ORDER BY t.id, k.k""")
    progress(f"  messages (and their full-text index): in {time.perf_counter() - started:.0f} s")


def build_sqlite(size: Size, progress: Progress, directory: Path = SQLITE_DIR) -> str:
    """A SQLite file with this size of data (kept under bench/.data/ between runs); its SQLAlchemy URL."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"queue-{size.tickets}-{size.messages_per_ticket}-v{DATA_VERSION}.db"
    url = f"sqlite+aiosqlite:///{path}"
    if path.exists():
        db = sqlite3.connect(path)
        try:
            done = db.execute("SELECT tickets, messages FROM bench_queue_meta").fetchone()
        except sqlite3.OperationalError:
            done = None
        finally:
            db.close()
        if done is not None:
            progress(f"SQLite {path.name}: kept ({done[0]:,} tickets, {done[1]:,} messages); migrating to head")
            _migrate(url)  # a kept file gets later migrations too
            return url
        path.unlink()
    progress(f"SQLite {path.name}: building {size.tickets:,} tickets")
    _migrate(url)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-1000000")
        db.execute("BEGIN")
        _sqlite_fill(db, size, progress)
        messages = db.execute("SELECT count(*) FROM messages").fetchone()[0]
        db.execute("CREATE TABLE bench_queue_meta (version INTEGER, tickets INTEGER, messages INTEGER)")
        db.execute("INSERT INTO bench_queue_meta VALUES (?, ?, ?)", (DATA_VERSION, size.tickets, messages))
        db.execute("COMMIT")
        progress("  ANALYZE")
        db.execute("ANALYZE")
    finally:
        db.close()
    return url
