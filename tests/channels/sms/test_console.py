"""The console SMS provider: sends nothing, logs what it would have sent, and still checks webhook signatures."""

from __future__ import annotations

import logging
import re

import pytest

from channels.base import ChannelAdapter, ChannelKind, OutboundEnvelope
from channels.sms.console import ConsoleSmsAdapter


async def test_console_send_logs_the_message_and_returns_a_console_sid(caplog: pytest.LogCaptureFixture) -> None:
    adapter: ChannelAdapter = ConsoleSmsAdapter(auth_token="dev-token")
    env = OutboundEnvelope(outbox_id=3, channel=ChannelKind.SMS, to="+16135550123", body="Your request PKR-7 is in.")
    with caplog.at_level(logging.INFO, logger="carehub.sms.console"):
        result = await adapter.send(env)
    await adapter.aclose()
    assert re.fullmatch(r"SMconsole[0-9a-f]{24}", result.provider_id)
    (record,) = [r for r in caplog.records if r.name == "carehub.sms.console"]
    logged = record.getMessage()
    assert result.provider_id in logged
    assert "+16135550123" in logged
    assert "Your request PKR-7 is in." in logged


async def test_console_sends_get_distinct_ids() -> None:
    adapter = ConsoleSmsAdapter(auth_token="dev-token")
    env = OutboundEnvelope(outbox_id=3, channel=ChannelKind.SMS, to="+16135550123", body="hi")
    assert (await adapter.send(env)).provider_id != (await adapter.send(env)).provider_id
