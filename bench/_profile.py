"""Optional sampling profile of a server while it is under load, with py-spy, summarised as shares of samples by
what was running (categories of source files) and by function. py-spy is not a project dependency: install it
apart, e.g. `.tools/bin/pip install --target /tmp/py-spy py-spy`, then pass `--py-spy /tmp/py-spy/bin/py-spy`."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SAMPLE_RATE_HZ = 100  # low, and --nonblocking, so the profiled process runs nearly as fast as unprofiled
_PATH_PREFIXES = ("site-packages/", "python3.11/", f"{Path(__file__).resolve().parents[1]}/")


def find_py_spy(explicit: str | None) -> str:
    found = explicit or shutil.which("py-spy")
    if not found or not Path(found).exists():
        raise SystemExit(
            "--profile needs py-spy, which is not a project dependency: "
            "`.tools/bin/pip install --target /tmp/py-spy py-spy` and pass --py-spy /tmp/py-spy/bin/py-spy"
        )
    return found


@contextmanager
def sampling(py_spy: str, pid: int, seconds: float, out: Path) -> Iterator[None]:
    """Sample `pid` for `seconds` while the body runs; the stacks go to `out` in collapsed ("raw") form."""
    cmd = [py_spy, "record", "--pid", str(pid), "--duration", str(round(seconds)), "--rate", str(SAMPLE_RATE_HZ)]
    cmd += ["--nonblocking", "--format", "raw", "--output", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        yield
        _, err = proc.communicate(timeout=seconds + 30)
        if proc.returncode != 0:
            raise RuntimeError(f"py-spy exited {proc.returncode}: {err.decode(errors='replace')}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _frame_name(frame: str) -> tuple[str, str]:
    """'ingest (/repo/carehub/inbound/service.py:40)' -> ('ingest', 'carehub/inbound/service.py')."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    for marker in _PATH_PREFIXES:
        if marker in path:
            path = path.split(marker, 1)[1]
    return name, path


Categories = Sequence[tuple[str, Sequence[str]]]

# Where SQLAlchemy's time goes, in the order the first match must be tried (compiler before the rest of sql/).
SQLALCHEMY_CATEGORIES: Categories = (
    ("SQLAlchemy: compiled SQL + parameters", ("sqlalchemy/sql/compiler.py",)),
    ("SQLAlchemy: building statements, cache keys", ("sqlalchemy/sql/", "<sqlalchemy generated")),
    ("SQLAlchemy: execution, results, pool", ("sqlalchemy/engine/", "sqlalchemy/pool/", "sqlalchemy/dialects/")),
    ("SQLAlchemy: asyncio adaptation (greenlet)", ("sqlalchemy/ext/asyncio/", "sqlalchemy/util/concurrency.py")),
    ("SQLAlchemy: other", ("sqlalchemy/",)),
)
"""(label, path fragments): a sample counts for the first label matched, walking from the leaf frame up."""


@dataclass(frozen=True)
class Profile:
    samples: int
    categories: list[tuple[str, float]]
    """Share of samples by what was running, as `categories` name it."""
    own: list[tuple[str, float]]
    """Functions by the share of samples they were at the top of the stack in."""

    def as_json(self) -> dict[str, object]:
        return {"samples": self.samples, "rate_hz": SAMPLE_RATE_HZ, "categories": self.categories, "self": self.own}


def report_lines(profile: Profile, who: str, cpu_ms: float, per: str) -> list[str]:
    """The profile as a benchmark prints it: each category's share of the CPU per unit, then the hottest frames."""
    lines = [f"{who} profile: {profile.samples} py-spy samples; share (≈ CPU ms of the {cpu_ms:.2f} per {per})"]
    lines += [f"  {share:6.1%}  ≈{share * cpu_ms:6.2f} ms  {name}" for name, share in profile.categories]
    lines.append("  most often running (self):")
    lines += [f"  {share:6.1%}  {name}" for name, share in profile.own[:12]]
    return lines


def _category(frames: list[tuple[str, str]], categories: Categories) -> str:
    for _, path in reversed(frames):
        for label, fragments in categories:
            if any(fragment in path for fragment in fragments):
                return label
    return "other"


def summarise(collapsed: Path, categories: Categories, top: int = 20) -> Profile:
    """Share of samples by category, and the functions most often at the top of the stack."""
    by_category: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_frame_name(f) for f in stack.split(";")]
        by_category[_category(frames, categories)] += n
        name, path = frames[-1]
        own[f"{name} ({path})"] += n

    def share(counts: Counter[str], limit: int | None = None) -> list[tuple[str, float]]:
        return [(name, round(n / max(total, 1), 3)) for name, n in counts.most_common(limit)]

    return Profile(total, share(by_category), share(own, top))
