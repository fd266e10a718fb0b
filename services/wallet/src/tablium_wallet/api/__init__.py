"""HTTP API: internal (services), player and admin controllers."""
