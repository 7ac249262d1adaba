"""An outgoing message in one step: its row on the ticket, and its outbox row staged for delivery after commit.
Every cause of an outgoing message (agent reply, acknowledgement, chat handoff, transcript) goes through here;
a notice that belongs to no ticket (a keyword's answer: STOP confirmed, HELP) through queue_notice."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from carehub.db import Tx
from carehub.outbox import repository as outbox
from carehub.tickets import repository as tickets
from channels.base import ChannelKind


async def queue_message(
    tx: Tx,
    *,
    ticket_id: int,
    channel: ChannelKind,
    to: str,
    body: str,
    now: datetime,
    author_agent_id: int | None = None,
    meta: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> tuple[int, int]:
    """Returns (message id, outbox id)."""
    message_id = await tickets.add_outbound_message(
        tx.conn,
        ticket_id=ticket_id,
        channel=channel,
        body=body,
        author_agent_id=author_agent_id,
        now=now,
        idempotency_key=idempotency_key,
        meta=meta,
    )
    outbox_id = await outbox.stage(tx.conn, message_id=message_id, channel=channel, to_address=to, now=now)
    tx.staged_outbox.append(outbox_id)
    return message_id, outbox_id


async def queue_notice(
    tx: Tx, *, channel: ChannelKind, to: str, body: str, now: datetime, subject: str | None = None
) -> int:
    """A message outside any ticket (it carries its own text, and for mail its subject); returns the outbox id."""
    outbox_id = await outbox.stage(
        tx.conn, message_id=None, channel=channel, to_address=to, now=now, body=body, subject=subject
    )
    tx.staged_outbox.append(outbox_id)
    return outbox_id
