"""Every table and API shape, in one place: SQLModel tables plus the Public/Create variants the API exposes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import field_validator
from sqlalchemy import JSON, Column, Index, LargeBinary, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from carehub.clock import utcnow
from carehub.db import UTCDateTime
from channels.base import ChannelKind as Channel
from channels.base import DeliveryStatus


class TicketStatus(StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"


# A resident's new message joins a ticket in one of these states rather than opening another.
ACTIVE_TICKET_STATUSES = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING)


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Direction(StrEnum):
    INBOUND = "in"
    OUTBOUND = "out"


class Role(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    COMMUNICATIONS = "communications"
    ADMIN = "admin"


def _ts(*, nullable: bool = False, index: bool = False) -> Any:
    if nullable:
        return Field(default=None, sa_type=UTCDateTime, nullable=True, index=index)
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=index)


def _str(length: int, **kw: Any) -> Any:
    return Field(sa_type=String(length), **kw)


class Contact(SQLModel, table=True):
    __tablename__ = "contacts"
    id: int | None = Field(default=None, primary_key=True)
    display_name: str | None = _str(200, default=None)
    language: str = _str(8, default="en")
    # Merged by an agent into another contact (explicitly, reversibly: see ContactMerge); None for a live contact.
    merged_into_id: int | None = Field(default=None, foreign_key="contacts.id")
    created_at: datetime = _ts()


class ContactAddress(SQLModel, table=True):
    """One way to reach a contact: an E.164 number, an email address, a chat session."""

    __tablename__ = "contact_addresses"
    __table_args__ = (UniqueConstraint("channel", "address", name="uq_contact_address"),)
    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contacts.id", index=True)
    channel: Channel = _str(8)
    address: str = _str(320)
    opted_out_at: datetime | None = _ts(nullable=True)
    # A permanent bounce: nothing more is sent here until the resident writes from it again.
    undeliverable_at: datetime | None = _ts(nullable=True)
    undeliverable_reason: str | None = _str(300, default=None)
    # The last automatic reply (acknowledgement) sent here: at most one per period, whatever arrives.
    last_auto_reply_at: datetime | None = _ts(nullable=True)
    created_at: datetime = _ts()


class Agent(SQLModel, table=True):
    __tablename__ = "agents"
    id: int | None = Field(default=None, primary_key=True)
    email: str = _str(320, unique=True)
    name: str = _str(200)
    role: Role = _str(16, default=Role.AGENT)
    is_active: bool = True
    # argon2id, for signing in to the console; None: this agent signs in with API tokens only.
    password_hash: str | None = _str(200, default=None)
    # Round-robin assignment: at most this many active tickets at once; the longest-waiting agent gets the next.
    capacity: int = 5
    last_assigned_at: datetime | None = _ts(nullable=True)
    created_at: datetime = _ts()


class ApiToken(SQLModel, table=True):
    """A bearer token, stored only as its SHA-256 (tokens are 256-bit random, so no slow hash is needed)."""

    __tablename__ = "api_tokens"
    id: int | None = Field(default=None, primary_key=True)
    agent_id: int = Field(foreign_key="agents.id", index=True)
    token_hash: str = _str(64, unique=True)
    label: str = _str(100, default="")
    created_at: datetime = _ts()
    last_used_at: datetime | None = _ts(nullable=True)
    revoked_at: datetime | None = _ts(nullable=True)


class AgentTeam(SQLModel, table=True):
    """Team membership: an agent (role agent) sees the tickets of their teams and those not yet given a team."""

    __tablename__ = "agent_teams"
    agent_id: int = Field(foreign_key="agents.id", primary_key=True)
    team: str = Field(sa_type=String(64), primary_key=True)


class AgentSession(SQLModel, table=True):
    """A signed-in browser: the cookie holds a random token, stored here only as its SHA-256; each session has its
    own CSRF token for state-changing requests. Signing out, expiry or disabling the agent ends it."""

    __tablename__ = "agent_sessions"
    id: int | None = Field(default=None, primary_key=True)
    agent_id: int = Field(foreign_key="agents.id", index=True)
    token_hash: str = _str(64, unique=True)
    csrf_token: str = _str(64)
    created_at: datetime = _ts()
    last_seen_at: datetime = _ts()
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    revoked_at: datetime | None = _ts(nullable=True)
    ip: str | None = _str(64, default=None)
    user_agent: str | None = _str(300, default=None)


class LoginFailure(SQLModel, table=True):
    """A failed sign-in, kept for a while to slow down password guessing (per address and per client)."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_email_at", "email", "at"), Index("ix_login_failures_ip_at", "ip", "at"))
    id: int | None = Field(default=None, primary_key=True)
    email: str = _str(320)
    ip: str = _str(64)
    at: datetime = _ts()


