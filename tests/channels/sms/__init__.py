"""Tests for channels/sms/: Twilio webhooks, sending through the real twilio client, phone numbers."""
