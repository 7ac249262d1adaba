"""Builds the channel adapters a process uses from settings: the real provider when configured, else a console one."""

from __future__ import annotations

from carehub.settings import Settings
from channels.base import ChannelAdapter, ChannelKind, ChannelSender
from channels.sms.console import ConsoleSmsAdapter
from channels.sms.twilio import TwilioSmsAdapter


def build_adapters(settings: Settings) -> dict[ChannelKind, ChannelSender]:
    token = settings.twilio_auth_token.get_secret_value()
    sms: ChannelAdapter
    account_sid = settings.twilio_account_sid
    if account_sid is not None and settings.twilio_configured:
        sms = TwilioSmsAdapter(
            account_sid=account_sid,
            auth_token=token,
            from_number=settings.twilio_from_number,
            messaging_service_sid=settings.twilio_messaging_service_sid,
            api_base=settings.twilio_api_base,
            timeout=settings.twilio_timeout_seconds,
            default_region=settings.default_region,
        )
    else:
        sms = ConsoleSmsAdapter(auth_token=token, default_region=settings.default_region)
    return {ChannelKind.SMS: sms}
