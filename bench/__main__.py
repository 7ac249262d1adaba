"""Runs every benchmark in turn (`make bench`, or `.venv/bin/python -m bench [args for the benchmarks]`)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from bench import inbound_sms

BENCHMARKS: dict[str, Callable[[Sequence[str] | None], int]] = {
    "inbound_sms": inbound_sms.main,
}


def main(argv: Sequence[str] | None = None) -> int:
    worst = 0
    for name, run in BENCHMARKS.items():
        print(f"== bench.{name}", flush=True)
        worst = max(worst, run(argv))
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
