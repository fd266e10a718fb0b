"""HTTP API of the player service."""
