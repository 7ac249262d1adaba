"""Builds the channel adapters a process uses from settings: the real provider when configured, else a console one."""

from __future__ import annotations

from carehub.settings import Settings
from channels.base import ChannelAdapter, ChannelKind, ChannelSender
from channels.email.console import ConsoleEmailAdapter
from channels.email.smtp import SmtpEmailAdapter
from channels.sms.console import ConsoleSmsAdapter
from channels.sms.twilio import TwilioSmsAdapter
from channels.webhook.sender import WebhookSender


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
    return {
        ChannelKind.SMS: sms,
        ChannelKind.EMAIL: _email(settings),
        ChannelKind.WEBHOOK: WebhookSender(timeout=settings.webhook_timeout_seconds),
    }


def _email(settings: Settings) -> ChannelSender:
    if settings.smtp_host is None:
        return ConsoleEmailAdapter(from_address=settings.email_from_address, from_name=settings.email_from_name)
    return SmtpEmailAdapter(
        host=settings.smtp_host,
        port=settings.smtp_port,
        from_address=settings.email_from_address,
        from_name=settings.email_from_name,
        username=settings.smtp_username,
        password=None if settings.smtp_password is None else settings.smtp_password.get_secret_value(),
        tls=settings.smtp_tls,
        timeout=settings.smtp_timeout_seconds,
        pool_size=settings.smtp_pool_size,
    )
