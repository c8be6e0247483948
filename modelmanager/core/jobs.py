"""Qt-free job plumbing: progress reports and cooperative cancellation.

A long operation takes a :class:`JobContext`, calls ``report`` with bytes done and total, and
``check`` between steps. The GUI turns the callback into throttled Qt signals; the command line
prints a progress line. :class:`InFlight` is the one way work is fanned out to a thread pool
with a bounded number of items in flight.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from modelmanager.errors import Cancelled

ProgressCallback = Callable[[int, int, str], None]
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class JobContext:
    """Progress sink and cancel flag handed to every long-running core operation."""

    on_progress: ProgressCallback | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    #: What ``done`` and ``total`` count: "" for bytes, else the item's noun ("chunk"), so a
    #: front shows chunks/s for a job that counts chunks, never a byte rate it does not have.
    unit: str = ""

    def report(self, done: int, total: int, text: str = "") -> None:
        """Tell the front how far the job is (``done`` of ``total`` bytes, or ``unit`` items)."""
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


def default_workers() -> int:
    """Threads for chunk work: two per core (capped at 8), so fsync waits overlap compute."""
    return max(2, min(8, 2 * (os.cpu_count() or 1)))


class InFlight(Generic[T, R]):
    """Run ``submit(item)`` for each item with at most ``limit`` unfinished at once.

    Iterating yields each (item, its finished future): in completion order, or in submission
    order with ``ordered``. With ``lane``, items are queued per lane (order kept within each)
    and the limit holds per lane, so a slow lane delays only its own items. The cancel flag of
    ``ctx`` is checked before every submit and every wait. Use it in a ``with`` block: on
    leaving (done, an error, a cancel) futures not started are cancelled and running ones
    waited for, so no work outlives the block (a sink may write into the caller's buffers).
    """

    def __init__(
        self, items: Iterable[T], submit: Callable[[T], Future[R]], limit: int, *,
        ctx: JobContext | None = None, lane: Callable[[T], Hashable] | None = None,
        ordered: bool = False,
    ) -> None:  # fmt: skip
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        if ordered and lane is not None:
            raise ValueError("ordered results come from one lane")
        self._queues: dict[Hashable, deque[T]] = {}
        for item in items:
            self._queues.setdefault(None if lane is None else lane(item), deque()).append(item)
        self._submit, self._limit, self._lane = submit, limit, lane
        self._ctx = ctx or JobContext()
        self._ordered = ordered
        self._busy = dict.fromkeys(self._queues, 0)
        self._inflight: dict[Future[R], tuple[Hashable, T]] = {}  # in submission order

    def __enter__(self) -> InFlight[T, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fill(self) -> None:
        for key, queue in self._queues.items():
            while queue and self._busy[key] < self._limit:
                self._ctx.check()
                item = queue.popleft()
                self._inflight[self._submit(item)] = (key, item)
                self._busy[key] += 1

    def __iter__(self) -> Iterator[tuple[T, Future[R]]]:
        self._fill()
        while self._inflight:
            self._ctx.check()
            if self._ordered:
                oldest = next(iter(self._inflight))
                wait([oldest])
                finished: Iterable[Future[R]] = [oldest]
            else:
                finished, _ = wait(self._inflight, return_when=FIRST_COMPLETED)
            for fut in finished:
                key, item = self._inflight.pop(fut)
                self._busy[key] -= 1
                yield item, fut
            self._fill()

    def close(self) -> None:
        """Cancel what has not started and wait for what has."""
        for fut in self._inflight:
            fut.cancel()
        wait(self._inflight)
        self._inflight.clear()


@contextmanager
def threaded(
    fn: Callable[[T], R], items: Iterable[T], workers: int, name: str, *,
    ctx: JobContext | None = None, ordered: bool = False,
) -> Iterator[InFlight[T, R]]:  # fmt: skip
    """``fn(item)`` for each item on a new pool of ``workers`` threads (named ``name``), with
    twice as many items in flight so no thread waits; iterate what it yields (see InFlight)."""
    with ThreadPoolExecutor(workers, thread_name_prefix=name) as pool:

        def submit(item: T) -> Future[R]:
            return pool.submit(fn, item)

        with InFlight(items, submit, 2 * workers, ctx=ctx, ordered=ordered) as results:
            yield results
