"""PostgreSQL: carehub_ingest() writes the ticket's search document itself, in the statement that writes the ticket.

Why: since migration 0012 every inserted message fired a trigger that updated its ticket's search document: one
more row version of the ticket (and its GIN entries) per text, on top of the ingest's own update of the same row.
That more than doubled PostgreSQL's work per inbound SMS (rows updated per webhook 0.9 -> 2.1; measured in
bench/inbound_sms.py, docs/benchmarks.md). Now the ingest folds the new words into the UPDATE it already makes
(or, for a new ticket, into its INSERT, together with the acknowledgement's text: the ticket's id is taken from its
sequence first, so the reference is known), and tells the message trigger to stand aside for the rest of its call
(a transaction-local setting, reset before it returns). The document is the same as before, word for word and in
the same order (subject, the resident's text, the acknowledgement), so rebuilds and incremental updates agree.
Every other writer of messages (email, chat, agents) still goes through the trigger. SQLite is unchanged.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 02:35:00
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import op

revision = "0015"
down_revision = "0014"
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
            v_ack := replace(coalesce(p_acks ->> v_language, p_acks ->> 'en'), '{reference}', v_ref);
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
    END IF;

    PERFORM set_config('carehub.search_inline', 'off', true);
    RETURN QUERY SELECT v_ticket, v_message, v_new, v_outbox;
END;
$$
"""

# The ticket trigger keeps a document given with a new ticket (the ingest's); the message trigger stands aside
# while the ingest writes the document itself.
TRIGGER_FUNCTIONS = [
    r"""
CREATE OR REPLACE FUNCTION carehub_search_on_ticket() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    NEW.search_document := coalesce(NEW.search_document, to_tsvector('english', coalesce(NEW.subject, '')));
  ELSIF NEW.subject IS DISTINCT FROM OLD.subject THEN
    NEW.search_document := carehub_ticket_document(NEW.subject, NEW.id);
  END IF;
  RETURN NEW;
END $$;
""",
    r"""
CREATE OR REPLACE FUNCTION carehub_search_on_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF current_setting('carehub.search_inline', true) = 'on' THEN
      RETURN NULL;
    END IF;
    UPDATE tickets SET search_document = coalesce(search_document, ''::tsvector) || to_tsvector('english', NEW.body)
     WHERE id = NEW.ticket_id;
    RETURN NULL;
  END IF;
  UPDATE tickets SET search_document = carehub_ticket_document(subject, id) WHERE id = OLD.ticket_id;
  IF TG_OP = 'UPDATE' AND NEW.ticket_id <> OLD.ticket_id THEN
    UPDATE tickets SET search_document = carehub_ticket_document(subject, id) WHERE id = NEW.ticket_id;
  END IF;
  RETURN NULL;
END $$;
""",
]

PREVIOUS_TRIGGER_FUNCTIONS = [
    r"""
CREATE OR REPLACE FUNCTION carehub_search_on_ticket() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    NEW.search_document := to_tsvector('english', coalesce(NEW.subject, ''));
  ELSIF NEW.subject IS DISTINCT FROM OLD.subject THEN
    NEW.search_document := carehub_ticket_document(NEW.subject, NEW.id);
  END IF;
  RETURN NEW;
END $$;
""",
    r"""
CREATE OR REPLACE FUNCTION carehub_search_on_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    UPDATE tickets SET search_document = coalesce(search_document, ''::tsvector) || to_tsvector('english', NEW.body)
     WHERE id = NEW.ticket_id;
    RETURN NULL;
  END IF;
  UPDATE tickets SET search_document = carehub_ticket_document(subject, id) WHERE id = OLD.ticket_id;
  IF TG_OP = 'UPDATE' AND NEW.ticket_id <> OLD.ticket_id THEN
    UPDATE tickets SET search_document = carehub_ticket_document(subject, id) WHERE id = NEW.ticket_id;
  END IF;
  RETURN NULL;
END $$;
""",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in TRIGGER_FUNCTIONS:
            op.execute(statement)
        op.execute(INGEST_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in PREVIOUS_TRIGGER_FUNCTIONS:
            op.execute(statement)
        spec = importlib.util.spec_from_file_location(
            "_m0002", Path(__file__).with_name("0002_postgres_ingest_function.py")
        )
        if spec is None or spec.loader is None:
            raise RuntimeError("migration 0002 is missing beside 0015")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        op.execute(module.INGEST_FUNCTION)
