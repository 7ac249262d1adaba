"""Runs every benchmark in turn (`make bench`, or `.venv/bin/python -m bench [NAME ...] [args for the benchmarks]`).

Leading names pick benchmarks (e.g. `python -m bench email_ingest --passes 5`); without any, all run. The other
arguments go to each benchmark that runs, so options for one benchmark belong with its name alone.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from bench import chat, email_ingest, email_outbound, help_search, inbound_sms, queue

BENCHMARKS: dict[str, Callable[[Sequence[str] | None], int]] = {
    "inbound_sms": inbound_sms.main,
    "email_ingest": email_ingest.main,
    "email_outbound": email_outbound.main,
    "chat": chat.main,
    "queue": queue.main,
    "help_search": help_search.main,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    chosen = []
    while args and args[0] in BENCHMARKS:
        chosen.append(args.pop(0))
    worst = 0
    for name in chosen or list(BENCHMARKS):
        print(f"== bench.{name}", flush=True)
        worst = max(worst, BENCHMARKS[name](args))
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
