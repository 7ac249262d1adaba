"""Configuration that would lose or duplicate messages, or accept forged webhooks, is refused at start-up."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from carehub.settings import Settings


def test_production_refuses_the_placeholder_twilio_auth_token() -> None:
    with pytest.raises(ValidationError, match="CAREHUB_TWILIO_AUTH_TOKEN"):
        Settings(env="production", public_url="https://hub.city.example")


def test_production_refuses_a_non_https_public_url() -> None:
    with pytest.raises(ValidationError, match="https"):
        Settings(
            env="production",
            public_url="http://hub.city.example",
            twilio_auth_token="real-token",
            email_webhook_secret="real-secret",
            smtp_host="smtp.city.example",
        )


def test_production_refuses_the_placeholder_email_webhook_secret() -> None:
    with pytest.raises(ValidationError, match="CAREHUB_EMAIL_WEBHOOK_SECRET"):
        Settings(env="production", public_url="https://hub.city.example", twilio_auth_token="real-token")


def test_production_refuses_to_only_log_mail() -> None:
    with pytest.raises(ValidationError, match="CAREHUB_SMTP_HOST"):
        Settings(
            env="production",
            public_url="https://hub.city.example",
            twilio_auth_token="real-token",
            email_webhook_secret="real-secret",
            chat_token_secret="real-chat-secret",
            alerts_link_secret="real-link-secret",
        )


def test_production_refuses_the_placeholder_alerts_link_secret() -> None:
    with pytest.raises(ValidationError, match="CAREHUB_ALERTS_LINK_SECRET"):
        Settings(
            env="production",
            public_url="https://hub.city.example",
            twilio_auth_token="real-token",
            email_webhook_secret="real-secret",
            chat_token_secret="real-chat-secret",
            smtp_host="smtp.city.example",
        )


def test_production_refuses_the_placeholder_chat_token_secret() -> None:
    with pytest.raises(ValidationError, match="CAREHUB_CHAT_TOKEN_SECRET"):
        Settings(
            env="production",
            public_url="https://hub.city.example",
            twilio_auth_token="real-token",
            email_webhook_secret="real-secret",
            smtp_host="smtp.city.example",
        )


def test_production_with_real_secrets_is_accepted() -> None:
    settings = Settings(
        env="production",
        public_url="https://hub.city.example",
        twilio_auth_token="real-token",
        email_webhook_secret="real-secret",
        chat_token_secret="real-chat-secret",
        alerts_link_secret="real-link-secret",
        smtp_host="smtp.city.example",
    )

    assert settings.public_url == "https://hub.city.example"


def test_a_delivery_lease_shorter_than_the_provider_timeout_is_refused() -> None:
    with pytest.raises(ValidationError, match="LEASE"):
        Settings(delivery_lease_seconds=10, twilio_timeout_seconds=10)


def test_a_delivery_lease_shorter_than_a_whole_smtp_transaction_is_refused() -> None:
    # The SMTP timeout applies per command, so a send can take several timeouts before it gives up.
    with pytest.raises(ValidationError, match="SMTP_TIMEOUT"):
        Settings(delivery_lease_seconds=30, smtp_timeout_seconds=5)
    assert Settings(delivery_lease_seconds=30, smtp_timeout_seconds=3).provider_call_seconds == 24
