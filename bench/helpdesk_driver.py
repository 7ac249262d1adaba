"""Drives django-helpdesk's email-to-ticket path over raw message files and prints one JSON object of timings.

Run by the separate helpdesk venv's python (bench/helpdesk_env.py makes it), never by carehub's: it imports Django and
django-helpdesk, and nothing of carehub. Usage: python bench/helpdesk_driver.py [--repeat N] [FILE_LIST | -], where
FILE_LIST names one message file a line (stdin by default).

Per message it does what helpdesk.email.imap_sync does with each fetched RFC822 body: force_str(bytes, errors=
"replace"), then extract_email_metadata(message=..., queue=q, logger=logger), which parses the message and writes the
Ticket / FollowUp / attachments to SQLite and renders the notification mail (sent to Django's in-memory outbox).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import django  # type: ignore[import-not-found]
from django.conf import settings  # type: ignore[import-not-found]

UNDER_BYTES = 1_000_000  # "under 1 MB": both corpus files above it are far above (1.8 MB and 3.0 MB)
QUEUE_SLUG = "bench"
# imap_sync catches these per message and goes on to the next one; any other exception ends its poll of the queue.
CAUGHT_BY_IMAP_LOOP = ("IgnoreTicketException", "DeleteIgnoredTicketException", "TypeError")

# ROOT_URLCONF is this module: helpdesk reverses its own URLs ("helpdesk:public_view") into the notification mail.
# Filled in by configure(), since include() imports helpdesk's views, which needs the app registry ready.
urlpatterns: list[Any] = []


def configure(workdir: Path) -> None:
    """A minimal Django project around helpdesk: SQLite and media files in `workdir`, mail kept in memory."""
    settings.configure(
        DEBUG=False,  # DEBUG=True would keep every SQL statement in memory
        SECRET_KEY="bench-not-secret",  # noqa: S106 - a throwaway project that serves nothing
        TIME_ZONE="UTC",
        USE_TZ=True,
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(workdir / "helpdesk.sqlite3")}},
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.humanize",
            "django.contrib.messages",
            "django.contrib.sessions",
            "django.contrib.sites",
            "rest_framework",
            "helpdesk",
        ],
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}],
        ROOT_URLCONF=__name__,
        SITE_ID=1,
        MEDIA_ROOT=str(workdir / "media"),
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        DEFAULT_FROM_EMAIL="helpdesk@bench.invalid",
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        HELPDESK_TEAMS_MODE_ENABLED=False,  # True needs pinax-teams, an optional extra
    )
    django.setup()
    from django.urls import include, path  # type: ignore[import-not-found]

    urlpatterns.append(path("helpdesk/", include("helpdesk.urls")))


def prepare() -> tuple[Any, logging.Logger]:
    """Migrate, then the one thing the email path needs: a queue that takes email (as process_email selects them)."""
    from django.core.management import call_command  # type: ignore[import-not-found]
    from helpdesk.models import Queue  # type: ignore[import-not-found]

    call_command("migrate", verbosity=0, interactive=False)
    queue = Queue.objects.create(
        title="Bench",
        slug=QUEUE_SLUG,
        email_address="helpdesk@bench.invalid",
        allow_email_submission=True,
        email_box_type="imap",
        email_box_imap_folder="INBOX",
    )
    # process_email's logger for a queue whose logging_type is unset: no handlers, not propagated.
    logger = logging.getLogger("django.helpdesk.queue." + queue.slug)
    logger.handlers = []
    logger.propagate = False
    return queue, logger


def ingest(raw: bytes, queue: Any, logger: logging.Logger) -> dict[str, Any]:
    """One message through imap_sync's per-message step; CPU and wall seconds, and what came of it."""
    from django.utils import encoding  # type: ignore[import-not-found]
    from helpdesk.email import extract_email_metadata  # type: ignore[import-not-found]

    raised = error = where = None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    try:
        full_message = encoding.force_str(raw, errors="replace")
        ticket = extract_email_metadata(message=full_message, queue=queue, logger=logger)
    except Exception as exc:  # any exception is a result: recorded per message, never fatal to the run
        raised, error, where = type(exc).__name__, str(exc)[:300], raised_at(exc)
        ticket = None
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {
        "cpu_s": cpu,
        "wall_s": wall,
        "raised": raised,
        "error": error,
        "where": where,
        "ticket": ticket is not None,
    }


