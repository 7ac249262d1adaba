"""Arrival automation: routing rules, round-robin auto-assignment within capacity, and the sweep that finishes both."""
