"""Real `carehub` processes for tests that must kill one or drive the CLI: environment from Settings, SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from subprocess import Popen

from pydantic import SecretStr

from carehub.settings import Settings

CAREHUB_BIN = Path(sys.executable).parent / "carehub"


def settings_env(settings: Settings) -> dict[str, str]:
    """The CAREHUB_* variables that reproduce these settings in another process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREHUB_")}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, list | dict):  # pydantic-settings reads complex values as JSON
            value = json.dumps(value, default=str)
        env[f"CAREHUB_{name.upper()}"] = str(value)
    return env


@contextmanager
def carehub_process(*args: str, env: dict[str, str], cwd: Path, log: Path | None = None) -> Iterator[Popen[bytes]]:
    """Run `carehub <args>` (cwd outside the repo, so no developer's .env is read); SIGKILLed on exit."""
    with log.open("wb") if log else open(os.devnull, "wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own entry point with fixed arguments
            [str(CAREHUB_BIN), *args], env=env, cwd=cwd, start_new_session=True, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield proc
    finally:
        kill(proc)


def kill(proc: Popen[bytes]) -> None:
    """SIGKILL the process group: no shutdown hook runs, as when a machine dies."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
