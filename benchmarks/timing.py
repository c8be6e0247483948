"""The one way benchmarks time things: the median of several runs, each after an untimed setup."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def median_seconds(
    fn: Callable[[], Any], repeat: int, before: Callable[[], None] | None = None
) -> tuple[float, Any]:
    """(median seconds of ``fn`` over ``repeat`` runs, the last run's result).

    ``before`` runs untimed ahead of every run (remove the previous output, sync the disk).
    """
    times, result = [], None
    for _ in range(repeat):
        if before is not None:
            before()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result
