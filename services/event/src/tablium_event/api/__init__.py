"""HTTP API of the event service."""
