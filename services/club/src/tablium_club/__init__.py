"""Tablium club service."""
