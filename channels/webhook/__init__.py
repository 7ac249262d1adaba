"""Outbound webhooks: event deliveries over HTTPS to systems the city registered, signed per Standard Webhooks."""
