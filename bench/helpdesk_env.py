"""django-helpdesk's email-to-ticket path, measured for comparison with carehub's email ingest.

django-helpdesk (and Django) live in a venv of their own under .bench/, never in carehub's: helpdesk_python() makes it
once with the pinned uv, and run_helpdesk() runs bench/helpdesk_driver.py in it over raw message files.

Run: .venv/bin/python -m bench.helpdesk_env [--repeat N]  (the shared email corpus, once; prints the totals)
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import subprocess
import sys
import sysconfig
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.corpus import EMAIL

REPO = Path(__file__).resolve().parents[1]
UV = REPO / ".tools" / "bin" / "uv"
VENV = REPO / ".bench" / "helpdesk-venv"
DRIVER = Path(__file__).with_name("helpdesk_driver.py")
REQUIREMENT = "django-helpdesk==2.6.1"
# Written last, so a venv whose install was cut short is made again rather than used.
STAMP = VENV / "carehub-bench-requirement.txt"
INSTALL_TIMEOUT_S = 600
DRIVER_TIMEOUT_S = 3600

# The corpus tests/channels/email/test_mime_corpus.py parses (its CORPUS_FILES): flanker's fixture messages, then
# CPython's own test_email data files, images and sounds included, as a mailbox may well receive such bytes.
FLANKER = EMAIL / "flanker" / "messages"
STDLIB_EMAIL_DATA = Path(sysconfig.get_paths()["stdlib"]) / "test" / "test_email" / "data"


class HelpdeskFailed(RuntimeError):
    """The helpdesk venv could not be made, or the driver did not print its result."""


def corpus_files() -> list[Path]:
    return sorted(FLANKER.rglob("*.eml")) + sorted(p for p in STDLIB_EMAIL_DATA.iterdir() if p.is_file())


def _python_in(venv: Path) -> Path:
    return venv / "bin" / "python"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Two benchmark runs starting at once must not both build the venv."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _is_ready() -> bool:
    return _python_in(VENV).exists() and STAMP.exists() and STAMP.read_text().strip() == REQUIREMENT


def _run_uv(args: list[str]) -> None:
    # No interpreter downloads on these machines (as in the Makefile): fail at once instead of hanging.
    env = os.environ | {"UV_PYTHON_DOWNLOADS": "never"}
    done = subprocess.run(
        [str(UV), *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        raise HelpdeskFailed(f"uv {' '.join(args)} exited {done.returncode}:\n{done.stderr}")


def helpdesk_python() -> Path:
    """The python of a venv holding django-helpdesk (REQUIREMENT), made on first use; later calls only check a stamp."""
    if _is_ready():
        return _python_in(VENV)
    with _locked(VENV.with_name(VENV.name + ".lock")):
        if not _is_ready():  # another run may have made it while this one waited for the lock
            print(f"bench: making {VENV.relative_to(REPO)} with {REQUIREMENT}", flush=True)
            # The same interpreter as carehub's venv: the two sides of the comparison run on one Python.
            _run_uv(["venv", "--clear", "--python", sys.executable, str(VENV)])
            _run_uv(["pip", "install", "--python", str(_python_in(VENV)), REQUIREMENT])
            STAMP.write_text(REQUIREMENT + "\n")
    return _python_in(VENV)


def run_helpdesk(paths: list[Path], repeat: int = 1) -> dict[str, Any]:
    """Every file in `paths` through helpdesk's email-to-ticket path, `repeat` passes, in a fresh SQLite database.

    Returns the driver's JSON (see bench/helpdesk_driver.py): "totals" ("all" and "under_1mb": messages, raised,
    cpu_s, wall_s, cpu_ms_per_message, msgs_per_s, ...), "files" (per file: size, cpu_ms per pass, raised exception
    type, error, where), "versions", "setup_s", "process_cpu_s"; plus "driver_stderr", what helpdesk logged there.
    """
    python = helpdesk_python()
    # -I: only the helpdesk venv's packages are importable, never carehub's, whatever PYTHONPATH says.
    done = subprocess.run(
        [str(python), "-I", str(DRIVER), "--repeat", str(repeat), "-"],
        input="".join(f"{p.resolve()}\n" for p in paths),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=DRIVER_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise HelpdeskFailed(f"{DRIVER.name} exited {done.returncode}:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    result["driver_stderr"] = done.stderr.splitlines()
    return result


def summary_text(result: dict[str, Any]) -> str:
    lines = [
        f"django-helpdesk {result['versions']['django_helpdesk']} on Django {result['versions']['django']}, "
        f"Python {result['versions']['python']}: {result['repeat']} pass(es); setup (Django + migrate) "
        f"{result['setup_s']:.2f} s, not counted below",
        f"{'':<12}{'files':>6}{'msgs':>6}{'raised':>7}{'CPU s':>8}{'wall s':>8}{'CPU ms/msg':>11}{'msg/s':>8}",
    ]
    for name, t in result["totals"].items():
        lines.append(
            f"{name:<12}{t['files']:>6}{t['messages']:>6}{t['raised']:>7}{t['cpu_s']:>8.2f}{t['wall_s']:>8.2f}"
            f"{t['cpu_ms_per_message']:>11.1f}{t['msgs_per_s']:>8.1f}"
        )
    raised = [f for f in result["files"] if f["raised"]]
    if raised:
        lines.append("raised:")
    for f in raised:
        caught = "caught" if f["caught_by_imap_loop"] else "NOT caught"
        lines.append(f"  {Path(f['path']).name}: {f['raised']} ({caught} by imap_sync) at {f['where']}: {f['error']}")
    slowest = sorted(result["files"], key=lambda f: -f["cpu_ms_min"])[:3]
    lines.append("slowest: " + ", ".join(f"{Path(f['path']).name} {f['cpu_ms_min']:.0f} ms" for f in slowest))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.helpdesk_env", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="passes over the corpus (default 1)")
    args = parser.parse_args(argv)
    files = corpus_files()
    print(f"bench: {len(files)} files through django-helpdesk's email path", flush=True)
    print(summary_text(run_helpdesk(files, args.repeat)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
