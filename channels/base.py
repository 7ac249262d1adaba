"""The contract every channel adapter keeps: the envelopes in and out, and how a send can fail.

Adapters verify and parse provider requests and send messages; they hold no database access (the hub owns state).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, Protocol

from starlette.datastructures import ImmutableMultiDict


class ChannelKind(StrEnum):
    SMS = "sms"
    EMAIL = "email"
    CHAT = "chat"
    # A service request from an Open311 app that gave no email or phone: answered only through the Open311 API
    # (status_notes), never delivered.
    OPEN311 = "open311"
    # Not a resident's channel: an outbox row that is an HTTPS event delivery to a system the city registered.
    WEBHOOK = "webhook"


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    SUPPRESSED = "suppressed"  # not sent: the resident opted out or unsubscribed before its turn
    CANCELLED = "cancelled"  # not sent: staff cancelled the alert before its turn


FINAL_DELIVERY_STATUSES = frozenset(
    {
        DeliveryStatus.DELIVERED,
        DeliveryStatus.UNDELIVERED,
        DeliveryStatus.FAILED,
        DeliveryStatus.SUPPRESSED,
        DeliveryStatus.CANCELLED,
    }
)


@dataclass(frozen=True)
class InboundRequest:
    """A provider's HTTP request as it reached us: the public URL it was sent to, headers, parsed form."""

    url: str
    headers: Mapping[str, str]
    form: ImmutableMultiDict[str, str]


@dataclass(frozen=True)
class InboundMessage:
    channel: ChannelKind
    provider_id: str
    from_address: str
    to_address: str
    body: str
    meta: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusUpdate:
    """A provider's word on one delivery. outbox_id is ours, echoed back by the callback URL we gave."""

    provider_id: str
    status: DeliveryStatus | None  # None: an interim provider state that moves nothing
    outbox_id: int | None = None
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class OutboundEmail:
    """What an email carries beyond the text body: composed by the hub (templates, threading), sent by the adapter.

    The adapter adds From (the city's sender identity), To and Date; everything else comes from here."""

    message_id: str  # "<...@domain>", stable per outbox row so a retried send is the same message
    subject: str
    text: str
    html: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)  # Auto-Submitted, X-Loop, X-Auto-Response-Suppress


@dataclass(frozen=True)
class OutboundWebhook:
    """Where and how an event delivery goes (ChannelKind.WEBHOOK): the endpoint as it is at send time, not as it
    was when the event was staged, so a rotated secret or a changed URL applies to deliveries still waiting."""

    url: str
    secret: str  # "whsec_" + base64: the Standard Webhooks signing key
    event_id: str  # the webhook-id header: receivers dedupe by it, so a retry is the same delivery
    event_type: str
    allow_private: bool = False  # private, loopback and link-local targets (and plain http) allowed


@dataclass(frozen=True)
class OutboundEnvelope:
    outbox_id: int
    channel: ChannelKind
    to: str
    body: str
    status_callback_url: str | None = None
    email: OutboundEmail | None = None  # set for ChannelKind.EMAIL
    webhook: OutboundWebhook | None = None  # set for ChannelKind.WEBHOOK


@dataclass(frozen=True)
class SendResult:
    provider_id: str


class Unauthorized(Exception):
    """The request does not prove it came from the provider."""


class SendError(Exception):
    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class TransientSendError(SendError):
    """Not sent; trying again later may work (rate limit, provider 5xx, connection refused)."""

    def __init__(self, message: str, *, code: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class PermanentSendError(SendError):
    """Not sent, and sending the same again will not work (invalid number, recipient opted out)."""

    def __init__(
        self, message: str, *, code: str | None = None, opted_out: bool = False, bad_address: bool = False
    ) -> None:
        super().__init__(message, code=code)
        self.opted_out = opted_out
        self.bad_address = bad_address  # the recipient's address itself was refused (no such mailbox)


class AmbiguousSendError(SendError):
    """The request may have reached the provider (e.g. a read timeout): a blind retry could send twice."""


class ChannelSender(Protocol):
    """What delivery needs of a channel: send one message, and release connections at shutdown."""

    kind: ClassVar[ChannelKind]

    async def send(self, env: OutboundEnvelope) -> SendResult: ...

    async def aclose(self) -> None: ...


class ChannelAdapter(ChannelSender, Protocol):
    """A channel whose provider calls our webhooks (SMS): it also verifies and parses those requests."""

    def verify(self, req: InboundRequest) -> None: ...

    def parse_inbound(self, req: InboundRequest) -> list[InboundMessage]: ...

    def parse_status(self, req: InboundRequest) -> StatusUpdate | None: ...
