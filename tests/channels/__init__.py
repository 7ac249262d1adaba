"""Tests for channels/: the adapters that verify, parse and send each channel's provider traffic."""
