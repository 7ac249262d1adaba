"""acknowledgements carry a status link: the PostgreSQL ingest functions make the link with the ticket.

carehub_ingest() (SMS, last written by 0015) and carehub_ingest_email() (0004) take three more arguments: the
link to put in the acknowledgement's '{status_link}' slot, the SHA-256 of its token and its expiry. When the call
stages an acknowledgement it also inserts the status_links row, in the same statement and transaction as the
ticket: one more INSERT, on the new-ticket path only. The token is made by the caller (carehub/status/links.py,
128 bits from the operating system's CSPRNG), so SQLite and PostgreSQL make the same tokens and no extension is
needed for randomness; only its hash reaches the table. The functions return what they returned before.

The argument lists change, so the old functions are dropped (CREATE OR REPLACE would add overloads beside them);
downgrade restores 0015's and 0004's versions.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 00:47:00
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

OLD_INGEST = "carehub_ingest(text, text, text, text, json, text, timestamptz, timestamptz, json, text)"
OLD_INGEST_EMAIL = (
    "carehub_ingest_email(integer, text, text, text[], integer, text, json, text, json, boolean, json, text, "
    "timestamptz, timestamptz, timestamptz, text, text, text)"
)
NEW_ARGUMENTS = ", text, text, timestamptz)"

INGEST_FUNCTION = r"""
CREATE FUNCTION carehub_ingest(
    p_channel text, p_address text, p_provider_id text, p_body text, p_meta json, p_subject text,
    p_now timestamptz, p_reopen_since timestamptz, p_acks json, p_ref_prefix text,
    p_status_link text, p_status_hash text, p_status_expires timestamptz
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
    v_ack text;
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
    -- This call writes the search document with the ticket: the message trigger stands aside until we are done.
    PERFORM set_config('carehub.search_inline', 'on', true);

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
        -- The id first, so the acknowledgement (it names the reference) is known before the ticket is written.
        v_ticket := nextval(pg_get_serial_sequence('tickets', 'id'));
        v_new := true;
        IF v_opted_out IS NULL THEN
            v_ref := v_ticket::text;
            v_ref := p_ref_prefix || '-' || CASE WHEN length(v_ref) < 6 THEN lpad(v_ref, 6, '0') ELSE v_ref END;
            v_ack := replace(replace(coalesce(p_acks ->> v_language, p_acks ->> 'en'), '{reference}', v_ref),
                             '{status_link}', p_status_link);
        END IF;
        INSERT INTO tickets (id, contact_id, address_id, channel, status, priority, subject, created_at,
                             updated_at, last_inbound_at, search_document)
        VALUES (v_ticket, v_contact, v_address, p_channel, 'new', 'normal', p_subject, p_now, p_now, p_now,
                to_tsvector('english', coalesce(p_subject, '')) || to_tsvector('english', p_body)
                || coalesce(to_tsvector('english', v_ack), ''::tsvector));
    ELSE
        UPDATE tickets t SET last_inbound_at = p_now, updated_at = p_now,
            status = CASE WHEN t.status IN ('pending', 'resolved') THEN 'open' ELSE t.status END,
            resolved_at = CASE WHEN t.status IN ('pending', 'resolved') THEN NULL ELSE t.resolved_at END,
            search_document = coalesce(t.search_document, ''::tsvector) || to_tsvector('english', p_body)
        WHERE t.id = v_ticket;
    END IF;

    INSERT INTO messages (ticket_id, direction, channel, body, provider_id, meta, created_at)
    VALUES (v_ticket, 'in', p_channel, p_body, p_provider_id, p_meta, p_now) RETURNING id INTO v_message;

    IF v_ack IS NOT NULL THEN
        INSERT INTO messages (ticket_id, direction, channel, body, meta, created_at)
        VALUES (v_ticket, 'out', p_channel, v_ack, '{"auto": "ack"}'::json, p_now)
        RETURNING id INTO v_ack_message;
        INSERT INTO outbox (message_id, channel, to_address, status, attempts, next_attempt_at, created_at,
                            updated_at)
        VALUES (v_ack_message, p_channel, p_address, 'queued', 0, p_now, p_now, p_now)
        RETURNING id INTO v_outbox;
        INSERT INTO status_links (ticket_id, token_hash, created_at, expires_at)
        VALUES (v_ticket, p_status_hash, p_now, p_status_expires);
    END IF;

    PERFORM set_config('carehub.search_inline', 'off', true);
    RETURN QUERY SELECT v_ticket, v_message, v_new, v_outbox;
END;
$$
"""

INGEST_EMAIL_FUNCTION = r"""
CREATE FUNCTION carehub_ingest_email(
    p_inbound_id integer, p_address text, p_message_id text, p_thread_ids text[], p_subject_ticket integer,
    p_body text, p_meta json, p_subject text, p_attachments json, p_quiet boolean, p_acks json, p_ref_prefix text,
    p_now timestamptz, p_reopen_since timestamptz, p_ack_before timestamptz,
    p_header_message_id text, p_header_subject text, p_from_address text,
    p_status_link text, p_status_hash text, p_status_expires timestamptz
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
                    replace(replace(coalesce(p_acks ->> v_language, p_acks ->> 'en'), '{reference}', v_ref),
                            '{status_link}', p_status_link),
                    '{"auto": "ack"}'::json, p_now)
            RETURNING id INTO v_ack_message;
            INSERT INTO outbox (message_id, channel, to_address, status, attempts, next_attempt_at, created_at,
                                updated_at)
            VALUES (v_ack_message, 'email', p_address, 'queued', 0, p_now, p_now, p_now)
            RETURNING id INTO v_outbox;
            INSERT INTO status_links (ticket_id, token_hash, created_at, expires_at)
            VALUES (v_ticket, p_status_hash, p_now, p_status_expires);
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


def _migration(filename: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_m{filename[:4]}", Path(__file__).with_name(filename))
    if spec is None or spec.loader is None:
        raise RuntimeError(f"migration {filename} is missing beside 0021")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {OLD_INGEST}")
        op.execute(f"DROP FUNCTION IF EXISTS {OLD_INGEST_EMAIL}")
        op.execute(INGEST_FUNCTION)
        op.execute(INGEST_EMAIL_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {OLD_INGEST[:-1]}{NEW_ARGUMENTS}")
        op.execute(f"DROP FUNCTION IF EXISTS {OLD_INGEST_EMAIL[:-1]}{NEW_ARGUMENTS}")
        op.execute(_migration("0015_ingest_writes_search_document.py").INGEST_FUNCTION)
        op.execute(_migration("0004_postgres_email_ingest_function.py").INGEST_EMAIL_FUNCTION)
