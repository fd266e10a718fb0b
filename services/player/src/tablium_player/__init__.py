"""Tablium player service."""
