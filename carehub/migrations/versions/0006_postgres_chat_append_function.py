"""PostgreSQL: carehub_chat_append(), many residents' chat messages stored in one round trip

The chat message path (drop a resend by its client id, number the message in its conversation, store it, note
the ticket) for a batch of messages from many sockets at once: the hub gathers what arrives while the previous
call is in flight and stores it together (carehub/chat/writer.py). The same rules as chat/service.py's
resident_message(), which SQLite uses; the test suite runs both. Callers pass the batch sorted by conversation, so
concurrent calls lock conversation rows in one order and cannot deadlock on them.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

APPEND_FUNCTION = r"""
CREATE OR REPLACE FUNCTION carehub_chat_append(
    p_conversation integer[], p_cid text[], p_body text[], p_now timestamptz
) RETURNS TABLE (r_index integer, r_message integer, r_seq integer, r_ticket integer, r_at timestamptz,
                 r_duplicate boolean)
LANGUAGE plpgsql AS $$
DECLARE
    k integer;
    v_provider text;
BEGIN
    FOR k IN 1 .. coalesce(array_length(p_conversation, 1), 0) LOOP
        r_index := k;
        v_provider := p_conversation[k]::text || '/' || p_cid[k];
        SELECT m.id, m.seq, m.ticket_id, m.created_at INTO r_message, r_seq, r_ticket, r_at
            FROM messages m WHERE m.channel = 'chat' AND m.provider_id = v_provider;
        IF FOUND THEN
            r_duplicate := true;
            RETURN NEXT;
            CONTINUE;
        END IF;
        UPDATE chat_conversations c SET last_seq = c.last_seq + 1, last_activity_at = p_now
            WHERE c.id = p_conversation[k]
            RETURNING c.last_seq, c.ticket_id INTO r_seq, r_ticket;
        INSERT INTO messages (ticket_id, direction, channel, body, provider_id, conversation_id, seq, created_at)
            VALUES (r_ticket, 'in', 'chat', p_body[k], v_provider, p_conversation[k], r_seq, p_now)
            RETURNING id INTO r_message;
        UPDATE tickets t SET last_inbound_at = p_now, updated_at = p_now,
                status = CASE WHEN t.status IN ('pending', 'resolved') THEN 'open' ELSE t.status END,
                resolved_at = CASE WHEN t.status IN ('pending', 'resolved') THEN NULL ELSE t.resolved_at END
            WHERE t.id = r_ticket;
        r_at := p_now;
        r_duplicate := false;
        RETURN NEXT;
    END LOOP;
END;
$$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(APPEND_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS carehub_chat_append(integer[], text[], text[], timestamptz)")
