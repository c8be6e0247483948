"""Pause Python's cyclic garbage collector while a big metadata record is read.

Parsing a 100,000-tensor manifest allocates a million small lists, strings and records, and
none of them forms a cycle; the collector still walks every live container each time the
allocations pass its thresholds, which costs more than the parse (0.3 s of 0.4 s, measured
in benchmarks/manifest_read.py). Switched off only when it was on, and back on after, so the
GUI's own schedule (gui/gc_guard.py keeps it off and collects on the UI thread) is untouched.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """No automatic collection inside the block (it was on: it is on again after)."""
    was_on = gc.isenabled()
    if was_on:
        gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
