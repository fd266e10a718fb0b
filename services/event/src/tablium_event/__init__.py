"""Tablium event service: tournaments."""
