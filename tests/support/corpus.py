"""Where the shared third-party test data lives: ../shared/corpus beside the clone (CAREHUB_CORPUS overrides)."""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("CAREHUB_CORPUS", REPO_ROOT.parent / "shared" / "corpus"))
TWILIO = CORPUS / "twilio"
TWILIO_PAYLOADS = TWILIO / "webhooks" / "va-notify" / "va_notify_twilio_payloads.json"
EMAIL = CORPUS / "email"
FLANKER_MESSAGES = EMAIL / "flanker" / "messages"
TALON = EMAIL / "talon"
# CPython's own email test messages; a venv shares the base interpreter's stdlib, test package included.
STDLIB_EMAIL_DATA = Path(sysconfig.get_paths()["stdlib"]) / "test" / "test_email" / "data"


def real_world_mail() -> dict[str, Path]:
    """Every raw message of the three corpora, keyed 'flanker/bounce/zed.eml', 'cpython/msg_19.txt',
    'talon/standard_replies/gmail.eml'. CPython's data folder holds images and sounds too: kept, as junk to archive."""
    files = {
        f"flanker/{p.relative_to(FLANKER_MESSAGES).as_posix()}": p for p in sorted(FLANKER_MESSAGES.rglob("*.eml"))
    }
    files |= {f"cpython/{p.name}": p for p in sorted(STDLIB_EMAIL_DATA.iterdir()) if p.is_file()}
    files |= {f"talon/{p.relative_to(TALON).as_posix()}": p for p in sorted(TALON.rglob("*.eml"))}
    return files
