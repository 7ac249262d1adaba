"""Canned responses: replies agents reuse, per language and team, filled in for the ticket at hand."""
