"""The agents' console: server-rendered pages (templates/console/) over the same services as the agent API."""