def raised_at(exc: BaseException) -> str:
    """The innermost frame in helpdesk's code (else the innermost at all), as package/file.py:line in function."""
    frames = traceback.extract_tb(exc.__traceback__)
    frame = next((f for f in reversed(frames) if "/helpdesk/" in f.filename), frames[-1])
    short = frame.filename.split("site-packages/")[-1]
    return f"{short}:{frame.lineno} in {frame.name}"


def clear_outbox() -> int:
    """Empty the in-memory outbox; how many notification mails the last message produced."""
    from django.core import mail  # type: ignore[import-not-found]

    sent = len(getattr(mail, "outbox", []))
    mail.outbox = []
    return sent


def read_paths(file_list: str) -> list[Path]:
    text = sys.stdin.read() if file_list == "-" else Path(file_list).read_text()
    return [Path(line) for line in text.splitlines() if line.strip()]


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 2) if seconds > 0 else 0.0


def totals(files: list[dict[str, Any]], runs: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """Over every pass of every file, and of the files under 1 MB; `runs` is in the order of `files`."""

    def over(under: int | None) -> dict[str, Any]:
        chosen = [i for i, f in enumerate(files) if under is None or f["size_bytes"] < under]
        every = [r for i in chosen for r in runs[i]]
        cpu, wall = sum(r["cpu_s"] for r in every), sum(r["wall_s"] for r in every)
        return {
            "files": len(chosen),
            "messages": len(every),
            "raised": sum(r["raised"] is not None for r in every),
            "tickets": sum(r["ticket"] for r in every),
            "notification_mails": sum(r["mails"] for r in every),
            "cpu_s": round(cpu, 4),
            "wall_s": round(wall, 4),
            "cpu_ms_per_message": round(cpu / len(every) * 1000, 3) if every else 0.0,
            "msgs_per_s": rate(len(every), wall),
            "msgs_per_cpu_s": rate(len(every), cpu),
        }

    return {"all": over(None), "under_1mb": over(UNDER_BYTES)}


def file_result(path: Path, size: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    cpu = [r["cpu_s"] for r in runs]
    raised = sorted({r["raised"] for r in runs if r["raised"] is not None})
    return {
        "path": str(path),
        "size_bytes": size,
        "runs": len(runs),
        "raised": raised[0] if len(raised) == 1 else (raised or None),
        "raised_runs": sum(r["raised"] is not None for r in runs),
        "error": next((r["error"] for r in runs if r["error"] is not None), None),
        "where": next((r["where"] for r in runs if r["where"] is not None), None),
        "caught_by_imap_loop": all(name in CAUGHT_BY_IMAP_LOOP for name in raised) if raised else None,
        "tickets": sum(r["ticket"] for r in runs),
        "notification_mails": sum(r["mails"] for r in runs),
        "cpu_ms": [round(c * 1000, 3) for c in cpu],
        "wall_ms": [round(r["wall_s"] * 1000, 3) for r in runs],
        "cpu_ms_min": round(min(cpu) * 1000, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file_list", nargs="?", default="-", help="file naming one message path a line; - for stdin")
    parser.add_argument("--repeat", type=int, default=1, help="passes over the whole list (default 1)")
    args = parser.parse_args()
    paths = read_paths(args.file_list)
    messages = [(p, p.read_bytes()) for p in paths]
    with tempfile.TemporaryDirectory(prefix="helpdesk-bench-") as tmp:
        setup0 = time.perf_counter()
        configure(Path(tmp))
        queue, logger = prepare()
        setup_s = time.perf_counter() - setup0
        runs: list[list[dict[str, Any]]] = [[] for _ in messages]
        for _ in range(args.repeat):
            for i, (_path, raw) in enumerate(messages):
                run = ingest(raw, queue, logger)
                run["mails"] = clear_outbox()  # outside the timing: the outbox only grows, nothing delivers it
                runs[i].append(run)
    files = [file_result(p, len(raw), r) for (p, raw), r in zip(messages, runs, strict=True)]
    versions = {"django": django.get_version(), "django_helpdesk": helpdesk_version(), "python": sys.version.split()[0]}
    result = {
        "versions": versions,
        "repeat": args.repeat,
        "setup_s": round(setup_s, 3),
        "process_cpu_s": round(time.process_time(), 3),  # the whole driver: imports, setup, migrate, messages
        "totals": totals(files, runs),
        "files": files,
    }
    json.dump(result, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


def helpdesk_version() -> str:
    from importlib.metadata import version

    return version("django-helpdesk")


if __name__ == "__main__":
    sys.exit(main())
