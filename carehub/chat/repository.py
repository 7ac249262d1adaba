"""Chat queries: conversations, their numbered messages, read state. Core SQL; the message path runs per frame."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.db import AnyRow
from carehub.models import Agent, ChatConversation, ChatStatus, Message
from channels.base import ChannelKind

CONVERSATIONS = ChatConversation.__table__  # type: ignore[attr-defined]
MESSAGES = Message.__table__  # type: ignore[attr-defined]
AGENTS = Agent.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Conversation:
    id: int
    ticket_id: int
    key: str
    status: ChatStatus
    last_seq: int
    resident_read_seq: int
    agent_read_seq: int
    language: str
    given_email: str | None
    given_phone: str | None
    handoff_channel: ChannelKind | None

    @classmethod
    def from_row(cls, row: AnyRow) -> Conversation:
        return cls(
            id=row.id,
            ticket_id=row.ticket_id,
            key=row.token_key,
            status=ChatStatus(row.status),
            last_seq=row.last_seq,
            resident_read_seq=row.resident_read_seq,
            agent_read_seq=row.agent_read_seq,
            language=row.language,
            given_email=row.given_email,
            given_phone=row.given_phone,
            handoff_channel=None if row.handoff_channel is None else ChannelKind(row.handoff_channel),
        )


@dataclass(frozen=True)
class Appended:
    message_id: int
    seq: int
    at: datetime
    ticket_id: int
    duplicate: bool = False


def provider_id(conversation_id: int, cid: str) -> str:
    """A client id is unique only within its conversation (a client could reuse another's, by accident or not)."""
    return f"{conversation_id}/{cid}"


async def create(
    conn: AsyncConnection,
    *,
    ticket_id: int,
    key: str,
    opening_cid: str,
    language: str,
    given_email: str | None,
    given_phone: str | None,
    now: datetime,
) -> Conversation:
    row = (
        await conn.execute(
            insert(CONVERSATIONS)
            .values(
                ticket_id=ticket_id,
                token_key=key,
                opening_cid=opening_cid,
                status=ChatStatus.OPEN.value,
                last_seq=0,
                resident_read_seq=0,
                agent_read_seq=0,
                language=language,
                given_email=given_email,
                given_phone=given_phone,
                created_at=now,
                last_activity_at=now,
            )
            .returning(*CONVERSATIONS.c)
        )
    ).one()
    return Conversation.from_row(row)


async def by_key(conn: AsyncConnection, key: str) -> Conversation | None:
    row = (await conn.execute(select(CONVERSATIONS).where(CONVERSATIONS.c.token_key == key))).one_or_none()
    return None if row is None else Conversation.from_row(row)


async def by_opening_cid(conn: AsyncConnection, cid: str, since: datetime) -> Conversation | None:
    row = (
        await conn.execute(
            select(CONVERSATIONS).where(CONVERSATIONS.c.opening_cid == cid, CONVERSATIONS.c.created_at >= since)
        )
    ).one_or_none()
    return None if row is None else Conversation.from_row(row)


async def latest_for_ticket(conn: AsyncConnection, ticket_id: int) -> Conversation | None:
    row = (
        await conn.execute(
            select(CONVERSATIONS)
            .where(CONVERSATIONS.c.ticket_id == ticket_id)
            .order_by(CONVERSATIONS.c.id.desc())
            .limit(1)
        )
    ).one_or_none()
    return None if row is None else Conversation.from_row(row)


async def find_duplicate(conn: AsyncConnection, conversation_id: int, cid: str) -> Appended | None:
    row = (
        await conn.execute(
            select(MESSAGES.c.id, MESSAGES.c.seq, MESSAGES.c.created_at, MESSAGES.c.ticket_id).where(
                MESSAGES.c.channel == ChannelKind.CHAT.value,
                MESSAGES.c.provider_id == provider_id(conversation_id, cid),
            )
        )
    ).one_or_none()
    if row is None:
        return None
    return Appended(row.id, row.seq, row.created_at, row.ticket_id, duplicate=True)


async def append(
    conn: AsyncConnection,
    conversation_id: int,
    *,
    body: str,
    inbound: bool,
    now: datetime,
    cid: str | None = None,
    author_agent_id: int | None = None,
    meta: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> Appended:
    """Number the next message of the conversation and store it. The counter's UPDATE locks the conversation
    row, so concurrent appends (resident and agent at once, two replicas) get consecutive numbers, no gaps."""
    numbered = (
        await conn.execute(
            update(CONVERSATIONS)
            .where(CONVERSATIONS.c.id == conversation_id)
            .values(last_seq=CONVERSATIONS.c.last_seq + 1, last_activity_at=now)
            .returning(CONVERSATIONS.c.last_seq, CONVERSATIONS.c.ticket_id)
        )
    ).one()
    message_id = (
        await conn.execute(
            insert(MESSAGES)
            .values(
                ticket_id=numbered.ticket_id,
                direction="in" if inbound else "out",
                channel=ChannelKind.CHAT.value,
                body=body,
                author_agent_id=author_agent_id,
                provider_id=None if cid is None else provider_id(conversation_id, cid),
                idempotency_key=idempotency_key,
                meta=meta,
                conversation_id=conversation_id,
                seq=numbered.last_seq,
                created_at=now,
            )
            .returning(MESSAGES.c.id)
        )
    ).scalar_one()
    return Appended(message_id, numbered.last_seq, now, numbered.ticket_id)


async def messages_after(conn: AsyncConnection, conversation_id: int, after_seq: int, limit: int) -> list[AnyRow]:
    """The conversation's messages numbered after after_seq, in order, with the agent's name where one wrote."""
    return list(
        await conn.execute(
            select(
                MESSAGES.c.seq,
                MESSAGES.c.provider_id,
                MESSAGES.c.direction,
                MESSAGES.c.body,
                MESSAGES.c.created_at,
                MESSAGES.c.author_agent_id,
                AGENTS.c.name.label("agent_name"),
            )
            .outerjoin(AGENTS, AGENTS.c.id == MESSAGES.c.author_agent_id)
            .where(MESSAGES.c.conversation_id == conversation_id, MESSAGES.c.seq > after_seq)
            .order_by(MESSAGES.c.seq)
            .limit(limit)
        )
    )


async def set_read(conn: AsyncConnection, conversation_id: int, *, by_resident: bool, seq: int) -> bool:
    """Move a read marker forward (never back, never past the last message); whether it moved."""
    column = CONVERSATIONS.c.resident_read_seq if by_resident else CONVERSATIONS.c.agent_read_seq
    result = await conn.execute(
        update(CONVERSATIONS)
        .where(CONVERSATIONS.c.id == conversation_id, column < seq, CONVERSATIONS.c.last_seq >= seq)
        .values({column.name: seq})
    )
    return bool(result.rowcount)


async def close(conn: AsyncConnection, conversation_id: int, now: datetime) -> bool:
    result = await conn.execute(
        update(CONVERSATIONS)
        .where(CONVERSATIONS.c.id == conversation_id, CONVERSATIONS.c.status == ChatStatus.OPEN.value)
        .values(status=ChatStatus.CLOSED.value, closed_at=now, last_activity_at=now)
    )
    return bool(result.rowcount)


async def close_for_ticket(conn: AsyncConnection, ticket_id: int, now: datetime) -> list[int]:
    rows = await conn.execute(
        update(CONVERSATIONS)
        .where(and_(CONVERSATIONS.c.ticket_id == ticket_id, CONVERSATIONS.c.status == ChatStatus.OPEN.value))
        .values(status=ChatStatus.CLOSED.value, closed_at=now, last_activity_at=now)
        .returning(CONVERSATIONS.c.id)
    )
    return [r.id for r in rows]


async def set_handoff(conn: AsyncConnection, conversation_id: int, channel: ChannelKind) -> None:
    await conn.execute(
        update(CONVERSATIONS).where(CONVERSATIONS.c.id == conversation_id).values(handoff_channel=channel.value)
    )