class Ticket(SQLModel, table=True):
    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_status_created", "status", "created_at"),
        Index("ix_tickets_contact_status", "contact_id", "status"),
        Index("ix_tickets_assignee_status", "assignee_id", "status"),
        Index("ix_tickets_updated_at", "updated_at"),  # the event feed's ticket.updated scan
    )
    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contacts.id")
    address_id: int = Field(foreign_key="contact_addresses.id", index=True)  # where replies go
    channel: Channel = _str(8)
    status: TicketStatus = _str(16, default=TicketStatus.NEW)
    priority: Priority = _str(16, default=Priority.NORMAL)
    team: str | None = _str(64, default=None)
    assignee_id: int | None = Field(default=None, foreign_key="agents.id", index=True)
    subject: str | None = _str(300, default=None)
    # A follow-up that could not join this ticket (another sender, or the ticket was closed) links back here.
    linked_ticket_id: int | None = Field(default=None, foreign_key="tickets.id")
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    last_inbound_at: datetime | None = _ts(nullable=True)
    first_response_at: datetime | None = _ts(nullable=True)
    resolved_at: datetime | None = _ts(nullable=True)
    # Arrival automation (routing rules, auto-assignment) ran; a sweep finishes tickets a crash left without it.
    routed_at: datetime | None = _ts(nullable=True, index=True)
    # SLA: due times in business hours, computed by the worker's cron (None: not computed since team or priority
    # last changed); warned and breached record when supervisors were told.
    sla_computed_at: datetime | None = _ts(nullable=True)
    first_response_due_at: datetime | None = _ts(nullable=True, index=True)
    resolution_due_at: datetime | None = _ts(nullable=True, index=True)
    sla_warned_at: datetime | None = _ts(nullable=True)
    sla_breached_at: datetime | None = _ts(nullable=True)
    # This ticket was merged into another (see TicketMerge, which can undo it).
    merged_into_id: int | None = Field(default=None, foreign_key="tickets.id")


class TicketLabel(SQLModel, table=True):
    __tablename__ = "ticket_labels"
    ticket_id: int = Field(foreign_key="tickets.id", primary_key=True)
    label: str = Field(sa_type=String(64), primary_key=True, index=True)


class SlaPolicy(SQLModel, table=True):
    """Targets for one team (None: any team without its own) and priority, in business minutes."""

    __tablename__ = "sla_policies"
    __table_args__ = (UniqueConstraint("team", "priority", name="uq_sla_team_priority"),)
    id: int | None = Field(default=None, primary_key=True)
    team: str | None = _str(64, default=None)
    priority: Priority = _str(16)
    first_response_minutes: int
    resolution_minutes: int
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class RoutingRule(SQLModel, table=True):
    """On arrival, the first active rule (by position) whose conditions all hold sets team, priority and labels.
    A condition left None matches anything; keywords match if any appears in the first message."""

    __tablename__ = "routing_rules"
    id: int | None = Field(default=None, primary_key=True)
    position: int = 0
    name: str = _str(100)
    keywords: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    channel: Channel | None = _str(8, default=None)
    language: str | None = _str(8, default=None)
    contact_id: int | None = Field(default=None, foreign_key="contacts.id")
    set_team: str | None = _str(64, default=None)
    set_priority: Priority | None = _str(16, default=None)
    add_labels: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    is_active: bool = True
    created_by: int = Field(foreign_key="agents.id")
    created_at: datetime = _ts()


class TicketMerge(SQLModel, table=True):
    """One ticket merged into another: what moved, so unmerging puts back exactly that."""

    __tablename__ = "ticket_merges"
    id: int | None = Field(default=None, primary_key=True)
    source_ticket_id: int = Field(foreign_key="tickets.id", index=True)
    target_ticket_id: int = Field(foreign_key="tickets.id", index=True)
    message_ids: list[int] = Field(sa_column=Column(JSON, nullable=False))
    note_ids: list[int] = Field(sa_column=Column(JSON, nullable=False))
    source_status: TicketStatus = _str(16)
    merged_by: int = Field(foreign_key="agents.id")
    merged_at: datetime = _ts()
    unmerged_by: int | None = Field(default=None, foreign_key="agents.id")
    unmerged_at: datetime | None = _ts(nullable=True)


