"""PostgreSQL: carehub_store_email() and carehub_ingest_email(), an email into ticket state in two round trips

carehub_store_email() keeps the raw message before anything is parsed. Its commit does not wait for the disk: the
processing that follows always ends in a synchronous commit before the sender is answered, and flushing that
commit's WAL flushes this row too; a crash before then leaves the sender unanswered, so it sends again.

carehub_ingest_email():
Lock the sender, drop a redelivery, find the thread (Message-IDs first, then the subject's reference), find or create
the contact, join the ticket only if it is the same resident's and still open (else open a linked one), store the
message and its attachments, take the acknowledgement slot and stage the acknowledgement, and settle the stored
inbound_emails row: the same rules as carehub/mail/ingest.py's _ingest(), which SQLite uses; the suite runs both.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

STORE_EMAIL_FUNCTION = r"""
CREATE OR REPLACE FUNCTION carehub_store_email(
    p_received_at timestamptz, p_source text, p_envelope_from text, p_envelope_to text, p_raw bytea
) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_id integer;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);  -- this transaction only (see the module docstring)
    INSERT INTO inbound_emails (received_at, source, envelope_from, envelope_to, size, raw, status, attempts)
    VALUES (p_received_at, p_source, p_envelope_from, p_envelope_to, length(p_raw), p_raw, 'received', 1)
    RETURNING id INTO v_id;
    RETURN v_id;
