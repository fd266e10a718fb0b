"""Tablium lobby service."""