class ContactMerge(SQLModel, table=True):
    """One contact merged into another by an agent: the addresses and tickets that moved, so it can be undone."""

    __tablename__ = "contact_merges"
    id: int | None = Field(default=None, primary_key=True)
    kept_contact_id: int = Field(foreign_key="contacts.id", index=True)
    merged_contact_id: int = Field(foreign_key="contacts.id", index=True)
    address_ids: list[int] = Field(sa_column=Column(JSON, nullable=False))
    ticket_ids: list[int] = Field(sa_column=Column(JSON, nullable=False))
    merged_by: int = Field(foreign_key="agents.id")
    merged_at: datetime = _ts()
    unmerged_by: int | None = Field(default=None, foreign_key="agents.id")
    unmerged_at: datetime | None = _ts(nullable=True)


class CsatSurvey(SQLModel, table=True):
    """The one satisfaction question sent after a ticket is resolved, answered by reply (SMS) or by link.
    The link carries a random key stored only as its SHA-256; team is the ticket's team when it was sent."""

    __tablename__ = "csat_surveys"
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", unique=True)
    team: str | None = _str(64, default=None, index=True)
    channel: Channel = _str(8)
    token_hash: str = _str(64, unique=True)
    sent_at: datetime = _ts()
    rating: int | None = None  # 1 (very unhappy) to 5 (very happy)
    comment: str | None = Field(default=None, sa_type=Text)
    answered_at: datetime | None = _ts(nullable=True)


class ChatStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class ChatConversation(SQLModel, table=True):
    """One web chat: its ticket, the sequence counter its messages are numbered by, read state, and where the
    conversation went if the resident moved it to email or SMS."""

    __tablename__ = "chat_conversations"
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", index=True)
    # The resume token names this random key (also the chat address), never the guessable id alone.
    token_key: str = _str(32, unique=True)
    # The client id of the first message: a resend of it (the session frame was lost) finds this conversation.
    opening_cid: str = _str(64, unique=True)
    status: ChatStatus = _str(8, default=ChatStatus.OPEN)
    last_seq: int = 0
    resident_read_seq: int = 0
    agent_read_seq: int = 0
    language: str = _str(8, default="en")
    given_email: str | None = _str(320, default=None)  # optional, as the resident typed them at the start
    given_phone: str | None = _str(32, default=None)
    handoff_channel: Channel | None = _str(8, default=None)
    created_at: datetime = _ts()
    last_activity_at: datetime = _ts()
    closed_at: datetime | None = _ts(nullable=True)


class Message(SQLModel, table=True):
    """One message on a ticket, either way. provider_id (Twilio MessageSid, email Message-ID, chat client id)
    dedupes inbound; a chat message also has its conversation's sequence number."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "provider_id", name="uq_message_provider_id"),
        UniqueConstraint("author_agent_id", "idempotency_key", name="uq_message_idempotency"),
        UniqueConstraint("conversation_id", "seq", name="uq_message_conversation_seq"),
        Index("ix_messages_ticket_created", "ticket_id", "created_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id")
    direction: Direction = _str(3)
    channel: Channel = _str(8)
    body: str = Field(sa_type=Text)
    author_agent_id: int | None = Field(default=None, foreign_key="agents.id")
    provider_id: str | None = _str(255, default=None)
    idempotency_key: str | None = _str(128, default=None)
    meta: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    conversation_id: int | None = Field(default=None, foreign_key="chat_conversations.id")
    seq: int | None = None
    created_at: datetime = _ts()


class Outbox(SQLModel, table=True):
    """A delivery to make: written in the same transaction as its cause, sent by a worker, status moving forward."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_next", "status", "next_attempt_at"),
        UniqueConstraint("channel", "provider_id", name="uq_outbox_provider_id"),
        # One delivery per alert and address, whatever retries or re-runs of the fan-out happen.
        Index("uq_outbox_alert_address", "alert_id", "channel", "to_address", unique=True),
        Index("ix_outbox_alert_status", "alert_id", "status"),
        Index("ix_outbox_to_address", "to_address", "channel"),  # what we last sent someone (a reply to an alert)
        # One delivery per webhook endpoint and event, however often the event feed sees it.
        Index("uq_outbox_webhook_event", "webhook_id", "event_id", unique=True),
    )
    id: int | None = Field(default=None, primary_key=True)
    message_id: int | None = Field(default=None, foreign_key="messages.id", index=True)
    # An alert delivery instead: which alert, for which subscription, in which language (its text is the alert's).
    alert_id: int | None = Field(default=None, foreign_key="alerts.id")
    subscription_id: int | None = Field(default=None, foreign_key="subscriptions.id")
    language: str | None = _str(8, default=None)
    fallback_of_id: int | None = Field(default=None, foreign_key="outbox.id")  # email sent because this SMS failed
    # A notice with no ticket (a keyword's answer, a subscription's confirmation code or link): its own text, and
    # for mail its subject.
    body: str | None = Field(default=None, sa_type=Text)
    subject: str | None = _str(200, default=None)
    channel: Channel = _str(8)
    to_address: str = _str(320)
    status: DeliveryStatus = _str(16, default=DeliveryStatus.QUEUED)
    attempts: int = 0
    next_attempt_at: datetime = _ts()
    lease_until: datetime | None = _ts(nullable=True)
    provider_id: str | None = _str(255, default=None)
    error_code: str | None = _str(32, default=None)
    last_error: str | None = _str(1000, default=None)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    sent_at: datetime | None = _ts(nullable=True)
    # An outbound webhook delivery instead (channel webhook): to which endpoint, of which event (body: its JSON).
    webhook_id: int | None = Field(default=None, foreign_key="webhook_endpoints.id")
    event_id: str | None = _str(64, default=None)


