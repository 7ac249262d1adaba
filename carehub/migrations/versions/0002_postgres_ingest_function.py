"""PostgreSQL: carehub_ingest(), the inbound path in one round trip

The webhook hot path (lock the sender, find or create contact and ticket, store the message, reopen the ticket or
stage the acknowledgement) as one server-side function, so a webhook costs one statement instead of ten. It is the
same rule set as carehub/inbound/service.py's ingest(), which SQLite uses; the test suite runs both.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

INGEST_FUNCTION = r"""
CREATE OR REPLACE FUNCTION carehub_ingest(
    p_channel text, p_address text, p_provider_id text, p_body text, p_meta json, p_subject text,
    p_now timestamptz, p_reopen_since timestamptz, p_acks json, p_ref_prefix text
) RETURNS TABLE (ticket_id integer, message_id integer, new_ticket boolean, ack_outbox_id integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_contact integer;
    v_address integer;
    v_language text := 'en';
    v_opted_out timestamptz;
    v_ticket integer;
    v_new boolean := false;
    v_message integer;
    v_ref text;
    v_ack_message integer;
    v_outbox integer;
BEGIN
    -- Serialise one sender's messages: two texts sent together must not open two tickets. Each statement below
    -- takes a fresh snapshot, so it sees what a transaction that held the lock before us committed.
    PERFORM pg_advisory_xact_lock(hashtextextended(p_channel || ':' || p_address, 0));
    -- A redelivered webhook (same provider id, so same sender, so serialised by the lock) changes nothing.
    IF EXISTS (SELECT 1 FROM messages m WHERE m.channel = p_channel AND m.provider_id = p_provider_id) THEN
        RETURN;
    END IF;

    SELECT a.contact_id, a.id, c.language, a.opted_out_at INTO v_contact, v_address, v_language, v_opted_out
    FROM contact_addresses a JOIN contacts c ON c.id = a.contact_id
    WHERE a.channel = p_channel AND a.address = p_address;
    IF NOT FOUND THEN
        INSERT INTO contacts (language, created_at) VALUES ('en', p_now) RETURNING id INTO v_contact;
        INSERT INTO contact_addresses (contact_id, channel, address, created_at)
        VALUES (v_contact, p_channel, p_address, p_now) RETURNING id INTO v_address;
        v_language := 'en';
    ELSE
        SELECT t.id INTO v_ticket FROM tickets t
        WHERE t.address_id = v_address
          AND (t.status IN ('new', 'open', 'pending') OR (t.status = 'resolved' AND t.resolved_at >= p_reopen_since))
        ORDER BY t.id DESC LIMIT 1;
    END IF;

    IF v_ticket IS NULL THEN
        INSERT INTO tickets (contact_id, address_id, channel, status, priority, subject, created_at, updated_at,
                             last_inbound_at)
        VALUES (v_contact, v_address, p_channel, 'new', 'normal', p_subject, p_now, p_now, p_now)
        RETURNING id INTO v_ticket;
        v_new := true;
    ELSE
        UPDATE tickets t SET last_inbound_at = p_now, updated_at = p_now,
            status = CASE WHEN t.status IN ('pending', 'resolved') THEN 'open' ELSE t.status END,
            resolved_at = CASE WHEN t.status IN ('pending', 'resolved') THEN NULL ELSE t.resolved_at END
        WHERE t.id = v_ticket;
    END IF;

    INSERT INTO messages (ticket_id, direction, channel, body, provider_id, meta, created_at)
    VALUES (v_ticket, 'in', p_channel, p_body, p_provider_id, p_meta, p_now) RETURNING id INTO v_message;

    IF v_new AND v_opted_out IS NULL THEN
        v_ref := v_ticket::text;
        v_ref := p_ref_prefix || '-' || CASE WHEN length(v_ref) < 6 THEN lpad(v_ref, 6, '0') ELSE v_ref END;
        INSERT INTO messages (ticket_id, direction, channel, body, meta, created_at)
        VALUES (v_ticket, 'out', p_channel,
                replace(coalesce(p_acks ->> v_language, p_acks ->> 'en'), '{reference}', v_ref),
                '{"auto": "ack"}'::json, p_now)
        RETURNING id INTO v_ack_message;
        INSERT INTO outbox (message_id, channel, to_address, status, attempts, next_attempt_at, created_at,
                            updated_at)
        VALUES (v_ack_message, p_channel, p_address, 'queued', 0, p_now, p_now, p_now)
        RETURNING id INTO v_outbox;
    END IF;

    RETURN QUERY SELECT v_ticket, v_message, v_new, v_outbox;
END;
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(INGEST_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS carehub_ingest")
