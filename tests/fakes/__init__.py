"""Local stand-ins for external providers, on real sockets so that the real client libraries are exercised."""