class InboundEmailStatus(StrEnum):
    RECEIVED = "received"  # stored, not yet processed (a crash here is picked up again by the sweeper)
    PROCESSED = "processed"  # became (or joined) a ticket
    DUPLICATE = "duplicate"  # the same Message-ID was processed before
    BOUNCE = "bounce"  # a delivery report about mail we sent
    UNPROCESSABLE = "unprocessable"  # kept in the archive for staff, with the reason


class InboundEmail(SQLModel, table=True):
    """Every email as it arrived, stored before anything else is done with it, so no parser failure loses mail."""

    __tablename__ = "inbound_emails"
    __table_args__ = (Index("ix_inbound_emails_status_received", "status", "received_at"),)
    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = _ts()
    source: str = _str(16)  # "smtp" or "webhook"
    envelope_from: str | None = _str(320, default=None)
    envelope_to: str | None = _str(1000, default=None)
    size: int
    raw: bytes = Field(sa_type=LargeBinary)
    status: InboundEmailStatus = _str(16, default=InboundEmailStatus.RECEIVED)
    reason: str | None = _str(1000, default=None)
    header_message_id: str | None = _str(255, default=None)
    subject: str | None = _str(300, default=None)
    from_address: str | None = _str(320, default=None)
    ticket_id: int | None = Field(default=None, foreign_key="tickets.id")
    message_id: int | None = Field(default=None, foreign_key="messages.id")
    outbox_id: int | None = Field(default=None, foreign_key="outbox.id")
    attempts: int = 0
    processed_at: datetime | None = _ts(nullable=True)


class Attachment(SQLModel, table=True):
    """A file that came with a message: metadata here, the bytes in the blob store under blob_key."""

    __tablename__ = "attachments"
    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="messages.id", index=True)
    filename: str = _str(200)
    content_type: str = _str(200)
    size: int
    blob_key: str = _str(100)
    created_at: datetime = _ts()


class TicketNote(SQLModel, table=True):
    """A private note on a ticket, between agents: never sent to the resident. mentions: the agents it names."""

    __tablename__ = "ticket_notes"
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", index=True)
    author_agent_id: int = Field(foreign_key="agents.id")
    body: str = Field(sa_type=Text)
    mentions: list[int] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = _ts()


