"""The pure tournament engine: no I/O, deterministic given a seed."""
