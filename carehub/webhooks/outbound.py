"""What the delivery path needs to send claimed webhook deliveries: each one's endpoint as it is now (URL, secret,
allow_private), read in one query. A delivery whose endpoint was deactivated (or removed) since it was staged is
not sent: it fails with that reason, and reactivating the endpoint does not bring it back."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.outbox.repository import ClaimedDelivery
from carehub.webhooks import repository as webhooks
from carehub.webhooks.events import type_of
from channels.base import OutboundWebhook, PermanentSendError


async def webhook_targets(
    conn: AsyncConnection, claimed: Sequence[ClaimedDelivery]
) -> dict[int, OutboundWebhook | PermanentSendError]:
    """By outbox id: where and how to send each webhook delivery, or why it cannot go."""
    endpoints = await webhooks.endpoints_by_id(conn, [c.webhook_id for c in claimed if c.webhook_id is not None])
    targets: dict[int, OutboundWebhook | PermanentSendError] = {}
    for c in claimed:
        endpoint = None if c.webhook_id is None else endpoints.get(c.webhook_id)
        if endpoint is None or not endpoint.is_active or c.event_id is None:
            targets[c.id] = PermanentSendError(
                "not sent: the webhook endpoint was deactivated before this delivery's turn", code="endpoint-inactive"
            )
            continue
        targets[c.id] = OutboundWebhook(
            url=endpoint.url,
            secret=endpoint.secret,
            event_id=c.event_id,
            event_type=type_of(c.event_id),
            allow_private=endpoint.allow_private,
        )
    return targets
