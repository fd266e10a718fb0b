"""Tables and migrations of the event service."""
