"""Outbound webhooks: admins register endpoints for events; the event feed stages deliveries in the outbox."""
