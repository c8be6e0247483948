"""Which copy of a chunk to read first, when several devices hold one.

A selector orders the devices holding a piece; the read tries them in that order and falls back
to the next on any failure, so a strategy only decides speed, never correctness.

- ``ranked``: the placement order (the device a chunk was written to first). Deterministic, so
  the same chunk always comes from the same disk.
- ``round-robin``: rotate over the devices (in id order), chunk after chunk: each read goes to
  the next device in the ring that holds the chunk.
- ``random``: a uniformly random holder.
- ``weighted``: a random holder with probability proportional to its measured throughput, so
  every device works and a fast one does proportionally more.
- ``fastest``: the holder with the best measured throughput first, the others as fallback.

A pinned version's hot copies (plain bytes on a hot-tier device, services/pinning.py) come
before any strategy: the fetcher reads one first and uses the order below only when a chunk
has none, or it fails its hash.

Throughputs (bytes per second per device id) come from the benchmark; a device never measured
counts as the median of those that were (all equal when none was).
"""

from __future__ import annotations

import bisect
import random
import statistics
import threading
from collections.abc import Mapping, Sequence
from typing import Protocol, TypeVar

from modelmanager.errors import UserError

RANKED, ROUND_ROBIN, RANDOM, WEIGHTED, FASTEST = (
    "ranked", "round-robin", "random", "weighted", "fastest",
)  # fmt: skip
STRATEGIES: tuple[str, ...] = (RANKED, ROUND_ROBIN, RANDOM, WEIGHTED, FASTEST)


class HasId(Protocol):
    @property
    def id(self) -> str: ...


D = TypeVar("D", bound=HasId)


class Selector:
    """Orders the devices holding a chunk; thread-safe (loads call it from many threads)."""

    def __init__(
        self, strategy: str, throughput: Mapping[str, float] | None = None, seed: int | None = None
    ) -> None:
        if strategy not in STRATEGIES:
            raise UserError(
                f"unknown read strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}"
            )
        self.strategy = strategy
        known = [v for v in (throughput or {}).values() if v > 0]
        self._default = statistics.median(known) if known else 1.0
        self.throughput = dict(throughput or {})
        self._ring: list[str] = []  # every device id seen, sorted: the round-robin order
        self._cursor = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def speed(self, device_id: str) -> float:
        """The measured (or assumed) throughput of a device in bytes per second."""
        value = self.throughput.get(device_id, 0.0)
        return value if value > 0 else self._default

    def order(self, holders: Sequence[D]) -> list[D]:
        """``holders`` (in placement order) in the order a read should try them."""
        devices = list(holders)
        if len(devices) < 2 or self.strategy == RANKED:
            return devices
        if self.strategy == FASTEST:
            return sorted(devices, key=lambda d: -self.speed(d.id))  # stable: rank breaks ties
        with self._lock:
            if self.strategy == ROUND_ROBIN:
                first = self._next_in_ring(devices)
            elif self.strategy == RANDOM:
                first = self._random.randrange(len(devices))
            else:  # weighted
                weights = [self.speed(d.id) for d in devices]
                first = self._random.choices(range(len(devices)), weights)[0]
        return devices[first:] + devices[:first]

    def _next_in_ring(self, devices: list[D]) -> int:
        """The position in ``devices`` of the next holder in the ring; advances the ring."""
        for d in devices:
            if d.id not in self._ring:
                bisect.insort(self._ring, d.id)
        holders = {d.id: n for n, d in enumerate(devices)}
        n = len(self._ring)
        for step in range(n):
            at = (self._cursor + step) % n
            if self._ring[at] in holders:
                self._cursor = (at + 1) % n
                return holders[self._ring[at]]
        return 0  # unreachable: every holder is in the ring