class CannedResponse(SQLModel, table=True):
    """A reply agents reuse, per language, for everyone or one team; {contact_name}, {reference}, {agent_name} and
    {city_name} are filled in for the ticket at hand. Versions of one reply in several languages share a title."""

    __tablename__ = "canned_responses"
    __table_args__ = (UniqueConstraint("title", "language", "team", name="uq_canned_title_language_team"),)
    id: int | None = Field(default=None, primary_key=True)
    title: str = _str(100)
    language: str = _str(8, default="en")
    team: str | None = _str(64, default=None)
    body: str = Field(sa_type=Text)
    created_by: int = Field(foreign_key="agents.id")
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class AuditEvent(SQLModel, table=True):
    """Who did what to which record, including reads: the municipal privacy audit trail."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_entity", "entity_type", "entity_id"),)
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _ts()
    actor: str = _str(64)
    action: str = _str(32)
    entity_type: str = _str(32)
    entity_id: int
    detail: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class Topic(SQLModel, table=True):
    """What residents subscribe to (snow clearing, water, ...): a name per language and the SMS keyword that joins it
    (`JOIN SNOW`). Emergency alerts go to every subscriber of any topic."""

    __tablename__ = "topics"
    id: int | None = Field(default=None, primary_key=True)
    slug: str = _str(32, unique=True)
    keyword: str = _str(16, unique=True)
    name_en: str = _str(100)
    name_fr: str = _str(100)
    active: bool = True
    sort_order: int = 0
    created_at: datetime = _ts()


class Area(SQLModel, table=True):
    """A part of the city alerts can target (a ward, a zone): a GeoJSON (Multi)Polygon and/or the postal codes or
    forward sortation areas (first three characters) it covers, as the city loads them."""

    __tablename__ = "areas"
    id: int | None = Field(default=None, primary_key=True)
    slug: str = _str(64, unique=True)
    name: str = _str(100)
    kind: str = _str(16, default="ward")
    geometry: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    postal_codes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class SubscriptionStatus(StrEnum):
    PENDING = "pending"  # asked for, not yet confirmed (double opt-in)
    ACTIVE = "active"
    ENDED = "ended"  # unsubscribed, opted out (STOP), or never confirmed


class Subscription(SQLModel, table=True):
    """One address's wish to receive one topic's alerts, everywhere (area_id None) or in one area. Consent is per
    address (CASL), so a resident with a phone and an email has a subscription for each."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        Index("ix_subscriptions_topic_status", "topic_id", "status", "id"),
        Index("ix_subscriptions_address", "address_id", "status"),
    )
    id: int | None = Field(default=None, primary_key=True)
    address_id: int = Field(foreign_key="contact_addresses.id")
    topic_id: int = Field(foreign_key="topics.id")
    area_id: int | None = Field(default=None, foreign_key="areas.id")
    status: SubscriptionStatus = _str(8, default=SubscriptionStatus.PENDING)
    language: str = _str(8, default="en")
    # Double opt-in: a hash of the code texted (or the link mailed), until it is confirmed or expires.
    confirm_hash: str | None = _str(64, default=None)
    confirm_expires_at: datetime | None = _ts(nullable=True)
    confirm_attempts: int = 0
    created_at: datetime = _ts()
    confirmed_at: datetime | None = _ts(nullable=True)
    ended_at: datetime | None = _ts(nullable=True)
    ended_reason: str | None = _str(32, default=None)


class ConsentAction(StrEnum):
    REQUESTED = "requested"  # asked to subscribe; not yet confirmed
    GIVEN = "given"  # confirmed (double opt-in) or renewed (START)
    WITHDRAWN = "withdrawn"  # unsubscribed, STOP, one-click, provider opt-out


