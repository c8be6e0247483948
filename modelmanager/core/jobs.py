"""Qt-free job plumbing: progress reports and cooperative cancellation.

A long operation takes a :class:`JobContext`, calls ``report`` with bytes done and total, and
``check`` between steps. The GUI turns the callback into throttled Qt signals; the command line
prints a progress line.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from modelmanager.errors import Cancelled

ProgressCallback = Callable[[int, int, str], None]


@dataclass
class JobContext:
    """Progress sink and cancel flag handed to every long-running core operation."""

    on_progress: ProgressCallback | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)

    def report(self, done: int, total: int, text: str = "") -> None:
        """Tell the front how far the job is (``done`` of ``total`` bytes or items)."""
        if self.on_progress is not None:
            self.on_progress(done, total, text)

    def cancel(self) -> None:
        """Ask the job to stop at its next check."""
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if cancellation was requested."""
        if self.cancel_event.is_set():
            raise Cancelled()
