"""Tuning Python's cyclic garbage collector for a service process that allocates in bursts."""

from __future__ import annotations

import gc


def tune_gc(young_threshold: int) -> None:
    """Fewer collections: a young one every ``young_threshold`` allocations (Python's default is 700), and
    the objects start-up made (modules, mappers, routes: they live as long as the process) frozen out of
    full collections. ``0`` leaves Python's defaults.

    Why: a consumer batch builds tens of thousands of short-lived objects (envelopes, rakes, rows); with the
    default threshold they outlive young collections while the batch runs and are promoted, so full
    collections, each walking every object start-up made, run every few batches (ADR 0011, fifth pass)."""
    if young_threshold <= 0:
        return
    freeze_heap()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)


def freeze_heap() -> None:
    """Move every object alive now into the permanent generation: no collection walks them again (CPython's
    advice for pre-forked servers). For what start-up built: it lives as long as the process."""
    gc.collect()
    gc.freeze()