class Consent(SQLModel, table=True):
    """The CASL record: every consent given or withdrawn, append-only. Who (the address), by which channel and
    method, for which topic (None: every topic, as STOP), when, and the exact wording the resident saw or sent."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_address", "address_id", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    address_id: int = Field(foreign_key="contact_addresses.id")
    channel: Channel = _str(8)
    topic_id: int | None = Field(default=None, foreign_key="topics.id")
    area_id: int | None = Field(default=None, foreign_key="areas.id")
    action: ConsentAction = _str(10)
    method: str = _str(24)  # web_form, sms_keyword, email_link, one_click, provider_opt_out, staff
    wording: str = Field(sa_type=Text)
    provider_id: str | None = _str(255, default=None)  # the message that carried it (a Twilio MessageSid)
    language: str = _str(8, default="en")
    created_at: datetime = _ts()


class KeywordReceipt(SQLModel, table=True):
    """An inbound SMS handled as a keyword (STOP, JOIN, HELP...) rather than as an inquiry: its provider id, so a
    repeated webhook neither acts nor replies twice."""

    __tablename__ = "keyword_receipts"
    __table_args__ = (UniqueConstraint("channel", "provider_id", name="uq_keyword_receipt"),)
    id: int | None = Field(default=None, primary_key=True)
    channel: Channel = _str(8)
    provider_id: str = _str(255)
    keyword: str = _str(16)
    created_at: datetime = _ts()


class AlertStatus(StrEnum):
    DRAFT = "draft"
    AWAITING_APPROVAL = "awaiting_approval"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    CANCELLED = "cancelled"


class AlertKind(StrEnum):
    ALERT = "alert"
    UPDATE = "update"
    ALL_CLEAR = "all_clear"


class Alert(SQLModel, table=True):
    """A message from communications staff to subscribers, composed once: per language, an SMS text and an email
    subject and body (`content`: {"en": {"sms": ..., "email_subject": ..., "email_body": ...}, "fr": ...}).
    Its deliveries are outbox rows (outbox.alert_id), staged by the fan-out in batches."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("created_by", "idempotency_key", name="uq_alert_idempotency"),
        Index("uq_alert_cap_identifier", "cap_sender", "cap_identifier", unique=True),
        Index("ix_alerts_status_scheduled", "status", "scheduled_for"),
    )
    id: int | None = Field(default=None, primary_key=True)
    kind: AlertKind = _str(10, default=AlertKind.ALERT)
    parent_id: int | None = Field(default=None, foreign_key="alerts.id")  # what an update or all-clear follows
    title: str = _str(200)
    topic_id: int | None = Field(default=None, foreign_key="topics.id")  # None: every subscriber (all residents)
    area_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # empty: whole city
    emergency: bool = False
    channels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    content: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: AlertStatus = _str(20, default=AlertStatus.DRAFT)
    scheduled_for: datetime | None = _ts(nullable=True)
    idempotency_key: str | None = _str(128, default=None)
    created_by: int = Field(foreign_key="agents.id")
    approved_by: int | None = Field(default=None, foreign_key="agents.id")
    approved_at: datetime | None = _ts(nullable=True)
    cancelled_by: int | None = Field(default=None, foreign_key="agents.id")
    cancelled_at: datetime | None = _ts(nullable=True)
    started_at: datetime | None = _ts(nullable=True)
    # The fan-out's checkpoint: subscriptions up to this id are staged; a crash resumes after it.
    staged_through: int = 0
    staged_at: datetime | None = _ts(nullable=True)  # every delivery is staged
    finished_at: datetime | None = _ts(nullable=True)
    # Imported from a CAP message (carehub.cap): its sender, identifier and sent time, as CAP references name them.
    cap_sender: str | None = _str(255, default=None)
    cap_identifier: str | None = _str(255, default=None)
    cap_sent: datetime | None = _ts(nullable=True)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class AlertTemplate(SQLModel, table=True):
    """A reusable start for an alert (boil water advisory, snow route...): topic, channels and text per language,
    with [bracketed] parts staff must replace before it can be sent."""

    __tablename__ = "alert_templates"
    id: int | None = Field(default=None, primary_key=True)
    name: str = _str(100, unique=True)
    topic_id: int | None = Field(default=None, foreign_key="topics.id")
    channels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    content: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_by: int | None = Field(default=None, foreign_key="agents.id")  # None: shipped with carehub
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class SenderSlot(SQLModel, table=True):
    """Per channel, the next free moment to send an alert delivery at the provider's rate: fan-outs reserve slots
    here (one row lock), so two alerts at once share the sender's rate instead of each taking all of it."""

    __tablename__ = "sender_slots"
    channel: Channel = Field(sa_type=String(8), primary_key=True)
    next_slot_at: datetime = _ts()


class AddressPoint(SQLModel, table=True):
    """A civic address the city published with its location (an "Address Points" open data set), so a resident's
    street address places them in an area without a geocoder. Keyed by the address normalised
    (carehub/subscriptions/addresses.py), so "1867 Valley Farm Rd." and "1867 valley farm road" are one."""

    __tablename__ = "address_points"
    id: int | None = Field(default=None, primary_key=True)
    address_key: str = _str(200, unique=True)
    label: str = _str(200)  # as the city wrote it
    lon: float
    lat: float


class Open311Service(SQLModel, table=True):
    """A service the city takes requests for through Open311 GeoReport v2 (a pothole, a missed collection): how
    apps list it, the attributes they ask for (`attributes`: GeoReport service definition attributes) and the
    team whose queue its requests join."""

    __tablename__ = "open311_services"
    code: str = Field(sa_type=String(64), primary_key=True)
    name: str = _str(200)
    description: str = Field(default="", sa_type=Text)
    group: str | None = _str(100, default=None)
    keywords: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    attributes: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    team: str | None = _str(64, default=None)
    is_active: bool = True
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Open311ApiKey(SQLModel, table=True):
    """A key an Open311 app posts requests with, stored only as its SHA-256 (keys are 256-bit random)."""

    __tablename__ = "open311_api_keys"
    id: int | None = Field(default=None, primary_key=True)
    key_hash: str = _str(64, unique=True)
    label: str = _str(100)
    created_by: int | None = Field(default=None, foreign_key="agents.id")
    created_at: datetime = _ts()
    last_used_at: datetime | None = _ts(nullable=True)
    revoked_at: datetime | None = _ts(nullable=True)


