"""Collect Python garbage on the UI thread only.

Python's cyclic garbage collector runs in whichever thread happens to allocate. The GUI holds
Qt objects in reference cycles (a lambda connected to a signal that captures its widget), so a
collection started by a busy worker thread would destroy widgets off the UI thread: undefined
behaviour in Qt, seen here as segfaults in QApplication::notify while a job ran. Automatic
collection is therefore switched off while the app runs, and a UI-thread timer collects instead,
with the same generation thresholds.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 500


class MainThreadGarbageCollector(QObject):
    """Owns the collection schedule: create it on the UI thread and keep a reference."""

    def __init__(self, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__()
        self.thresholds = gc.get_threshold()
        gc.disable()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.check)
        self.timer.start(interval_ms)

    def check(self) -> None:
        """Collect the generations whose counts passed their thresholds (UI thread)."""
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > self.thresholds[generation]:
                gc.collect(generation)
                return

    def stop(self) -> None:
        """Hand collection back to Python (after one last collection here)."""
        self.timer.stop()
        gc.collect()
        gc.enable()
