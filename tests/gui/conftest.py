"""GUI test setup: garbage is collected on the UI thread only, as in the app (gc_guard)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

pytest.importorskip("PySide6")

from modelmanager.gui.gc_guard import MainThreadGarbageCollector


@pytest.fixture(autouse=True)
def ui_thread_garbage_collection(qapp) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Without this, a worker thread's allocation can collect a finished test's windows."""
    collector = MainThreadGarbageCollector()
    yield
    collector.stop()
    gc.collect()
