"""All configuration, from CAREHUB_* environment variables (or a .env file); nothing else reads the environment."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_TWILIO_AUTH_TOKEN = "dev-twilio-auth-token"  # noqa: S105 - placeholder, refused outside dev


class Environment(StrEnum):
    DEV = "dev"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAREHUB_", env_file=".env", extra="ignore")

    env: Environment = Environment.DEV
    city_name: str = "City of Pickering"
    ticket_prefix: str = Field(default="PKR", pattern=r"^[A-Z]{2,6}$")
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="The URL Twilio and residents reach this hub at; webhook signatures are checked against it.",
    )

    database_url: str = "sqlite+aiosqlite:///./carehub.db"
    database_pool_size: int = Field(default=20, ge=1, le=200)
    redis_url: str | None = Field(default=None, description="Unset: deliver in-process (embedded mode).")
    queue_name: str = "carehub:queue"

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr = SecretStr(DEV_TWILIO_AUTH_TOKEN)
    twilio_from_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_api_base: str | None = Field(default=None, description="Point the twilio client elsewhere (tests).")
    twilio_timeout_seconds: float = Field(default=10.0, gt=0)
    default_region: str = Field(default="CA", description="Region for phone numbers written without +country.")

    templates_dir: Path | None = Field(default=None, description="Defaults to templates/ beside the source tree.")
    reopen_window_days: int = Field(
        default=7,
        ge=0,
        description="A resident's message reopens a ticket resolved this recently instead of opening a new one.",
    )

    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    delivery_max_attempts: int = Field(default=8, ge=1)
    delivery_backoff_seconds: float = Field(default=5.0, gt=0)
    delivery_backoff_max_seconds: float = Field(default=1800.0, gt=0)
    delivery_lease_seconds: float = Field(default=60.0, gt=0)
    ambiguous_send_hold_seconds: float = Field(
        default=600.0,
        gt=0,
        description="After a timeout with the request possibly sent, wait this long for "
        "the provider's status callback before sending again.",
    )
    sweep_interval_seconds: int = Field(default=10, ge=1, le=60)
    sweep_grace_seconds: float = Field(default=30.0, ge=0)
    worker_max_jobs: int = Field(default=50, ge=1)

    @model_validator(mode="after")
    def _refuse_unsafe_configuration(self) -> Self:
        if self.delivery_lease_seconds <= self.twilio_timeout_seconds:
            # A lease that can expire while the provider call is still running lets the sweeper send it again.
            raise ValueError("CAREHUB_DELIVERY_LEASE_SECONDS must be longer than CAREHUB_TWILIO_TIMEOUT_SECONDS")
        if self.env is Environment.PRODUCTION:
            if self.twilio_auth_token.get_secret_value() == DEV_TWILIO_AUTH_TOKEN:
                raise ValueError("CAREHUB_TWILIO_AUTH_TOKEN must be set to the account's real auth token in production")
            if not self.public_url.startswith("https://"):
                raise ValueError("CAREHUB_PUBLIC_URL must be https in production (Twilio signs the URL it calls)")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def embedded_delivery(self) -> bool:
        return self.redis_url is None

    @property
    def twilio_configured(self) -> bool:
        return self.twilio_account_sid is not None and (
            self.twilio_from_number is not None or self.twilio_messaging_service_sid is not None
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
