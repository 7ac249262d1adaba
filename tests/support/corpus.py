"""Where the shared third-party test data lives: ../shared/corpus beside the clone (CAREHUB_CORPUS overrides)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("CAREHUB_CORPUS", REPO_ROOT.parent / "shared" / "corpus"))
TWILIO = CORPUS / "twilio"
TWILIO_PAYLOADS = TWILIO / "webhooks" / "va-notify" / "va_notify_twilio_payloads.json"
EMAIL = CORPUS / "email"