class Open311Request(SQLModel, table=True):
    """What an Open311 POST said beyond its description (which is the ticket's first message): the service,
    place, attributes, media and requester, the token an app can look the request up by, and the status the
    resident was last told of (so a change is told once)."""

    __tablename__ = "open311_requests"
    __table_args__ = (
        UniqueConstraint("api_key_id", "idempotency_key", name="uq_open311_idempotency"),
        Index("ix_open311_requests_service", "service_code", "ticket_id"),
    )
    ticket_id: int = Field(foreign_key="tickets.id", primary_key=True)
    token: str = _str(64, unique=True)
    service_code: str = Field(sa_type=String(64), foreign_key="open311_services.code")
    api_key_id: int = Field(foreign_key="open311_api_keys.id")
    idempotency_key: str | None = _str(128, default=None)
    description: str = Field(default="", sa_type=Text)  # as the app sent it (the ticket's message adds the details)
    lat: float | None = None
    long: float | None = None
    address_string: str | None = _str(300, default=None)
    address_id: str | None = _str(100, default=None)
    zipcode: str | None = _str(16, default=None)
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    media_url: str | None = _str(1000, default=None)
    first_name: str | None = _str(100, default=None)
    last_name: str | None = _str(100, default=None)
    email: str | None = _str(320, default=None)
    phone: str | None = _str(32, default=None)
    device_id: str | None = _str(100, default=None)
    account_id: str | None = _str(100, default=None)
    notified_status: str | None = _str(16, default=None)
    created_at: datetime = _ts()


class WebhookEndpoint(SQLModel, table=True):
    """An HTTPS endpoint an admin registered for events (ticket.created, message.created, alert.sent...): each
    event is delivered through the outbox, signed with `secret` (Standard Webhooks), retried with backoff."""

    __tablename__ = "webhook_endpoints"
    id: int | None = Field(default=None, primary_key=True)
    url: str = _str(2000)
    description: str = _str(200, default="")
    events: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    secret: str = _str(100)  # "whsec_" + base64 of 32 random bytes; shown to the admin once
    # Private, loopback and link-local targets (and plain http) are refused unless an admin allowed them here.
    allow_private: bool = False
    is_active: bool = True
    created_by: int | None = Field(default=None, foreign_key="agents.id")
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class StatusLink(SQLModel, table=True):
    """A resident's link to their request's status page (in every acknowledgement): the link is the credential, so
    only its SHA-256 is kept; it expires, and staff can revoke it."""

    __tablename__ = "status_links"
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", index=True)
    token_hash: str = _str(64, unique=True)
    created_at: datetime = _ts()
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    revoked_at: datetime | None = _ts(nullable=True)
    revoked_by: int | None = Field(default=None, foreign_key="agents.id")
    last_used_at: datetime | None = _ts(nullable=True)


class HelpArticleStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    ARCHIVED = "archived"


class HelpArticle(SQLModel, table=True):
    """A short answer for residents, in one language; translations share a `key` (the public slug). Searched by
    full text (PostgreSQL: a generated search_document column, GIN-indexed; SQLite: FTS5 kept by triggers) and by
    its `embedding`."""

    __tablename__ = "help_articles"
    __table_args__ = (UniqueConstraint("key", "language"),)
    id: int | None = Field(default=None, primary_key=True)
    key: str = _str(80, index=True)
    language: str = _str(8)
    title: str = _str(200)
    summary: str = _str(500, default="")
    body_markdown: str = Field(default="", sa_type=Text)
    body_html: str = Field(default="", sa_type=Text)  # rendered and sanitised when saved
    body_text: str = Field(default="", sa_type=Text)  # plain words of the body, for search
    topic: str = _str(64, index=True)
    keywords: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    related_services: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = _str(16, default=HelpArticleStatus.DRAFT, index=True)
    review_due_at: datetime | None = _ts(nullable=True)
    reviewed_at: datetime | None = _ts(nullable=True)
    embedding: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))  # float32 x 384
    embedding_model: str | None = _str(100, default=None)
    created_by: int | None = Field(default=None, foreign_key="agents.id")
    updated_by: int | None = Field(default=None, foreign_key="agents.id")
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    published_at: datetime | None = _ts(nullable=True)


class HelpSearch(SQLModel, table=True):
    """One search by a resident (help page, chat widget) or an agent (console): what the city learns from. The
    query text is personal data (people type addresses into search boxes): purged after help_search_log_days."""

    __tablename__ = "help_searches"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _ts(index=True)
    language: str = _str(8)
    query: str = _str(200)  # normalised: lower case, spaces collapsed
    result_count: int = 0
    top_score: float = 0.0
    good: bool = False  # the best result passed the confidence threshold
    source: str = _str(16)  # page, widget, console


