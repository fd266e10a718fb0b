"""Tablium service kit: the plumbing every service shares, written once."""
