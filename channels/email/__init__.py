"""Email channel: inbound parsing, bounce handling and mail-loop protection."""
