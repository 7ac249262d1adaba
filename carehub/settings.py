"""All configuration, from CAREHUB_* environment variables (or a .env file); nothing else reads the environment."""

from __future__ import annotations

import math
from datetime import date
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_TWILIO_AUTH_TOKEN = "dev-twilio-auth-token"  # noqa: S105 - placeholder, refused outside dev
DEV_EMAIL_WEBHOOK_SECRET = "dev-email-webhook-secret"  # noqa: S105 - placeholder, refused in production
DEV_CHAT_TOKEN_SECRET = "dev-chat-token-secret"  # noqa: S105 - placeholder, refused in production
DEV_ALERTS_LINK_SECRET = "dev-alerts-link-secret"  # noqa: S105 - placeholder, refused in production
# Messages per second a Twilio sender may send (Twilio's figures for Canada and the US): long code, toll-free, short.
SENDER_MPS = {"long_code": 1.0, "toll_free": 3.0, "short_code": 100.0}
MB = 1024 * 1024
# An alert delivery may be claimed this long before its slot at the provider's rate (carehub.alerts.pacing); the job
# waits for the slot, so sends keep the rate to the millisecond instead of to the workers' polling.
ALERT_LOOKAHEAD_SECONDS = 2.0
# Connect, EHLO, (STARTTLS, EHLO, AUTH,) MAIL, RCPT, DATA, end of data: the SMTP timeout applies to each.
SMTP_COMMANDS_PER_SEND = 8


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

    # Email: the city's sender identity (CASL: who is writing, and how to reach them) ...
    email_from_address: str = Field(default="care@pickering.example", pattern=r"^[^@\s]+@[^@\s]+$")
    email_from_name: str = "City of Pickering Customer Care"
    email_our_domains: list[str] = Field(
        default_factory=list,
        description="Domains (besides the From address's) whose mail is ours: never acknowledged, to avoid loops.",
    )
    city_postal_address: str = "One The Esplanade, Pickering, ON L1V 6K7"
    city_phone: str = "905-683-7575"
    city_website: str = "https://www.pickering.ca"
    # ... outgoing through SMTP (unset host: mail is printed to the console, as in dev) ...
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: Literal["none", "starttls", "implicit"] = "starttls"
    smtp_timeout_seconds: float = Field(default=5.0, gt=0, description="Per SMTP command.")
    smtp_pool_size: int = Field(default=10, ge=1, le=100)
    # ... and incoming, by our SMTP listener or the raw-MIME webhook.
    smtp_inbound_host: str = "127.0.0.1"
    smtp_inbound_port: int = Field(default=2525, ge=0, le=65535)
    smtp_inbound_in_process: bool = Field(
        default=False, description="Run the SMTP listener inside the hub process (carehub dev turns this on)."
    )
    email_webhook_secret: SecretStr = SecretStr(DEV_EMAIL_WEBHOOK_SECRET)
    email_max_bytes: int = Field(
        default=25 * MB,
        ge=64 * 1024,
        description="Larger mail is kept in the unprocessable archive (up to twice this), not parsed.",
    )
    email_max_attachments: int = Field(default=20, ge=0)
    email_max_attachment_bytes: int = Field(default=10 * MB, ge=0)
    email_ack_interval_seconds: float = Field(
        default=3600.0, ge=0, description="At most one acknowledgement per sender address in this period."
    )
    email_reprocess_after_seconds: float = Field(
        default=60.0, gt=0, description="Stored mail still unprocessed after this (a crash) is processed again."
    )
    data_dir: Path = Field(default=Path("carehub-data"), description="Attachments are stored under here.")

    # Web chat: who may embed the widget, when people answer, and how much one resident may send.
    realtime_prefix: str = Field(
        default="carehub",
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        description="Prefix of the Redis pub/sub channels (pub/sub ignores the Redis DB index).",
    )
    chat_token_secret: SecretStr = SecretStr(DEV_CHAT_TOKEN_SECRET)
    chat_token_ttl_days: int = Field(default=30, ge=1, description="A resident can resume a chat this long.")
    chat_allowed_origins: list[str] = Field(
        default_factory=list,
        description="Sites that may open the chat (besides the hub's own and CAREHUB_CITY_WEBSITE's origins).",
    )
    chat_hours: str = Field(
        default="mon-fri 08:30-16:30",
        description="When agents answer chat: days and hours, e.g. 'mon-sat 09:00-17:00'.",
    )
    chat_timezone: str = "America/Toronto"
    chat_closed_dates: list[date] = Field(default_factory=list, description="Holidays: no chat on these dates.")
    chat_require_agent_online: bool = Field(
        default=True, description="Chat is offered only while at least one agent has the live queue open."
    )
    chat_max_chars: int = Field(default=2000, ge=1, le=4000)
    chat_messages_per_minute: int = Field(default=30, ge=1, description="Per conversation.")
    chat_ip_messages_per_minute: int = Field(default=120, ge=1, description="Per client IP address, all chats.")
    chat_ip_max_connections: int = Field(default=20, ge=1, description="Open chat sockets per client IP address.")

    # Console sign-in: browser sessions end after this long without use; guessing is slowed per address and client.
    session_idle_hours: float = Field(default=12.0, gt=0)
    login_window_minutes: float = Field(default=15.0, gt=0)
    login_max_failures_per_address: int = Field(default=5, ge=1)
    login_max_failures_per_client: int = Field(default=20, ge=1)

    # The agents' console: the city's business calendar (SLA clocks run only inside it; the acknowledgement says
    # when an answer can be expected outside it), assignment, SLA alerts and the satisfaction survey.
    business_hours: str = Field(
        default="mon-fri 08:30-16:30", description="When customer care works: e.g. 'mon-fri 08:30-16:30'."
    )
    business_timezone: str = "America/Toronto"
    holidays: list[date] = Field(default_factory=list, description="Days customer care is closed (SLA clocks stop).")
    auto_assign: bool = Field(
        default=True, description="Give new tickets round-robin to online agents of the team, up to their capacity."
    )
    routing_interval_seconds: int = Field(
        default=15, ge=1, le=60, description="How often unrouted tickets are swept and assignments rebalanced."
    )
    sla_interval_seconds: int = Field(default=60, ge=5, le=3600, description="How often SLA timers are checked.")
    sla_warning_minutes: int = Field(
        default=30, ge=0, description="Supervisors are warned this many business minutes before a target is missed."
    )
    csat_enabled: bool = Field(default=True, description="Ask one satisfaction question after a ticket is resolved.")

    templates_dir: Path | None = Field(default=None, description="Defaults to templates/ beside the source tree.")
    reopen_window_days: int = Field(
        default=7,
        ge=0,
        description="A resident's message reopens a ticket resolved this recently instead of opening a new one.",
    )
    status_link_days: int = Field(
        default=30, ge=1, le=365, description="How long a status link (/s/...) in an acknowledgement opens its page."
    )
    help_search_log_days: int = Field(
        default=90, ge=1, le=730, description="Help centre search queries (personal data) are kept this many days."
    )
    help_ack_topics: list[str] = Field(
        default_factory=list,
        description="Help article topics that may be suggested in the acknowledgement of a text or email that "
        "matches one confidently (carehub/help/suggestion.py); empty: never.",
    )

    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    delivery_max_attempts: int = Field(default=8, ge=1)
    delivery_backoff_seconds: float = Field(default=5.0, gt=0)
    delivery_backoff_max_seconds: float = Field(default=1800.0, gt=0)
    delivery_lease_seconds: float = Field(default=60.0, gt=0)
    delivery_batch_concurrency: int = Field(
        default=20, ge=1, le=500, description="Sends of one batch in flight at once (Twilio limits concurrency)."
    )
    delivery_batch_size: int = Field(
        default=100, ge=1, le=500, description="Deliveries enqueued together go this many to a worker job."
    )
    ambiguous_send_hold_seconds: float = Field(
        default=600.0,
        gt=0,
        description="After a timeout with the request possibly sent, wait this long for "
        "the provider's status callback before sending again.",
    )
    # Alerts: who may send what, how fast, and the links in them.
    alerts_link_secret: SecretStr = Field(
        default=SecretStr(DEV_ALERTS_LINK_SECRET),
        description="Signs the confirm and unsubscribe links in alert mail; changing it voids the links already sent.",
    )
    alerts_require_approval: bool = Field(
        default=True, description="Emergency and all-residents alerts need a second person's approval to go out."
    )
    sms_sender_kind: Literal["long_code", "toll_free", "short_code"] = "long_code"
    sms_mps: float | None = Field(
        default=None, gt=0, le=1000, description="Alert SMS per second; unset: the sender kind's Twilio rate."
    )
    email_mps: float = Field(default=20.0, gt=0, le=1000, description="Alert mails per second through the relay.")
    alert_fanout_batch: int = Field(default=1000, ge=10, le=10_000, description="Deliveries staged per statement.")
    alert_interval_seconds: int = Field(
        default=10, ge=1, le=60, description="How often scheduled alerts and interrupted fan-outs are checked."
    )
    alert_stalled_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A fan-out whose checkpoint has not moved for this long is taken as dead (its worker crashed, "
        "Redis lost the job) and started again; a live one commits a batch every fraction of a second.",
    )
    alert_reply_window_hours: int = Field(
        default=72, ge=0, description="A resident's message this soon after an alert reached them is labelled with it."
    )
    subscription_confirm_minutes: int = Field(default=60, ge=5, description="A confirmation code or link lasts this.")
    # CAP (Common Alerting Protocol): which incoming alerts concern the city, and who the city is in its own feed.
    cap_geocodes: list[str] = Field(
        default_factory=lambda: ["3518001"],
        description="Geocodes (CAP-CP SGC codes, e.g. Pickering's census subdivision 3518001, or other layers' "
        "values) an imported CAP alert must name for the city to draft it.",
    )
    cap_topic: str = Field(default="emergencies", description="The topic of alerts drafted from CAP imports.")
    cap_sender: str | None = Field(
        default=None, description="The sender of the city's CAP feed; unset: the email sender's address."
    )
    cap_feed_urls: list[str] = Field(
        default_factory=list,
        description="CAP feeds to poll (Atom or RSS indexes of CAP messages, or a CAP message itself), e.g. "
        "Environment Canada's or NAADS'; what concerns the city's geocodes is drafted for staff to review.",
    )
    cap_poll_interval_seconds: int = Field(default=60, ge=10, le=3600, description="How often CAP feeds are read.")
    cap_feed_allow_private: bool = Field(
        default=False,
        description="Let the CAP poller read private, loopback and link-local addresses (a feed on the city's own "
        "network); off, a feed or a link in one that leads there is refused.",
    )
    # Open311 GeoReport v2 (carehub/open311): the jurisdiction the city answers for.
    open311_jurisdiction_id: str = Field(
        default="pickering.ca", description="Open311 jurisdiction_id this hub answers for (others are refused)."
    )
    # Outbound webhooks (carehub/webhooks): events to systems the city registered.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60, description="One webhook delivery's limit.")
    event_feed_interval_seconds: int = Field(
        default=2, ge=1, le=60, description="How often new events (tickets, messages, alerts) are read for webhooks."
    )
    event_feed_overlap_seconds: int = Field(
        default=60,
        ge=1,
        description="The event feed re-reads this far behind its cursor, so a transaction that committed late "
        "is not missed (event ids make the re-read harmless).",
    )
    sms_keyword_replies: bool = Field(
        default=True,
        description="Answer STOP, START and HELP ourselves (turn off if Twilio Advanced Opt-Out answers them).",
    )
    sweep_interval_seconds: int = Field(default=10, ge=1, le=60)
    sweep_grace_seconds: float = Field(default=30.0, ge=0)
    worker_max_jobs: int = Field(default=50, ge=1)

    @model_validator(mode="after")
    def _refuse_unsafe_configuration(self) -> Self:
        if self.delivery_lease_seconds <= self.provider_call_seconds:
            # A lease that can expire while the provider call is still running lets the sweeper send it again.
            raise ValueError(
                "CAREHUB_DELIVERY_LEASE_SECONDS must be longer than the longest provider call: "
                f"CAREHUB_TWILIO_TIMEOUT_SECONDS, CAREHUB_WEBHOOK_TIMEOUT_SECONDS, and {SMTP_COMMANDS_PER_SEND} x "
                "CAREHUB_SMTP_TIMEOUT_SECONDS "
                f"(the timeout applies per SMTP command), so more than {self.provider_call_seconds:g} s"
            )
        if self.env is Environment.PRODUCTION:
            if self.twilio_auth_token.get_secret_value() == DEV_TWILIO_AUTH_TOKEN:
                raise ValueError("CAREHUB_TWILIO_AUTH_TOKEN must be set to the account's real auth token in production")
            if self.email_webhook_secret.get_secret_value() == DEV_EMAIL_WEBHOOK_SECRET:
                raise ValueError("CAREHUB_EMAIL_WEBHOOK_SECRET must be set to a real secret in production")
            if self.chat_token_secret.get_secret_value() == DEV_CHAT_TOKEN_SECRET:
                raise ValueError("CAREHUB_CHAT_TOKEN_SECRET must be set to a real secret in production")
            if self.alerts_link_secret.get_secret_value() == DEV_ALERTS_LINK_SECRET:
                raise ValueError("CAREHUB_ALERTS_LINK_SECRET must be set to a real secret in production")
            if self.smtp_host is None:
                raise ValueError("CAREHUB_SMTP_HOST must be set in production (without it mail is only logged)")
            if not self.public_url.startswith("https://"):
                raise ValueError("CAREHUB_PUBLIC_URL must be https in production (Twilio signs the URL it calls)")
        return self

    @property
    def secure_cookies(self) -> bool:
        """Cookies only over TLS when the hub is served over TLS (always, in production)."""
        return self.public_url.startswith("https://")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def provider_call_seconds(self) -> float:
        """The longest a single send can take before its own timeouts end it."""
        return max(
            self.twilio_timeout_seconds,
            SMTP_COMMANDS_PER_SEND * self.smtp_timeout_seconds,
            self.webhook_timeout_seconds,
        )

    def delivery_lease_for(self, claimed: int, *, paced: bool) -> float:
        """How long a job's claim on `claimed` rows holds: the lease for one send, plus the turns the others wait
        for a free send slot (delivery_batch_concurrency at a time, each turn as long as the longest provider call),
        plus, for alert deliveries, the wait for their slot. A lease must not run out while its job still works, or
        the sweeper would hand the row to another worker and it could go twice."""
        turns = max(0, math.ceil(claimed / self.delivery_batch_concurrency) - 1)
        paced_wait = ALERT_LOOKAHEAD_SECONDS if paced else 0.0
        return self.delivery_lease_seconds + paced_wait + turns * self.provider_call_seconds

    @property
    def delivery_job_seconds(self) -> float:
        """The longest a delivery job may take (a full batch of alert deliveries): the workers' job timeout."""
        return self.delivery_lease_for(self.delivery_batch_size, paced=True)

    @property
    def email_transport_max_bytes(self) -> int:
        """The most an SMTP client or webhook caller may send at all; over email_max_bytes it is only archived."""
        return 2 * self.email_max_bytes

    @property
    def our_email_domains(self) -> frozenset[str]:
        own = self.email_from_address.rpartition("@")[2]
        return frozenset(d.lower() for d in [own, *self.email_our_domains])

    @property
    def embedded_delivery(self) -> bool:
        return self.redis_url is None

    def send_rate(self, channel: str) -> float:
        """Alert deliveries per second on this channel (SMS: the sender's Twilio rate unless set)."""
        if channel == "sms":
            return self.sms_mps or SENDER_MPS[self.sms_sender_kind]
        return self.email_mps

    @property
    def twilio_configured(self) -> bool:
        return self.twilio_account_sid is not None and (
            self.twilio_from_number is not None or self.twilio_messaging_service_sid is not None
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