class HelpFeedback(SQLModel, table=True):
    """A resident's answer to "Did this answer your question?" on an article: yes or no, when, from where."""

    __tablename__ = "help_feedback"
    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="help_articles.id", index=True)
    helpful: bool
    at: datetime = _ts(index=True)
    source: str = _str(16, default="page")


class EventFeedCursor(SQLModel, table=True):
    """How far the event feed has read each source (tickets, messages, alerts): it re-reads a window behind this,
    so rows committed late are not missed, and event ids make the re-read harmless."""

    __tablename__ = "event_feed_cursors"
    source: str = Field(sa_type=String(32), primary_key=True)
    position: datetime = _ts()
    last_id: int = 0


# ---- API shapes -------------------------------------------------------------------------------------------


class DeliveryPublic(SQLModel):
    status: DeliveryStatus
    attempts: int
    error_code: str | None
    last_error: str | None
    sent_at: datetime | None
    updated_at: datetime


class AttachmentPublic(SQLModel):
    id: int
    filename: str
    content_type: str
    size: int


class EmailDetail(SQLModel):
    """What an email carries besides its text: body is the new text (quoted history stripped); the rest is here."""

    subject: str | None = None
    from_name: str | None = None
    full_text: str | None = None  # the whole text, quoted history included, when it differs from body
    html: str | None = None  # sanitised (nh3): safe to show in an agent's browser
    inbound_email_id: int | None = None  # the raw message in the archive
    skipped_attachments: list[list[str]] | None = None
    no_auto_reply: str | None = None  # why no acknowledgement was sent (loop protection)


class MessagePublic(SQLModel):
    id: int
    direction: Direction
    channel: Channel
    body: str
    author_agent_id: int | None
    created_at: datetime
    delivery: DeliveryPublic | None = None
    email: EmailDetail | None = None
    attachments: list[AttachmentPublic] = []


class TicketSummary(SQLModel):
    id: int
    reference: str
    status: TicketStatus
    priority: Priority
    channel: Channel
    team: str | None
    assignee_id: int | None
    subject: str | None
    contact_id: int
    linked_ticket_id: int | None
    merged_into_id: int | None = None
    created_at: datetime
    updated_at: datetime
    last_inbound_at: datetime | None
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    # SLA timers (business hours), computed by the worker; None until computed or when no policy applies.
    first_response_due_at: datetime | None = None
    resolution_due_at: datetime | None = None
    sla_breached_at: datetime | None = None
    labels: list[str] = []


class ChatDetail(SQLModel):
    """A chat ticket's conversation: what the resident offered at the start (unverified), and where it went."""

    status: ChatStatus
    given_email: str | None
    given_phone: str | None
    handoff: Channel | None
    resident_read_seq: int
    agent_read_seq: int


class NotePublic(SQLModel):
    id: int
    author_agent_id: int
    body: str
    mentions: list[int]
    created_at: datetime


class NoteCreate(SQLModel):
    body: str = Field(min_length=1, max_length=20_000)


class CsatResult(SQLModel):
    """The resident's answer to the satisfaction survey (1 poor to 5 excellent)."""

    rating: int
    comment: str | None
    answered_at: datetime


class TicketDetail(TicketSummary):
    contact_addresses: list[str]
    messages: list[MessagePublic]
    notes: list[NotePublic] = []
    chat: ChatDetail | None = None
    merged_into: str | None = None  # the reference of the ticket this one was merged into (see merged_into_id)
    csat: CsatResult | None = None  # the survey's answer, once the resident gave one


class TicketPage(SQLModel):
    items: list[TicketSummary]
    next_cursor: str | None


class ReplyCreate(SQLModel):
    body: str = Field(min_length=1, max_length=20_000)  # per channel limits apply too (SMS: 1,600)
    # Answer on another channel the resident has used (e.g. a chat answered by SMS; open311: publish it as the
    # request's status notes); None: the ticket's channel.
    channel: Channel | None = None

    @field_validator("channel")
    @classmethod
    def _a_resident_channel(cls, channel: Channel | None) -> Channel | None:
        if channel is Channel.WEBHOOK:
            raise ValueError("webhook is not a channel residents are answered on")
        return channel


class TicketUpdate(SQLModel):
    status: TicketStatus | None = None
    priority: Priority | None = None
    assignee_id: int | None = None
    team: str | None = Field(default=None, min_length=1, max_length=64)
