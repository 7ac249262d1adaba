"""Real Twilio material from ../shared/corpus/twilio (signature vectors, webhook payloads), as test inputs."""

from __future__ import annotations

import json
from functools import cache
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import ImmutableMultiDict

from channels.base import InboundRequest
from tests.support.corpus import TWILIO

CORPUS = TWILIO
SIGNATURE_VECTORS = CORPUS / "signature-vectors" / "twilio_python_request_validator_vectors.json"
WEBHOOK_PAYLOADS = CORPUS / "webhooks" / "va-notify" / "va_notify_twilio_payloads.json"
OPENAPI_SPEC = CORPUS / "openapi" / "twilio_api_v2010.json"


@cache
def signature_vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SIGNATURE_VECTORS.read_text(encoding="utf-8"))
    return data


@cache
def webhook_payloads() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(WEBHOOK_PAYLOADS.read_text(encoding="utf-8"))
    return data


@cache
def message_statuses() -> list[str]:
    """Every MessageStatus value Twilio's OpenAPI spec says a message can have."""
    spec = json.loads(OPENAPI_SPEC.read_text(encoding="utf-8"))
    statuses: list[str] = spec["components"]["schemas"]["message_enum_status"]["enum"]
    return statuses


def form_of(raw_body: str) -> ImmutableMultiDict[str, str]:
    """An urlencoded body parsed the way starlette parses the hub's requests (blank values kept)."""
    return ImmutableMultiDict(parse_qsl(raw_body, keep_blank_values=True))


def request(url: str, form: ImmutableMultiDict[str, str], signature: str | None = None) -> InboundRequest:
    headers = {} if signature is None else {"x-twilio-signature": signature}
    return InboundRequest(url=url, headers=headers, form=form)