END;
$$
"""

INGEST_EMAIL_FUNCTION = r"""
CREATE OR REPLACE FUNCTION carehub_ingest_email(
    p_inbound_id integer, p_address text, p_message_id text, p_thread_ids text[], p_subject_ticket integer,
    p_body text, p_meta json, p_subject text, p_attachments json, p_quiet boolean, p_acks json, p_ref_prefix text,
    p_now timestamptz, p_reopen_since timestamptz, p_ack_before timestamptz,
    p_header_message_id text, p_header_subject text, p_from_address text
) RETURNS TABLE (status text, reason text, ticket_id integer, message_id integer, new_ticket boolean,
                 ack_outbox_id integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_seen integer;
    v_thread integer;
    v_contact integer;
    v_address integer;
    v_language text := 'en';
    v_opted_out timestamptz;
    v_t_contact integer;
    v_t_status text;
    v_t_resolved timestamptz;
    v_ticket integer;
    v_linked integer;
    v_reason text;
    v_new boolean := false;
    v_message integer;
    v_ref text;
    v_ack_message integer;
    v_outbox integer;
BEGIN
    -- One sender's mail is processed one message at a time (the key SMS uses too, in carehub_ingest()).
    PERFORM pg_advisory_xact_lock(hashtextextended('email:' || p_address, 0));

    -- One lookup answers "seen before?" (its own Message-ID) and "which thread?" (those it refers to, in order).
    SELECT max(x.ticket_id) FILTER (WHERE x.mid = p_message_id),
           (array_agg(x.ticket_id ORDER BY array_position(p_thread_ids, x.mid))
                FILTER (WHERE x.mid <> p_message_id))[1]
    INTO v_seen, v_thread
    FROM (
        SELECT m.provider_id AS mid, m.ticket_id FROM messages m
        WHERE m.channel = 'email' AND m.provider_id = ANY(p_thread_ids || p_message_id)
        UNION ALL
        SELECT o.provider_id, m.ticket_id FROM outbox o JOIN messages m ON m.id = o.message_id
        WHERE o.channel = 'email' AND o.provider_id = ANY(p_thread_ids || p_message_id)
    ) x;
    IF v_seen IS NOT NULL THEN
        v_reason := 'this Message-ID was received before';
        UPDATE inbound_emails SET status = 'duplicate', processed_at = p_now, reason = v_reason,
            ticket_id = v_seen, header_message_id = p_header_message_id, subject = p_header_subject,
            from_address = p_from_address
        WHERE id = p_inbound_id;
        RETURN QUERY SELECT 'duplicate'::text, v_reason, v_seen, NULL::integer, false, NULL::integer;
        RETURN;
    END IF;
    v_thread := coalesce(v_thread, p_subject_ticket);

    SELECT a.contact_id, a.id, c.language, a.opted_out_at INTO v_contact, v_address, v_language, v_opted_out
    FROM contact_addresses a JOIN contacts c ON c.id = a.contact_id
    WHERE a.channel = 'email' AND a.address = p_address;
    IF NOT FOUND THEN
        INSERT INTO contacts (language, created_at) VALUES ('en', p_now) RETURNING id INTO v_contact;
        INSERT INTO contact_addresses (contact_id, channel, address, created_at)
        VALUES (v_contact, 'email', p_address, p_now) RETURNING id INTO v_address;
        v_language := 'en';
    ELSE
        -- The resident wrote from this address, so it works: lift a bounce's hold on it.
        UPDATE contact_addresses SET undeliverable_at = NULL, undeliverable_reason = NULL
        WHERE id = v_address AND undeliverable_at IS NOT NULL;
    END IF;

    IF v_thread IS NOT NULL THEN
        SELECT t.contact_id, t.status, t.resolved_at INTO v_t_contact, v_t_status, v_t_resolved
        FROM tickets t WHERE t.id = v_thread;
        IF FOUND THEN
            IF v_t_contact <> v_contact THEN
                v_linked := v_thread;
                v_reason := 'another sender wrote on this thread';
            ELSIF NOT (v_t_status IN ('new', 'open', 'pending')
                       OR (v_t_status = 'resolved' AND v_t_resolved >= p_reopen_since)) THEN
                v_linked := v_thread;
                v_reason := 'the ticket this replies to is closed';
            ELSE
                v_ticket := v_thread;
            END IF;
        END IF;
    END IF;

    IF v_ticket IS NULL THEN
        INSERT INTO tickets (linked_ticket_id, contact_id, address_id, channel, status, priority, subject,
                             created_at, updated_at, last_inbound_at)
        VALUES (v_linked, v_contact, v_address, 'email', 'new', 'normal', p_subject, p_now, p_now, p_now)
        RETURNING id INTO v_ticket;
        v_new := true;
    ELSE
        UPDATE tickets t SET last_inbound_at = p_now, updated_at = p_now,
            status = CASE WHEN t.status IN ('pending', 'resolved') THEN 'open' ELSE t.status END,
            resolved_at = CASE WHEN t.status IN ('pending', 'resolved') THEN NULL ELSE t.resolved_at END
        WHERE t.id = v_ticket;
    END IF;

    INSERT INTO messages (ticket_id, direction, channel, body, provider_id, meta, created_at)
    VALUES (v_ticket, 'in', 'email', p_body, p_message_id, p_meta, p_now) RETURNING id INTO v_message;
    INSERT INTO attachments (message_id, filename, content_type, size, blob_key, created_at)
    SELECT v_message, a ->> 'filename', a ->> 'content_type', (a ->> 'size')::integer, a ->> 'blob_key', p_now
    FROM json_array_elements(p_attachments) a;

    IF v_new AND NOT p_quiet AND v_opted_out IS NULL THEN
        UPDATE contact_addresses SET last_auto_reply_at = p_now
        WHERE id = v_address AND (last_auto_reply_at IS NULL OR last_auto_reply_at <= p_ack_before);
        IF FOUND THEN
            v_ref := v_ticket::text;
            v_ref := p_ref_prefix || '-' || CASE WHEN length(v_ref) < 6 THEN lpad(v_ref, 6, '0') ELSE v_ref END;
            INSERT INTO messages (ticket_id, direction, channel, body, meta, created_at)
            VALUES (v_ticket, 'out', 'email',
                    replace(coalesce(p_acks ->> v_language, p_acks ->> 'en'), '{reference}', v_ref),
                    '{"auto": "ack"}'::json, p_now)
            RETURNING id INTO v_ack_message;
            INSERT INTO outbox (message_id, channel, to_address, status, attempts, next_attempt_at, created_at,
                                updated_at)
            VALUES (v_ack_message, 'email', p_address, 'queued', 0, p_now, p_now, p_now)
            RETURNING id INTO v_outbox;
        END IF;
    END IF;

    UPDATE inbound_emails SET status = 'processed', processed_at = p_now, reason = v_reason, ticket_id = v_ticket,
        message_id = v_message, header_message_id = p_header_message_id, subject = p_header_subject,
        from_address = p_from_address
    WHERE id = p_inbound_id;
    RETURN QUERY SELECT 'processed'::text, v_reason, v_ticket, v_message, v_new, v_outbox;
END;
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(STORE_EMAIL_FUNCTION)
        op.execute(INGEST_EMAIL_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS carehub_ingest_email")
        op.execute("DROP FUNCTION IF EXISTS carehub_store_email")
